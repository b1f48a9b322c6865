"""The package's layout: who may import whom (docs: /work/shared/design/LAYOUT.md).

Every module under ``src/roitrace`` is parsed (not imported) and its imports of
roitrace modules collected: at its top and inside functions, but not those under
``if TYPE_CHECKING:`` (they never run). Importing ``roitrace.io.tiff`` also runs
``roitrace/io/__init__.py``: an import of a module counts as an import of the
packages above it too, except the packages the importer itself is in (they are
being imported already when it runs).
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import pytest

import roitrace as rt

PACKAGE = Path(rt.__file__).resolve().parent
ROOT = "roitrace"

#: What the formats (roitrace.io) sit below: the pipeline and the command line.
PIPELINE = (
    "roitrace.extract",
    "roitrace.plan",
    "roitrace.engine",
    "roitrace.aggregate",
    "roitrace._kernels",
)
ABOVE_IO = (*PIPELINE, "roitrace.cli")

#: Calls of importlib.import_module on roitrace modules: the graph below cannot see
#: them, so each is listed here with why (RoiSet.to_imagej / to_nwb / to_label_image
#: are public, and rois.py holds no file format: it looks the writers up when called).
DYNAMIC_IMPORTS = {("roitrace.rois", "roitrace.io")}


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(node: ast.AST):
    """Every Import / ImportFrom under ``node``, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        yield from _visit(child)


def _visit(node: ast.AST):
    if _type_checking(node):
        for other in node.orelse:
            yield from _visit(other)
        return
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    yield from _import_nodes(node)


def _with_packages(target: str, importer: str) -> set[str]:
    """``target`` and the packages above it that importing it runs first."""
    out = {target}
    parts = target.split(".")
    for k in range(1, len(parts)):
        package = ".".join(parts[:k])
        if not (importer == package or importer.startswith(package + ".")):
            out.add(package)
    return out


@cache
def imports(name: str) -> frozenset[str]:
    """The roitrace modules that importing (or running) module ``name`` imports."""
    tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
    here = name if _is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            for alias in node.names:  # `from x import y`: y may be a module of x
                sub = f"{stem}.{alias.name}"
                targets.append(sub if sub in modules() else stem)
        for target in targets:
            while target and target not in modules():  # `import roitrace.io.tiff as t`
                target = target.rpartition(".")[0]
            if target.startswith(ROOT) and target != name:
                found |= _with_packages(target, name)
    found.discard(name)
    return frozenset(found)


def reachable(name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(imports(m))
    return seen - {name}


def find_cycle() -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(imports(m)):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n]
            if n not in state:
                cycle = visit(n)
                if cycle:
                    return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(modules()):
        if m not in state:
            cycle = visit(m)
            if cycle:
                return cycle
    return None


# -- the walk itself ---------------------------------------------------------------------
def test_the_walk_sees_imports_at_the_top_inside_functions_and_of_packages():
    assert "roitrace.io" in modules() and "roitrace.io.tiff" in modules()
    assert "roitrace.io._base" in imports("roitrace.io.tiff")  # from ._base import
    assert "roitrace.io" in imports("roitrace.movie")  # from .io import ...
    assert "roitrace.io" in imports("roitrace.save")  # via from .io._attrs import
    assert "roitrace.io" not in imports("roitrace.io.tiff")  # its own package
    assert "roitrace.io" in imports("roitrace.cli._options")
    assert "roitrace.extract" in imports("roitrace.cli.extract")  # inside a function


def test_type_checking_imports_do_not_count():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .engine import stream\n"
        "else:\n    from .movie import Movie\n"
        "def f():\n    from .extract import extract\n"
    )
    names = [n.module for n in _import_nodes(tree)]
    assert names == ["typing", "movie", "extract"]


# -- the rules ---------------------------------------------------------------------------
def test_no_import_cycle():
    cycle = find_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("name", [m for m in sorted(modules()) if m.startswith("roitrace.io")])
def test_io_does_not_import_the_pipeline_or_the_command_line(name):
    assert not imports(name) & set(ABOVE_IO), sorted(imports(name) & set(ABOVE_IO))
    # nor through anything it imports
    assert not reachable(name) & set(ABOVE_IO), sorted(reachable(name) & set(ABOVE_IO))


@pytest.mark.parametrize(
    "name",
    [
        "roitrace.save",
        "roitrace.rois",
        "roitrace.result",
        "roitrace.plot",
        "roitrace.movie",
        "roitrace.io.nwb",
        "roitrace.io.suite2p",
        "roitrace.io.imagej",
    ],
)
def test_formats_and_schema_do_not_reach_the_extraction(name):
    # everything these modules reach, counting imports inside functions
    assert "roitrace.extract" not in reachable(name)
    assert not imports(name) & {"roitrace.extract", "roitrace.engine"}


def test_nothing_imports_the_command_line():
    users = [m for m in modules() if "roitrace.cli" in imports(m)]
    assert users == ["roitrace.__main__"], users


def test_result_imports_only_the_schema_basics():
    assert imports("roitrace.result") <= {"roitrace.errors", "roitrace.rois", "roitrace._version"}
    tree = ast.parse(modules()["roitrace.result"].read_text(encoding="utf-8"))
    third = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            third.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            third.add(node.module.split(".")[0])
    assert third - set(sys.stdlib_module_names) - {ROOT, "__future__"} <= {"numpy", "xarray"}


def test_rois_holds_no_file_format():
    assert not imports("roitrace.rois") & {m for m in modules() if m.startswith("roitrace.io")}
    source = modules()["roitrace.rois"].read_text(encoding="utf-8")
    for word in ("tifffile", "np.load", "np.save", "zipfile", "pynwb"):
        assert word not in source, word


def test_dynamic_imports_are_the_known_ones():
    found = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            func = getattr(node, "func", None)
            if not (
                isinstance(node, ast.Call)
                and getattr(func, "attr", getattr(func, "id", "")) == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                continue
            target = str(node.args[0].value)
            if target.startswith("."):
                target = ROOT + target  # relative to roitrace: only roitrace/__init__ does
            if target.startswith(ROOT):
                found.add((name, target))
    # roitrace.plot is loaded on first use by roitrace/__init__ (matplotlib is slow)
    assert found - {(ROOT, "roitrace.plot")} == DYNAMIC_IMPORTS
