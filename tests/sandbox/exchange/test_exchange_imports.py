"""Issue 15: the modules of the sandbox Exchange server import at their top only, so the
import graph import-linter checks for cycles (`make lint`) is the whole graph: no import
inside a function, none that runs only under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

import exoimap.sandbox.exchange

PACKAGE = Path(exoimap.sandbox.exchange.__file__).parent


def hidden_imports(source: str) -> list[int]:
    """The lines of the imports that are not statements of the module body itself."""
    tree = ast.parse(source)
    at_top = {id(node) for node in tree.body}
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in at_top
    ]


def test_hidden_imports_are_found() -> None:
    source = (
        "import enum\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from a import B\n"
        "def f() -> None:\n    import c\n"
    )
    assert hidden_imports(source) == [4, 6]


def test_every_module_imports_at_its_top() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 5
    hidden = {
        path.name: lines
        for path in modules
        if (lines := hidden_imports(path.read_text(encoding="utf-8")))
    }
    assert hidden == {}
