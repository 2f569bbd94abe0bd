"""The dependency rule, read from the source (AST), so a change that breaks it fails here.

* the library (``miner/`` except ``miner/cli`` and ``miner/ui``) never imports the CLI or the UI;
* only ``miner/ui`` and ``pages/`` import streamlit;
* ``miner/topics`` never imports ``miner/insights`` (insights read topics, not the reverse);
* the CLI and the app reach the engine through ``miner.workspace`` and the library, not each other;
* no module is over 600 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 600


def _modules() -> list[Path]:
    files = sorted((REPO / "miner").rglob("*.py")) + sorted((REPO / "pages").glob("*.py")) + [REPO / "app.py"]
    return [f for f in files if "__pycache__" not in f.parts]


def _imports(path: Path) -> set[str]:
    """Every module name imported anywhere in the file (top level and inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _area(path: Path) -> str:
    rel = path.relative_to(REPO).as_posix()
    if rel == "miner/__main__.py":            # `python -m miner` is the CLI's entry point
        return "cli"
    for prefix, area in (("miner/cli/", "cli"), ("miner/ui/", "ui"), ("pages/", "pages"),
                         ("miner/topics/", "topics"), ("miner/insights/", "insights")):
        if rel.startswith(prefix):
            return area
    return "app" if rel == "app.py" else "library"


def _hits(names: set[str], prefix: str) -> list[str]:
    return sorted(n for n in names if n == prefix or n.startswith(prefix + "."))


MODULES = _modules()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_import_rule(path):
    area, names = _area(path), _imports(path)
    if area not in ("cli",):
        assert not _hits(names, "miner.cli"), f"{path}: only the CLI imports miner.cli"
    if area not in ("ui", "pages", "app"):
        assert not _hits(names, "miner.ui"), f"{path}: the library never imports miner.ui"
        assert not _hits(names, "streamlit"), f"{path}: only miner/ui and pages/ import streamlit"
    if area == "topics":
        assert not _hits(names, "miner.insights"), f"{path}: topics must not depend on insights"
    if area in ("pages", "app"):
        assert not _hits(names, "miner.cli"), f"{path}: the app never goes through the CLI"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_module_size(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path} has {n} lines; split it along its seams (max {MAX_LINES})"


def test_rule_detects_a_violation(tmp_path):
    """The checker itself: a library file importing the CLI and streamlit is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import streamlit as st\ndef f():\n    from miner.cli.core import cmd_build\n", encoding="utf-8")
    names = _imports(bad)
    assert _hits(names, "streamlit") == ["streamlit"]
    assert "miner.cli.core" in _hits(names, "miner.cli")
