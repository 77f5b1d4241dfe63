"""The package surface: py.typed, __all__, and the layout rules of the architecture."""

from __future__ import annotations

import importlib
from pathlib import Path

import exoimap

SRC = Path(exoimap.__file__).parent


def test_public_api_names_exist() -> None:
    for name in exoimap.__all__:
        assert hasattr(exoimap, name), name


def test_py_typed_is_shipped() -> None:
    assert (SRC / "py.typed").exists()


def test_every_subpackage_lists_its_public_api() -> None:
    for init in SRC.rglob("__init__.py"):
        module_name = ".".join(init.parent.relative_to(SRC.parent).parts)
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"


def test_lazy_public_names_match_all() -> None:
    lazy = set(exoimap._LAZY)
    assert lazy | {"ExoimapError", "Secret", "__version__"} == set(exoimap.__all__)


def test_cli_start_imports_only_the_command_it_runs() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from exoimap.cli import main; main(['config', 'path']);"
        "heavy = [m for m in ('msal', 'uvicorn', 'exoimap.sync', 'exoimap.cli.sandbox')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
