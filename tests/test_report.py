"""`nst-video report` and `video --report-html`: the self-contained page, its flags and ETA,
live refresh, bad inputs, the output rules, and a real headless Chromium looking at it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_in_process

from nst_video.config import ReportConfig
from nst_video.media import read_image, write_image
from nst_video.pipeline.report import FrameRow, ThumbCache, build_report, estimate_eta, flag_frames
from nst_video.workdir.store import WorkDir

FAST = ["--first-iterations", "2", "--iterations", "1", "--quiet", "--device", "cpu"]
FRAMES = 6


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory,
    make_moving_frames: Callable[..., list],
    make_image: Callable[..., np.ndarray],
    weights_file: Path,
) -> tuple[Path, Path, Path]:
    """A finished 6-frame render with --report-html: (work dir, the page, the input folder)."""
    root = tmp_path_factory.mktemp("report")
    seq = root / "seq"
    seq.mkdir()
    for index, frame in enumerate(make_moving_frames(FRAMES, 48, 32)):
        write_image(seq / f"img_{index:03d}.png", frame)
    style = root / "style.png"
    write_image(style, make_image(40, 40, 3))
    page = root / "live.html"
    args = ["video", str(seq), "--style", str(style), "-o", str(root / "out.mp4"),
            "--weights", str(weights_file), *FAST, "--report-html", str(page)]  # fmt: skip
    capsys = _NoCapture()
    code, err = run_in_process(capsys, *args)  # type: ignore[arg-type]
    assert code == 0, err
    return root / "out.mp4.nst-work", page, seq


class _NoCapture:
    """run_in_process outside a test function (module fixture): stderr is not captured."""

    def readouterr(self) -> object:
        return type("R", (), {"out": "", "err": ""})()


@pytest.mark.slow
def test_report_html_is_self_contained_and_complete(rendered: tuple[Path, Path, Path]) -> None:
    work, page, _ = rendered
    text = page.read_text()
    assert 'data-state="finished"' in text
    assert "6/6 done" in text
    # Nothing fetched: no external source, stylesheet or script.
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    assert "<link" not in text and "<script" not in text
    assert text.count("<svg") == 1
    # Frames 0 (every 10th) and every flagged frame: input and output side by side.
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="(\w+) (\d+)"', text)
    assert ("input", "0") in images and ("output", "0") in images
    assert 'http-equiv="refresh"' not in text  # finished: no reload


@pytest.mark.slow
def test_live_page_refreshes_and_finished_page_does_not(rendered: tuple[Path, Path, Path]) -> None:
    work = WorkDir(rendered[0])
    with work.lock():  # as a running render holds it
        live = build_report(work)
    assert 'data-state="live"' in live
    assert '<meta http-equiv="refresh" content="15">' in live
    assert 'data-state="finished"' in build_report(work)


@pytest.mark.slow
def test_thumbnails_are_cached_between_updates(rendered: tuple[Path, Path, Path]) -> None:
    work = WorkDir(rendered[0])
    cache = ThumbCache()
    build_report(work, cache)
    first = cache.encoded
    assert first >= 2  # frame 0's input and output at least
    build_report(work, cache)
    assert cache.encoded == first
    # A frame rendered again (new PNG) gets a new thumbnail, the others stay cached.
    png = work.frames.frame_path(0)
    data = png.read_bytes()
    png.write_bytes(data)
    import os

    os.utime(png, ns=(1, 1))
    build_report(work, cache)
    assert cache.encoded == first + 1


@pytest.mark.slow
def test_report_command_writes_into_the_work_dir_and_refuses_users_files(
    capsys: pytest.CaptureFixture[str], rendered: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    work, _, seq = rendered
    code, err = run_in_process(capsys, "report", str(work))
    assert code == 0, err
    assert (work / "report.html").is_file()
    code, err = run_in_process(capsys, "report", str(work))  # ours: replaced
    assert code == 0, err
    mine = tmp_path / "mine.html"
    mine.write_text("keep me")
    code, err = run_in_process(capsys, "report", str(work), "-o", str(mine))
    assert code == 1
    assert err == f"nst-video: error: {mine} exists; pass --overwrite to replace it\n"
    assert mine.read_text() == "keep me"
    frame = seq / "img_000.png"
    before = frame.read_bytes()
    code, err = run_in_process(capsys, "report", str(work), "-o", str(frame), "--overwrite")
    assert code == 1
    assert "is also an input" in err and err.count("\n") == 1
    assert frame.read_bytes() == before
    code, err = run_in_process(capsys, "report", str(work), "-o", str(mine), "--overwrite")
    assert code == 0, err
    assert mine.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_report_on_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], rendered: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    code, err = run_in_process(capsys, "report", str(tmp_path))
    assert code == 1
    assert (
        err == f"nst-video: error: {tmp_path} is not a render work directory (no manifest.json)\n"
    )
    broken = tmp_path / "broken"
    shutil.copytree(rendered[0], broken)
    manifest = broken / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    code, err = run_in_process(capsys, "report", str(broken))
    assert code == 1
    assert err == f"nst-video: error: cannot read {manifest}: not JSON\n"
    data = json.loads((rendered[0] / "manifest.json").read_text())
    del data["job"]
    manifest.write_text(json.dumps(data))
    code, err = run_in_process(capsys, "report", str(broken))
    assert code == 1 and err.startswith("nst-video: error: ") and err.count("\n") == 1


def _row(index: int, loss: float, init: str = "warped", **stats: object) -> FrameRow:
    return FrameRow(index, 1, {"init": init, "loss": loss, "stop": "converged", **stats})


def test_flags_name_budget_loss_spikes_and_unreliable_flow() -> None:
    rows = [_row(0, 1.0, init="content")] + [_row(i, 10.0 + i % 2) for i in range(1, 12)]
    # Frame 6's neighbours 1-11: six losses of 11, four of 10: median 11, 40 / 11 = 3.6x.
    rows[6] = _row(6, 40.0)
    rows[8] = _row(8, 10.0, consistent=0.3)
    rows[9] = _row(9, 11.0, stop="budget", iterations=20)
    flags = flag_frames(rows, ReportConfig())
    assert flags == {
        6: ["loss 3.6x its neighbours' median"],
        8: ["reliable flow on 30% of the pixels"],
        9: ["evaluations hit the budget (20)"],
    }
    # The first frame (no temporal term) is compared only with frames like it: not flagged.


def test_eta_estimates_first_and_later_frames_separately() -> None:
    rows = [_row(0, 1.0, init="content", seconds=30.0), _row(1, 1.0, seconds=5.0)]
    rows.append(_row(2, 1.0, seconds=7.0))
    # One more first frame (a cut) at 30 s and 10 later ones at 6 s.
    assert estimate_eta(rows, 1, 10) == pytest.approx(30.0 + 60.0)
    # Before a later frame finished, later frames are guessed at the first frame's speed.
    assert estimate_eta(rows[:1], 0, 4) == pytest.approx(120.0)
    assert estimate_eta([], 1, 4) is None


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# Injected into a copy of the page: errors are recorded from the start, and once the page has
# loaded a <pre> receives what a reader would see: every image decoded, the charts' sizes.
_PROBE_HEAD = (
    "<script>window.__errors=[];"
    "addEventListener('error',e=>__errors.push(String(e.message||e.type)),true);"
    "const _ce=console.error;console.error=(...a)=>{__errors.push(a.join(' '));_ce(...a)};"
    "</script>"
)
_PROBE_TAIL = (
    "<script>addEventListener('load',()=>{const r={images:[],charts:[],errors:__errors};"
    "for(const i of document.images){r.images.push([i.complete,i.naturalWidth,i.width])}"
    "for(const s of document.querySelectorAll('.charts svg')){const b=s.getBoundingClientRect();"
    "r.charts.push([b.width,b.height])}"
    "const p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify(r);"
    "document.body.appendChild(p)});</script>"
)


@pytest.mark.slow
def test_page_in_headless_chromium(rendered: tuple[Path, Path, Path], tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's package)")
    page = rendered[1]
    probed = tmp_path / "probed.html"
    text = page.read_text().replace("<head>", "<head>" + _PROBE_HEAD, 1)
    probed.write_text(text.replace("</body>", _PROBE_TAIL + "</body>", 1))
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*base, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom)
    assert match is not None, dom[-2000:]
    probe = json.loads(match.group(1).replace("&quot;", '"'))
    assert probe["errors"] == []
    assert len(probe["images"]) >= 2
    assert all(done and natural > 0 and shown > 0 for done, natural, shown in probe["images"])
    assert len(probe["charts"]) == 1
    width, height = probe["charts"][0]
    assert width > 200 and height > 200
    # A screenshot of the page itself, for a person to look at (kept in the test's tmp dir).
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, "--window-size=1000,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_live_report_rewrites_after_frames_at_a_bounded_cost(
    rendered: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from nst_video.pipeline.report import LiveReport
    from nst_video.progress import FrameDone, Message
    from nst_video.workdir.manifest import Job

    work = WorkDir(rendered[0])
    job: Job = work.manifest().job
    page = tmp_path / "page.html"
    live = LiveReport(work.path, page, False, job)
    seen: list[object] = []

    def inner(event: object) -> None:
        seen.append(event)

    forward = live.wrap(inner)  # type: ignore[arg-type]
    forward(FrameDone(0, 1, 6, "content", 2, 0.1))
    assert live.writes == 1 and page.read_text().startswith("<!DOCTYPE html>")
    forward(FrameDone(1, 2, 6, "warped", 1, 0.1))
    assert live.writes == 1  # right after a write that took time: skipped (config.live_share)
    live._last = float("-inf")
    forward(FrameDone(2, 3, 6, "warped", 1, 0.1))
    assert live.writes == 2 and len(seen) == 3
    # Someone else's file put there meanwhile is kept, and said once; the render goes on.
    page.write_text("theirs")
    live._last = float("-inf")
    forward(FrameDone(3, 4, 6, "warped", 1, 0.1))
    assert page.read_text() == "theirs"
    assert [e.text for e in seen if isinstance(e, Message)] == [
        f"--report-html is no longer updated: {page} was changed by someone else while the "
        "report was updated; it was kept: choose another path"
    ]


@pytest.mark.slow
def test_report_html_refuses_an_existing_file_before_the_render(
    capsys: pytest.CaptureFixture[str],
    rendered: tuple[Path, Path, Path],
    tmp_path: Path,
    weights_file: Path,
) -> None:
    _, _, seq = rendered
    mine = tmp_path / "mine.html"
    mine.write_text("keep me")
    style = seq.parent / "style.png"
    out = tmp_path / "o.mp4"
    code, err = run_in_process(
        capsys, "video", str(seq), "--style", str(style), "-o", str(out),
        "--weights", str(weights_file), *FAST, "--report-html", str(mine),
    )  # fmt: skip
    assert code == 1
    assert err == f"nst-video: error: {mine} exists; pass --overwrite to replace it\n"
    assert mine.read_text() == "keep me" and not (tmp_path / "o.mp4.nst-work").exists()


@pytest.mark.slow
def test_live_report_of_passes_draws_one_line_per_pass(
    capsys: pytest.CaptureFixture[str],
    rendered: tuple[Path, Path, Path],
    tmp_path: Path,
    weights_file: Path,
) -> None:
    _, _, seq = rendered
    page = tmp_path / "passes.html"
    code, err = run_in_process(
        capsys, "video", str(seq), "--style", str(seq.parent / "style.png"),
        "-o", str(tmp_path / "p.mp4"), "--weights", str(weights_file), *FAST,
        "--frames", "3", "--passes", "2", "--pass-iterations", "3", "--report-html", str(page),
    )  # fmt: skip
    assert code == 0, err
    text = page.read_text()
    # Pass 1's folder is gone once pass 2 is complete; the live page remembers its line.
    assert ">pass 1<" in text and ">pass 2<" in text
    assert "3/3 done" in text
    # latest.png follows the later passes too: the last frame pass 2 finished, beside its input.
    work = tmp_path / "p.mp4.nst-work"
    latest = read_image(work / "latest.png")
    finals = [read_image(work / "frames" / f"{i:06d}.png") for i in range(3)]
    assert any(np.array_equal(latest[:, 48:], final) for final in finals)


@pytest.mark.slow
def test_resume_keeps_a_report_up_to_date_too(
    capsys: pytest.CaptureFixture[str], rendered: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    page = tmp_path / "resumed.html"
    code, err = run_in_process(capsys, "resume", str(rendered[0]), "--report-html", str(page))
    assert code == 0, err  # nothing left to render: the page is written once at the end
    assert 'data-state="finished"' in page.read_text()
