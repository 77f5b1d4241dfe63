"""`make lint` runs import-linter: the layers (and the protocol's "no I/O") are a contract.

The check runs on a copy of the package, so a break can be planted without touching the
tree: the copy as it is passes, and the same copy with an upward import, a clock in the
protocol or a cycle inside auth fails, naming the broken contract and the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import exoimap

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
_NAMES = {
    contract["id"]: contract["name"]
    for contract in tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]
}
LAYERS = _NAMES["layers"]
CYCLES = _NAMES["no-cycles"]
NO_IO = _NAMES["protocol-no-io"]


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """Run the contracts of pyproject.toml on the package found in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "200"}  # no wrapped lines
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(CONFIG)],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("layers") / "src"
    shutil.copytree(
        Path(exoimap.__file__).parent,
        src / "exoimap",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return src


def test_the_tree_as_it_is_keeps_every_contract(package_copy: Path) -> None:
    done = lint_imports(package_copy)
    assert done.returncode == 0, done.stdout + done.stderr
    for contract in (LAYERS, CYCLES, NO_IO):
        assert f"{contract} KEPT" in done.stdout
    assert "0 broken" in done.stdout


def test_an_upward_import_and_io_in_the_protocol_break_the_contracts(
    tmp_path: Path, package_copy: Path
) -> None:
    src = tmp_path / "src"
    shutil.copytree(package_copy, src)
    (src / "exoimap" / "store" / "_upward.py").write_text(
        '"""A store module that reaches up into the CLI."""\n\nimport exoimap.cli\n'
    )
    (src / "exoimap" / "protocol" / "_clock.py").write_text(
        '"""A protocol module that reads the clock."""\n\nimport time\n'
    )
    done = lint_imports(src)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{LAYERS} BROKEN" in done.stdout
    assert "exoimap.store._upward -> exoimap.cli" in done.stdout
    assert f"{NO_IO} BROKEN" in done.stdout
    assert "exoimap.protocol._clock -> time" in done.stdout
    assert f"{CYCLES} BROKEN" in done.stdout  # the CLI imports the store: now a cycle too
    assert "3 broken" in done.stdout


def test_a_cycle_inside_auth_breaks_the_contract(tmp_path: Path, package_copy: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(package_copy, src)
    policy = src / "exoimap" / "auth" / "policy.py"
    # a function-level import, the kind that used to hide the auth <-> audit cycle
    policy.write_text(
        policy.read_text()
        + "\n\ndef _provider() -> object:\n"
        + "    from exoimap.auth import provider\n\n    return provider\n"
    )
    done = lint_imports(src)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{CYCLES} BROKEN" in done.stdout
    assert "No cycles are allowed in exoimap.auth." in done.stdout
    assert "- .policy -> .provider" in done.stdout
    assert "1 broken" in done.stdout
