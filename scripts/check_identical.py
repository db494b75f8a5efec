"""Renders tiny synthetic clips and images with an older revision and with this tree, and
compares every PNG they write byte for byte: a refactor must not change a single output.

    python scripts/check_identical.py            # against ac19069
    python scripts/check_identical.py --rev main

The older revision is checked out into a temporary git worktree; each render runs as a
subprocess (an argument list) with PYTHONPATH pointing at one tree. Random VGG weights (seed 0)
and the inputs are made once and shared. Cases: an image, a single pass with a scene cut,
--temporal-offsets 1,2,4, --passes 2 and 3, --init content, and resumes after frames were lost
(a kill between frames leaves exactly that). Prints one row per case and exits 1 on any
difference (or a render that fails in one tree only).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent.parent
DEFAULT_REV = "ac19069"
# One CPU thread: float sums depend on the thread count, and the machine is shared.
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
FAST = ["--first-iterations", "4", "--iterations", "3", "--device", "cpu", "--quiet"]
IMAGE_FAST = ["--iterations", "6", "--device", "cpu", "--quiet"]
FRAMES = 8
CUT_AT = 5  # frames from here on show other content: a scene cut


def smooth(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random colour field (flow finds structure in it)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((width + 16, height + 16), Image.BICUBIC)
    return np.asarray(big)


def make_inputs(folder: Path) -> dict[str, Path]:
    """A 48x32 sequence (a texture drifting right, then a cut), a style and an image."""
    seq = folder / "seq"
    seq.mkdir(parents=True)
    first, second = smooth(32, 48, 1), smooth(32, 48, 7)
    for index in range(FRAMES):
        texture, shift = (first, index) if index < CUT_AT else (second, index - CUT_AT)
        frame = texture[4 : 4 + 32, 8 - shift : 8 - shift + 48]
        Image.fromarray(np.ascontiguousarray(frame)).save(seq / f"f_{index:03d}.png")
    style = folder / "style.png"
    Image.fromarray(smooth(40, 40, 2)[:40, :40]).save(style)
    image = folder / "image.png"
    Image.fromarray(smooth(24, 32, 3)[:24, :32]).save(image)
    return {"seq": seq / "f_%03d.png", "style": style, "image": image}


# name -> list of steps; a step is ("video" | "resume" | "image" | "drop", extra arguments).
CASES: dict[str, list[tuple[str, list[str]]]] = {
    "image": [("image", [])],
    "single pass, cut": [("video", [])],
    "offsets 1,2,4": [("video", ["--temporal-offsets", "1,2,4"])],
    "init content": [("video", ["--init", "content"])],
    "passes 2": [("video", ["--passes", "2", "--pass-iterations", "2"])],
    "passes 3, offsets 1,2": [
        ("video", ["--passes", "3", "--pass-iterations", "2", "--temporal-offsets", "1,2"])
    ],
    "resume, single pass": [("video", []), ("drop", ["3"]), ("resume", [])],
    "resume, offsets 1,2,4": [
        ("video", ["--temporal-offsets", "1,2,4"]),
        ("drop", ["4"]),
        ("resume", []),
    ],
    "resume, passes 2": [
        ("video", ["--passes", "2", "--pass-iterations", "2"]),
        ("drop", ["2"]),
        ("resume", []),
    ],
}


def run_case(
    python: str, tree: Path, steps: Sequence[tuple[str, list[str]]], out: Path, inputs: dict
) -> str | None:
    """Runs one case with `tree` on the path; returns an error line, or None."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(tree)}
    work, frames = out / "work", out / "frames"
    for kind, extra in steps:
        if kind == "drop":  # frames lost from here on, as after a kill (statistics too)
            first = int(extra[0])
            for path in (work / "frames").glob("*"):
                if path.stem.isdigit() and int(path.stem) >= first:
                    path.unlink()
            continue
        if kind == "image":
            args = ["image", str(inputs["image"]), "--style", str(inputs["style"]),
                    "-o", str(out / "image.png"), "--size", "32"]  # fmt: skip
        elif kind == "video":
            args = ["video", str(inputs["seq"]), "--style", str(inputs["style"]),
                    "-o", f"{frames}/", "--work-dir", str(work), "--fps", "12"]  # fmt: skip
        else:
            args = ["resume", str(work), "--overwrite"]
        common = {"video": FAST, "image": IMAGE_FAST, "resume": ["--quiet"]}[kind]
        command = [python, "-m", "nst_video", *args, *common, "--weights", str(inputs["weights"])]
        if kind == "resume":
            command = command[:-2]  # the work directory remembers its weights
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            return f"{kind} exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


def pngs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def compare(old: Path, new: Path) -> tuple[int, list[str]]:
    """(PNGs compared, names that differ or exist on one side only)."""
    a, b = pngs(old), pngs(new)
    differ = sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))
    return len(a.keys() | b.keys()), differ


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default=DEFAULT_REV, help="revision to compare against")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--only", nargs="*", help="case names to run (default all)")
    args = parser.parse_args(argv)
    temp = Path(tempfile.mkdtemp(prefix="nst-identical-"))
    old_tree = temp / "old"
    subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", "--quiet",
                    str(old_tree), args.rev], check=True)  # fmt: skip
    failed = False
    began = time.process_time(), time.perf_counter()
    try:
        inputs = make_inputs(temp / "inputs")
        weights = temp / "inputs" / "vgg19-random.pth"
        make_weights = ("import sys, torch; from nst_video.core.vgg import random_state_dict; "
                        "torch.save(random_state_dict(0), sys.argv[1])")  # fmt: skip
        env = {**os.environ, **ENV, "PYTHONPATH": str(old_tree)}
        subprocess.run([sys.executable, "-c", make_weights, str(weights)], env=env, check=True)
        inputs["weights"] = weights
        print(f"{'case':<26} {'PNGs':>5}  result   (old: {args.rev}, new: {HERE})")
        for name, steps in CASES.items():
            if args.only and name not in args.only:
                continue
            slug = name.replace(" ", "_").replace(",", "")
            results = {}
            for side, tree in (("old", old_tree), ("new", HERE)):
                out = temp / side / slug
                out.mkdir(parents=True)
                results[side] = run_case(sys.executable, tree, steps, out, inputs)
            count, differ = compare(temp / "old" / slug, temp / "new" / slug)
            if results["old"] != results["new"] and (results["old"] or results["new"]):
                verdict = f"FAILED  old: {results['old']} | new: {results['new']}"
            elif count == 0 and not results["old"]:
                verdict = "FAILED  no PNG written"
            elif differ:
                verdict = f"DIFFER  {len(differ)}: {', '.join(differ[:4])}"
            elif results["old"]:
                verdict = f"FAILED  both: {results['old']}"
            else:
                verdict = "same"
            failed |= not verdict.startswith("same")
            print(f"{name:<26} {count:>5}  {verdict}", flush=True)
    finally:
        subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(old_tree)],
                       check=False)  # fmt: skip
        if args.keep:
            print(f"kept {temp}")
        else:
            shutil.rmtree(temp, ignore_errors=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = children.ru_utime + children.ru_stime + time.process_time() - began[0]
    wall = time.perf_counter() - began[1]
    print(f"{'DIFFERENT' if failed else 'identical'} ({cpu:.0f} s CPU, {wall:.0f} s wall)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
