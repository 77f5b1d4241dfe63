"""exoimap.protocol is sans-I/O: no module in it imports anything that touches sockets,
files, processes, clocks, threads or MSAL (checked on the source's AST)."""

from __future__ import annotations

import ast
from pathlib import Path

import exoimap.protocol

FORBIDDEN = {
    "socket",
    "ssl",
    "asyncio",
    "select",
    "selectors",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "subprocess",
    "threading",
    "multiprocessing",
    "time",
    "sqlite3",
    "msal",
    "requests",
    "httpx",
    "urllib",
    "http",
    "logging",
    "random",
    "secrets",
    "signal",
    "mmap",
    "fcntl",
}
# untrusted: server text made safe to show (re and unicodedata only)
ALLOWED_EXOIMAP = {"exoimap.errors", "exoimap.secrets", "exoimap.untrusted"}
PACKAGE = Path(exoimap.protocol.__file__).parent


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.add("<dynamic __import__>")
    return names


def test_protocol_imports_no_io_modules() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        imports = imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        for name in imports:
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
            assert name != "<dynamic __import__>", f"{path.name} uses __import__"
            if top == "exoimap":
                assert name.startswith("exoimap.protocol") or name in ALLOWED_EXOIMAP, (
                    f"{path.name} imports {name}"
                )


def test_the_checker_catches_an_io_import() -> None:
    tree = ast.parse("import socket\nfrom asyncio import open_connection\n")
    assert imported_modules(tree) == {"socket", "asyncio"}


def test_public_api_is_listed_and_importable() -> None:
    for name in exoimap.protocol.__all__:
        assert hasattr(exoimap.protocol, name), name
    for name in ("ClientConnection", "ServerConnection", "NEED_DATA"):
        assert name in exoimap.protocol.__all__
