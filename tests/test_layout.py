"""The package's shape: imports flow one way (config -> data -> models ->
runs -> evaluate -> train -> inference -> serve/report, with cli, benchmark
and tune on top), counting imports inside functions, and nothing in the
repository points at documents outside it."""

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "elcrec"

# Lower layers never import higher ones; one rank may hold several modules
# that do not import each other.
LAYERS = [
    ["_version", "_io", "paper"],
    ["config"],
    ["data", "distributed"],
    ["models.base"],
    ["models.elcrec"],
    ["models.iclrec"],
    ["models"],
    ["runs"],
    ["evaluate"],
    ["train"],
    ["inference"],
    ["serve", "report"],
    ["benchmark"],
    ["tune"],
    ["cli", "__main__"],
    [""],  # the package itself: re-exports the public API
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every elcrec module ``path`` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from elcrec import data" imports the submodule elcrec.data
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name == "elcrec" or name.startswith("elcrec."):
                target = name.removeprefix("elcrec").removeprefix(".")
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in known:
                    out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges = {name: imports_of(path, known) - {name} for name, path in mods.items()}
    # "from elcrec.models.base import X" also runs elcrec.models first; that is
    # the package initialising itself, not a dependency of the caller.
    for name, deps in edges.items():
        deps.discard("")
        if name.startswith("models."):
            deps.discard("models")
    return edges


def test_every_module_has_a_layer():
    assert set(modules()) <= set(RANK), set(modules()) - set(RANK)


def test_imports_flow_one_way_with_no_cycle():
    wrong = [(a, b) for a, deps in graph().items() for b in deps if RANK[b] >= RANK[a] and a != ""]
    assert not wrong, f"imports against the layers: {wrong}"


def test_the_layout_check_finds_a_cycle_through_a_function_local_import(tmp_path):
    source = "def f():\n    from elcrec.train import Run\n"
    path = tmp_path / "evaluate.py"
    path.write_text(source)
    assert imports_of(path, set(RANK)) == {"train"}  # evaluate -> train: against the layers


OUTSIDE = [r"METHOD\.md", r"\.\./shared", r"shared/(docs|data|reference)"]


@pytest.mark.parametrize("pattern", OUTSIDE)
def test_nothing_in_the_repository_points_outside_it(pattern):
    found = subprocess.run(
        ["git", "grep", "-l", "-E", pattern, "--", ".", ":!.ci/run", ":!tests/test_layout.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if found.returncode not in (0, 1):
        pytest.skip("not a git checkout")
    assert found.stdout == "", found.stdout
