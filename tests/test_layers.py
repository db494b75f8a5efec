"""The package's dependency rule, checked on the source: lower layers never import higher ones,
and no nst_video import hides inside a function (where it could mask a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nst_video"

# Lowest first: a module may import modules of its own part (nst_video.X.*) and of any lower
# layer; parts that share a layer never import each other. The README's order (settings and
# errors; then core, video, media; workdir; pipeline; api; cli), with two refinements: the
# settings modules are ordered among themselves, and video (arrays in, arrays out: flow, the one
# resize, segment planning) sits below core, whose coarse-to-fine levels use its resize.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("models", "progress"),  # torch-free model specs; progress events
    ("config",),  # settings dataclasses and choice tuples: no torch, no cv2
    ("video",),
    ("core", "media"),  # the torch algorithm (no files); file, image and ffmpeg I/O
    ("workdir",),
    ("pipeline",),
    ("api",),
    ("cli",),
)
# Imports inside functions that are there on purpose; anything else is a failure.
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    ("__init__", "api"): "`import nst_video` stays cheap: stylize_image is loaded on first use",
    ("__init__", "config"): "`import nst_video` stays cheap: Settings is loaded on first use",
    ("cli", "cli"): "cli/app.py loads the commands (torch, cv2) only when one runs, so --help "
    "and --version stay light",
}


def layer_of(part: str) -> int:
    for rank, names in enumerate(LAYERS):
        if part in names:
            return rank
    raise AssertionError(f"nst_video.{part} is in no layer; add it to LAYERS")


def is_module(part: str) -> bool:
    """Whether nst_video.`part` is a module or package (not, say, __version__)."""
    return (
        any(part in names for names in LAYERS)
        or (PACKAGE / part).is_dir()
        or (PACKAGE / f"{part}.py").is_file()
    )


def first_part(module: str) -> str | None:
    """'nst_video.core.engine' -> 'core'; None for modules outside the package."""
    parts = module.split(".")
    if parts[0] != "nst_video":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(node: ast.AST, package: str) -> list[str]:
    """Absolute module names an Import or ImportFrom node loads (`from nst_video import x`
    loads nst_video.x when x is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolve against the importing module's package
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    if module == "nst_video":
        return [f"nst_video.{alias.name}" for alias in node.names]
    return [module]


def module_imports(path: Path, root: Path) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function?, line) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    # The package a relative import starts from: the folder of the file (of an __init__ too).
    package = ".".join(path.relative_to(root.parent).parent.parts)
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only: never executed
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            for module in imported_modules(child, package):
                found.append((module, in_function, child.lineno))
            visit(child, nested)

    visit(tree, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def violations(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        own = first_part(".".join(path.relative_to(root.parent).with_suffix("").parts))
        assert own is not None
        own_rank = layer_of(own) if own not in ("__init__", "__main__") else len(LAYERS)
        where = path.relative_to(root.parent)
        for module, in_function, line in module_imports(path, root):
            target = first_part(module)
            if target is None or target == "__init__" or not is_module(target):
                continue  # outside the package, or an attribute of nst_video/__init__
            rank = layer_of(target)
            if rank > own_rank:
                problems.append(f"{where}:{line}: {own} (layer {own_rank}) imports {module} "
                                f"(layer {rank})")  # fmt: skip
            elif rank == own_rank and target != own:
                problems.append(f"{where}:{line}: {own} imports its sibling {module}")
            if in_function and (own, target) not in LAZY_IMPORTS:
                problems.append(f"{where}:{line}: function-level import of {module}")
    return problems


def test_layers_are_one_way_and_imports_are_at_module_level() -> None:
    assert violations() == []


def test_every_package_module_is_in_a_layer() -> None:
    parts = {p.name if p.is_dir() else p.stem for p in PACKAGE.iterdir()}
    parts -= {"__init__", "__main__", "__pycache__"}
    for part in parts:
        layer_of(part)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("core/bad.py", "from nst_video.pipeline.sweep import FirstPass\n", "imports"),
        ("config.py", "import nst_video.core.engine\n", "imports"),
        ("core/bad.py", "from nst_video.media import open_source\n", "sibling"),
        ("media/bad.py", "from nst_video import api\n", "imports"),
        (
            "workdir/bad.py",
            "def f():\n    from nst_video.config import Settings\n",
            "function-level",
        ),  # fmt: skip
        ("pipeline/bad.py", "from ..cli import app\n", "imports"),
    ],
)
def test_a_bad_import_is_caught(tmp_path: Path, module: str, source: str, expected: str) -> None:
    """The check itself fails on each kind of violation (a copy of the package plus one bad
    module), so a broken checker cannot pass silently."""
    root = tmp_path / "nst_video"
    path = root / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    (root / "__init__.py").write_text("")
    found = violations(root)
    assert len(found) == 1 and expected in found[0], found


def test_the_package_never_imports_the_benchmarks_or_scripts() -> None:
    """Code only a benchmark needs lives in benchmarks/ (a checkout folder, not installed):
    the package must not depend on it, nor on scripts/."""
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, _, line in module_imports(path, PACKAGE)
        if module.split(".")[0] in ("benchmarks", "scripts")
    ]
    assert found == []
