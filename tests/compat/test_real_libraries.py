"""Real libraries written for experimaestro import unchanged through the drop-in.

The pinned wheels of four libraries built on experimaestro (a dataset catalogue,
its information-retrieval datasets, a PyTorch helper library and an
information-retrieval library; ``scripts/compat/libraries.py``) are unpacked and
every one of their modules is imported, their absent third-party dependencies
faked as a documentation build fakes them. Every failure raised by xpm must be a
name or module xpm documents as not provided; what else fails comes from a
faked dependency, and the number of modules that import must not drop.

The wheels are downloaded once (``~/.cache/xpm-compat-wheels``, or
``XPM_COMPAT_WHEELS``); without network the test skips, except in CI
(``XPM_REQUIRE_LIBS=1``), where it fails.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("xpm_compat_libraries", ROOT / "scripts" / "compat" / "libraries.py")
assert _spec is not None and _spec.loader is not None
libraries = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(libraries)

#: What xpm documents as not provided (docs/compatibility.md) and these libraries import
DOCUMENTED = {
    "experimaestro.tools",  # maintenance tools: xpm's commands
    "experimaestro.mkdocs.base",  # documentation-generator plugin
    "experimaestro.click",  # experimaestro's command line
    "experimaestro.experiments.cli.experiments_cli",  # run-experiment is xpm's command
}

#: Modules that import today, per library (out of 37, 54, 36 and 97): the floor
FLOOR = {"datamaestro": 35, "datamaestro_ir": 49, "xpm_torch": 36, "xpmir": 88}


@pytest.fixture(scope="module")
def report() -> dict:
    wheels = Path(os.environ.get("XPM_COMPAT_WHEELS", libraries.DEFAULT_WHEELS))
    try:
        libraries.download(wheels)
    except Exception as exc:
        if os.environ.get("XPM_REQUIRE_LIBS") == "1":
            pytest.fail(f"the library wheels could not be downloaded: {exc}")
        pytest.skip(f"the library wheels could not be downloaded (no network?): {exc}")
    return libraries.walk(wheels)


@pytest.mark.parametrize("package", sorted(FLOOR))
def test_every_module_imports_but_for_documented_gaps_and_faked_dependencies(report: dict, package: str) -> None:
    result = report[package]
    for failure in result["failed"]:
        if failure["raised_in_xpm"]:
            assert failure["error"] in ("NotProvidedError", "ModuleNotProvidedError"), failure
            assert any(name in failure["message"] for name in DOCUMENTED), failure
            assert "see docs/compatibility.md" in failure["message"]
        else:
            # A faked dependency (torch, numpy...) did not behave as the real one: never an experimaestro name
            assert "experimaestro" not in failure["message"], failure
    assert len(result["imported"]) >= FLOOR[package]
    assert package in result["imported"]  # the package itself always imports


def test_the_faked_dependencies_are_third_party_only(report: dict) -> None:
    # experimaestro, xpm and the libraries themselves are never faked: they are imported for real
    own = {"experimaestro", "xpm", *FLOOR}
    assert not own & set(report["faked"])
