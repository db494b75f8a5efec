from nst_video.cli import main

main()
