"""Every registered benchmark runs on a tiny input with random weights, so none rots.

Sizes and budgets are the smallest each code path accepts (2 evaluations); the figures mean
nothing. What is checked: each run finishes and writes the one result document (JSON that
reads back, tables whose rows fit their columns) with its Markdown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.harness import SCHEMA, cell, markdown, run_benchmark
from benchmarks.registry import BENCHMARKS, load

TWO = ["--first-iterations", "2", "--iterations", "2"]


@pytest.fixture(scope="module")
def files(
    tmp_path_factory: pytest.TempPathFactory,
    make_moving_frames: Callable[..., list],
    write_sequence: Callable[..., Path],
    make_image: Callable[..., np.ndarray],
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench-inputs")
    clip = write_sequence(root / "clip", make_moving_frames(8, 48, 32))
    style = root / "style.png"
    Image.fromarray(make_image(40, 40, 2)).save(style)
    content = root / "content"
    content.mkdir()
    Image.fromarray(make_image(32, 48, 1)).save(content / "a.png")
    outputs = root / "outputs"
    outputs.mkdir()
    Image.fromarray(make_image(32, 48, 3)).save(outputs / "a_styled.png")
    return {"clip": clip, "style": style, "content": content, "outputs": outputs}


def arguments(name: str, files: dict[str, Path], weights: Path, out: Path) -> list[str]:
    """The tiny command line of benchmark `name`."""
    clip, style, content = str(files["clip"]), str(files["style"]), str(files["content"])
    network = ["--weights", str(weights), "--model", "vgg19"]
    render = ["--input", clip, "--style", style, *network, "--size", "32", *TWO]
    return {
        "speed": ["--input", clip, "--style", style, *network, "--size", "64", "--frames", "2",
                  "--repeats", "1", "--evaluations", "2", "--multiscale-evaluations", "2",
                  "--tutorial-evaluations", "2", "--skip-profile", "--device", "cpu", *TWO],
        "defaults": [*render, "--start", "0", "--frames", "2", "--tutorial-frames", "1",
                     "--tutorial-evaluations", "2", "--networks"],
        "stoprule": [*render, "--frames", "3", "--networks", "--rules", "1e-3:1", "0:1:1",
                     "--first-rules", "1e-3:1", "--out", str(out)],
        "compiled": ["--input", clip, "--style", style, *network, "--size", "32", "--start", "0",
                     "--repeats", "1", "--evaluations", "2", "--variants", "eager",
                     "eager-nchw"],
        "memory": [*network, "--sizes", "32x24", "--evaluations", "2", "--device", "cpu"],
        "precision": ["--input", clip, "--style", style, *network, "--size", "32",
                      "--evaluations", "2", "--device", "cpu"],
        "temporal": [*render, "--frames", "3", "--long-range", "2", "--modes",
                     "nst-default,nst-init-content", "--skip-lite", "--out", str(out)],
        "passes": [*render, "--frames", "3", "--passes", "1,2", "--pass-iterations", "2",
                   "--offsets", "2", "--out", str(out), "--picture", str(out / "p.png"),
                   "--picture-frames", "1"],
        "drift": [*render, "--frames", "4", "--windows", "0-1,2-3", "--reference-every", "2",
                  "--out", str(out)],
        "seams": [*render, "--workers", "2", "--warmup", "4", "--baseline", "--out", str(out)],
        "border": ["--content", content, "--style", style, *network, "--padding", "zero",
                   "--margins", "0", "4", "--sizes", "32", "--iterations", "2", "--out", str(out)],
        "coarse": ["--content", content, "--style", style, *network, "--size", "64",
                   "--iterations", "4", "--variant", "32:2:0.5", "--out", str(out)],
        "quality": [f"ours={files['outputs']}", "--content", content, "--style", style,
                    "--no-embedding"],
        "quantization": ["--input", clip, "--style", style, "--weights", str(weights),
                         "--size", "32", "--frames", "0,1", "--render-frame", "1",
                         "--iterations", "2", "--kmeans-iterations", "2", "--out", str(out)],
        "calib": ["--content", content, "--style", style, *network, "--size", "32",
                  "--variants", "a:optim.iterations=2",
                  "b:optim.iterations=2,loss.style_weight=1.5", "--out", str(out)],
    }[name]  # fmt: skip


def test_every_registered_benchmark_has_a_smoke_run(tmp_path: Path) -> None:
    for name in BENCHMARKS:
        assert arguments(name, {k: tmp_path for k in ("clip", "style", "content", "outputs")},
                         tmp_path, tmp_path)  # fmt: skip


# All together they take minutes on a loaded 2-core machine (seams starts Ray, quantization
# runs k-means over every VGG19 layer): `make test` runs them, `make test-fast` does not.
@pytest.mark.slow
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_runs_on_a_tiny_input(
    name: str,
    files: dict[str, Path],
    weights_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if name == "seams":
        pytest.importorskip("ray")
    result = tmp_path / "result.json"
    argv = [*arguments(name, files, weights_file, tmp_path / "out"), "--json", str(result)]
    doc = run_benchmark(name, load(name), argv)
    assert json.loads(result.read_text()) == json.loads(json.dumps(doc))
    assert doc["schema"] == SCHEMA and doc["benchmark"] == name
    assert doc["command"].startswith(f"python -m benchmarks {name} ")
    assert doc["tables"], "a benchmark reports at least one table"
    for table in doc["tables"]:
        assert table["rows"]
        assert all(len(row) == len(table["columns"]) for row in table["rows"])
    assert capsys.readouterr().out == markdown(doc) + "\n"


def test_markdown_is_made_from_the_document() -> None:
    doc = {
        "command": "python -m benchmarks x --size 8",
        "machine": {"cpu": "CPU", "cores": 2, "torch_threads": 1, "gpu": None, "torch": "2"},
        "load": {"before": [1.0, 1.0, 1.0], "after": [2.5, 1.0, 1.0]},
        "network": "vgg19 (w.pth)",
        "seconds": 3.0,
        "cpu_seconds": 2.0,
        "tables": [{"title": "t", "columns": ["a", "b"], "rows": [["x", 0.000123], [1, None]]}],
        "notes": ["PASS: it ran"],
    }
    assert markdown(doc).splitlines() == [
        "`python -m benchmarks x --size 8`",
        "",
        "vgg19 (w.pth); CPU, 2 cores, 1 torch threads; torch 2; load 1.0 before, 2.5 after; "
        "3 s wall, 2 s CPU",
        "",
        "**t**",
        "",
        "| a | b |",
        "|---|---|",
        "| x | 1.23e-04 |",
        "| 1 | - |",
        "",
        "- PASS: it ran",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (True, "yes"), (0.0, "0"), (1.5, "1.5"), (0.004567, "4.57e-03"),
     (123456.7, "123457"), (12, "12"), ("a", "a")],
)  # fmt: skip
def test_cells(value: object, text: str) -> None:
    assert cell(value) == text


def test_stop_rule_replay_matches_the_optimizers_test() -> None:
    """stoprule.stop_point replays optimize._Tracker's rule on a recorded best-loss history."""
    from benchmarks.stoprule import stop_point

    losses = [10.0, 5.0, 4.0, 3.999, 3.998, 3.9975, 2.0]
    # window 2, tolerance 1e-3: after evaluation 5, 4.0 -> 3.998 is 5e-4 relative: stop there
    assert stop_point(losses, 1e-3, 2, None) == 5
    assert stop_point(losses, 1e-4, 2, None) == 7  # never within 1e-4: the whole history
    assert stop_point(losses, 1e-3, 2, 4) == 4  # a cap ends it first
    assert stop_point(losses, 0.0, 1, 3) == 3  # tolerance 0: only the cap


def test_a_calibration_variant_keeps_the_commas_of_its_tuples() -> None:
    from benchmarks.calib import parse_variant

    spec = "lw:image.pooling=max,loss.style_layer_weights=(3,2,1,1,1),loss.style_weight=2"
    assert parse_variant(spec) == (
        "lw",
        {"image.pooling": "max", "loss.style_layer_weights": (3, 2, 1, 1, 1),
         "loss.style_weight": 2},
    )  # fmt: skip


@pytest.mark.slow
def test_coarse_saves_the_best_full_size_iterate_along_the_way(
    files: dict[str, Path], weights_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Counted over both levels (32 px, 2 evaluations; 64 px, 2): coarse-to-fine has one
    full-size snapshot, at 4, and it is its result; single scale after 2 of 4 evaluations is
    single scale with 2, pixel for pixel."""
    out = tmp_path / "out"
    base = arguments("coarse", files, weights_file, out)
    doc = run_benchmark("coarse", load("coarse"), [*base, "--save-every", "2"])
    capsys.readouterr()
    runs = {row["run"]: row for row in doc["data"]["runs"]}
    assert [e for e, _ in runs["single"]["snapshots"]] == [2, 4]
    assert [e for e, _ in runs["c2f-32-2.00-0.50"]["snapshots"]] == [4]
    assert sorted(p.name for p in out.iterdir()) == [
        "c2f-32-2.00-0.50", "c2f-32-2.00-0.50@0004", "single", "single@0002", "single@0004",
    ]  # fmt: skip
    for name in ("single", "c2f-32-2.00-0.50"):
        final = np.asarray(Image.open(out / name / "a.png"))
        assert np.array_equal(np.asarray(Image.open(out / f"{name}@0004" / "a.png")), final)
    two = tmp_path / "two"
    short = [*arguments("coarse", files, weights_file, two), "--iterations", "2", "--no-single"]
    short[short.index("--variant") + 1] = "64:2:0.5"  # one level: single scale under its name
    run_benchmark("coarse", load("coarse"), short)
    capsys.readouterr()
    after_two = np.asarray(Image.open(out / "single@0002" / "a.png"))
    assert np.array_equal(np.asarray(Image.open(two / "c2f-64-2.00-0.50" / "a.png")), after_two)
    assert not np.array_equal(after_two, np.asarray(Image.open(out / "single" / "a.png")))
