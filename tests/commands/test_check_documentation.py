"""``experimaestro check-documentation``: the configurations a Sphinx inventory does not document."""

from __future__ import annotations

import importlib
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

from xpm.checkdoc import InventoryEntry, read_inventory
from xpm.cli import cli

PACKAGE = {
    "docpkg/__init__.py": "from docpkg.models import Model  # re-exported: counted once, where it is defined\n",
    "docpkg/models.py": """
        from xpm import Config, Param


        class Model(Config):
            hidden: Param[int]


        class Hidden(Config):
            size: Param[int]


        class Helper:
            '''Not a configuration.'''
    """,
    "docpkg/tasks/__init__.py": """
        from xpm import Task, Param


        class Train(Task):
            lr: Param[float]

            def execute(self):
                pass
    """,
    "docpkg/tasks/extra.py": """
        from xpm import Param, Task
        from docpkg.tasks import Train  # imported: belongs to docpkg.tasks


        class Extra(Task):
            n: Param[int]

            def execute(self):
                pass
    """,
    "docpkg/experimental/__init__.py": """
        from xpm import Config


        class Draft(Config):
            pass
    """,
    "docpkg/experimental/heavy.py": "raise RuntimeError('imported although skipped')\n",
}

ALL = ["docpkg.experimental.Draft", "docpkg.models.Hidden", "docpkg.models.Model", "docpkg.tasks.Train",
       "docpkg.tasks.extra.Extra"]


def inventory(path: Path, lines: list[str], header: str = "# Sphinx inventory version 2") -> Path:
    """Writes a Sphinx inventory as Sphinx does: 4 header lines, then the zlib-compressed entries."""
    head = f"{header}\n# Project: docpkg\n# Version: 1.0\n# The remainder of this file is compressed using zlib.\n"
    path.write_bytes(head.encode() + zlib.compress("".join(f"{line}\n" for line in lines).encode()))
    return path


def documenting(names: list[str]) -> list[str]:
    lines = [f"{name} py:class 1 api.html#$ -" for name in names]
    # Entries of other kinds never count.
    lines += ["docpkg.models.Hidden py:function 1 api.html#$ -", "docpkg.models.Hidden std:label -1 api.html#h Hidden",
              "Getting started std:doc -1 start.html Getting started"]
    return lines


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "src"
    for name, text in PACKAGE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    # The command finds a package of the current folder, as `python -m` would.
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(root))])
    importlib.invalidate_caches()
    yield root
    for name in [m for m in sys.modules if m == "docpkg" or m.startswith("docpkg.")]:
        del sys.modules[name]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["check-documentation", *args], catch_exceptions=False, prog_name="experimaestro")


def test_undocumented_configurations_are_listed_and_exit_1(package: Path, tmp_path: Path):
    objects = inventory(tmp_path / "objects.inv", documenting(["docpkg.models.Model", "docpkg.tasks.Train"]))
    result = run(str(objects), "docpkg", "--skip", "docpkg.experimental.heavy")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["docpkg.experimental.Draft", "docpkg.models.Hidden",
                                          "docpkg.tasks.extra.Extra"]
    assert result.stderr == "3 of 5 configuration(s) of docpkg are not documented\n"


def test_everything_documented_exits_0(package: Path, tmp_path: Path):
    # experimaestro's Sphinx extension writes configurations as py:xpmconfig: they count too.
    lines = documenting(ALL[:-1]) + ["docpkg.tasks.extra.Extra py:xpmconfig 1 api.html#$ -"]
    objects = inventory(tmp_path / "objects.inv", lines)
    result = run(str(objects), "docpkg", "--skip", "docpkg.experimental.heavy")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == "All 5 configuration(s) of docpkg are documented\n"


def test_skip_leaves_out_packages_classes_and_globs_without_importing_them(package: Path, tmp_path: Path):
    objects = inventory(tmp_path / "objects.inv", documenting(["docpkg.models.Model"]))
    # heavy.py raises when imported: a skipped package is never imported.
    result = run(str(objects), "docpkg", "--skip", "docpkg.experimental,docpkg.models.Hidden", "--skip", "*.extra")
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == ["docpkg.tasks.Train"]
    assert "heavy" not in result.output


def test_a_module_that_cannot_be_imported_is_named_and_the_others_checked(package: Path, tmp_path: Path):
    objects = inventory(tmp_path / "objects.inv", documenting(ALL))
    result = run(str(objects), "docpkg")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Warning: cannot import docpkg.experimental.heavy (RuntimeError: imported although skipped); "
        "its configurations are not checked",
        "All 5 configuration(s) of docpkg are documented",
    ]


def test_the_inventory_reader_follows_the_format(tmp_path: Path):
    objects = inventory(tmp_path / "objects.inv", [
        "docpkg.models.Model py:class 1 api.html#$ -",
        "Getting started std:doc -1 start.html Getting started",
        "docpkg.models.Model.size py:attribute 1 api.html#docpkg.models.Model.size size",
    ])
    assert read_inventory(str(objects)) == [
        InventoryEntry("docpkg.models.Model", "py", "class", 1, "api.html#docpkg.models.Model", "docpkg.models.Model"),
        InventoryEntry("Getting started", "std", "doc", -1, "start.html", "Getting started"),
        InventoryEntry("docpkg.models.Model.size", "py", "attribute", 1, "api.html#docpkg.models.Model.size",
                       "size"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html>not an inventory</html>", "not a Sphinx inventory"),
        (b"# Sphinx inventory version 1\n# Project: x\n# Version: 1\nx mod x.html\n", "unsupported inventory"),
        (b"# Sphinx inventory version 2\n# Project: x\n# Version: 1\n# The remainder of this file is compressed "
         b"using zlib.\nnot zlib at all", "damaged inventory"),
        (b"# Sphinx inventory version 2\n# Project: x\n# Version: 1\n# The remainder of this file is compressed "
         b"using zlib.\n" + zlib.compress(b"justoneword\n"), "damaged inventory: entry 1"),
    ],
)
def test_a_file_that_is_not_an_inventory_is_one_line(package: Path, tmp_path: Path, content: bytes, message: str):
    bad = tmp_path / "objects.inv"
    bad.write_bytes(content)
    result = run(str(bad), "docpkg")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {bad}: {message}")


def test_a_missing_file_and_an_unknown_package_are_one_line(package: Path, tmp_path: Path):
    result = run(str(tmp_path / "missing.inv"), "docpkg")
    assert result.exit_code == 1 and result.stderr == f"Error: {tmp_path / 'missing.inv'}: No such file or directory\n"
    objects = inventory(tmp_path / "objects.inv", documenting(ALL))
    result = run(str(objects), "no_such_package_here")
    assert result.exit_code == 1
    assert result.stderr == ("Error: cannot import the package 'no_such_package_here': "
                             "ModuleNotFoundError: No module named 'no_such_package_here'\n")


def test_help_fits_80_columns_and_shows_an_example():
    result = CliRunner().invoke(cli, ["check-documentation", "--help"], prog_name="experimaestro")
    assert result.exit_code == 0
    assert "experimaestro check-documentation docs/_build/html/objects.inv my_package" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_the_reference_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``experimaestro check-documentation objects.inv my_package``, in the project's folder."""
    (tmp_path / "my_package").mkdir()
    (tmp_path / "my_package" / "__init__.py").write_text(
        "from xpm import Config, Param\n\n\nclass Documented(Config):\n    x: Param[int]\n"
    )
    inventory(tmp_path / "objects.inv", documenting(["my_package.Documented"]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        result = run("objects.inv", "my_package")
    finally:
        sys.modules.pop("my_package", None)
    assert result.exit_code == 0 and result.stderr == "All 1 configuration(s) of my_package are documented\n"
