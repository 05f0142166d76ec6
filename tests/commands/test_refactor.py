"""``experimaestro refactor default-values``: bare defaults rewritten with ``field``, identifiers kept."""

from __future__ import annotations

import ast
import os
import shlex
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import xpm
from xpm.cli import cli
from xpm.imports import import_file
from xpm.refactor import rewrite_source

MODELS = '''\
"""Models (a docstring, kept)."""
from pathlib import Path

from xpm import Config, Meta, Option, Param, Task  # the annotations


class Model(Config):
    __xpmid__ = "refactor.model"
    hidden: Param[int] = 64  # the width
    name:   Param[str] = 'é, "quoted"'
    sizes: Param[tuple[int, ...]] = 1, 2
    dropout: Param[float | None] = None


class Train(Task):
    __xpmid__ = "refactor.train"
    model: Param[Model]
    epochs: Param[int] = 10
    device: Meta[str] = "cpu"   # never in the identifier
    verbose: Option[bool] = False
    layers: Param[list[int]] = [
        1, 2,
    ]

    class Inner(Config):
        __xpmid__ = "refactor.train.inner"
        depth: Param[int] = (3)

    def execute(self):
        pass
'''

REWRITTEN = '''\
"""Models (a docstring, kept)."""
from pathlib import Path

from xpm import Config, Meta, Option, Param, Task, field  # the annotations


class Model(Config):
    __xpmid__ = "refactor.model"
    hidden: Param[int] = field(default=64, ignore_default=True)  # the width
    name:   Param[str] = field(default='é, "quoted"', ignore_default=True)
    sizes: Param[tuple[int, ...]] = field(default=(1, 2), ignore_default=True)
    dropout: Param[float | None] = None


class Train(Task):
    __xpmid__ = "refactor.train"
    model: Param[Model]
    epochs: Param[int] = field(default=10, ignore_default=True)
    device: Meta[str] = field(default="cpu", ignore_default=True)   # never in the identifier
    verbose: Option[bool] = field(default=False, ignore_default=True)
    layers: Param[list[int]] = [
        1, 2,
    ]

    class Inner(Config):
        __xpmid__ = "refactor.train.inner"
        depth: Param[int] = (field(default=3, ignore_default=True))

    def execute(self):
        pass
'''

CLEAN = '''\
from xpm import Config, Param, field


class Done(Config):
    x: Param[int] = field(default=1, ignore_default=True)
    y: Param[int] = field(default=2)
'''


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, prog_name="experimaestro")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "models.py").write_text(MODELS, encoding="utf-8")
    (root / "pkg" / "clean.py").write_text(CLEAN)
    # Never searched: hidden folders and virtual environments.
    bare = "from xpm import Config, Param\nclass A(Config):\n    x: Param[int] = 1\n"
    for skipped in (".hidden", "venv"):
        (root / skipped).mkdir()
        (root / skipped / "bare.py").write_text(bare)
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return root


def identifiers(path: Path, name: str) -> dict[str, str]:
    """Identifiers of configurations of the classes in ``path``, the values equal to the defaults included."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module: Any = import_file(name, path)
    try:
        model = module.Model
        values = {
            "defaults": model.C(),
            "equal": model.C(hidden=64, name='é, "quoted"', sizes=(1, 2)),
            "other": model.C(hidden=32),
            "train": module.Train.C(model=model.C(), epochs=10, device="gpu"),
            "train-other": module.Train.C(model=model.C(), epochs=11),
            "inner": module.Train.Inner.C(depth=3),
        }
        result = {key: xpm.identifier(value) for key, value in values.items()}
        # xpm warns once per module, naming the first bare default it meets.
        result["warned"] = ",".join(str(w.message).split(":")[0] for w in caught if "bare default" in str(w.message))
        return result
    finally:
        sys.modules.pop(name, None)


def test_a_dry_run_shows_the_diff_and_a_perform_writes_it_keeping_every_identifier(project: Path, monkeypatch):
    monkeypatch.chdir(project)
    models = project / "pkg" / "models.py"
    models.chmod(0o755)
    before = identifiers(models, "refactor_before")
    assert before["warned"] == "Model.hidden"

    result = run("refactor", "default-values")
    assert result.exit_code == 1
    assert "--- a/pkg/models.py\n+++ b/pkg/models.py\n" in result.stdout
    assert "-    hidden: Param[int] = 64  # the width\n" in result.stdout
    assert "+    hidden: Param[int] = field(default=64, ignore_default=True)  # the width\n" in result.stdout
    assert "clean.py" not in result.stdout and "bare.py" not in result.stdout
    assert "pkg/models.py:21: Train.layers: the default spans several lines" in result.stderr
    assert "7 bare default(s) in 1 file(s) would be rewritten" in result.stderr
    assert models.read_text(encoding="utf-8") == MODELS  # a dry run writes nothing

    result = run("refactor", "default-values", ".", "--perform")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Rewrote pkg/models.py (7 default(s))\n"
    assert models.read_text(encoding="utf-8") == REWRITTEN
    assert models.stat().st_mode & 0o777 == 0o755
    assert not list(models.parent.glob(".*.tmp"))
    assert (project / "venv" / "bare.py").read_text().endswith("= 1\n")

    after = identifiers(models, "refactor_after")
    # Only the default left for a manual fix is still bare.
    assert after.pop("warned") == "Train.layers" and before.pop("warned")
    assert after == before

    # Only the multi-line default is left, for a manual fix: still reported.
    result = run("refactor", "default-values", str(project / "pkg"))
    assert result.exit_code == 1 and result.stdout == ""
    assert "models.py:21: Train.layers" in result.stderr


def test_nothing_to_change_exits_0(project: Path):
    result = run("refactor", "default-values", str(project / "pkg" / "clean.py"))
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == "No bare default to rewrite\n"


def rewritten(source: str) -> str:
    return rewrite_source(textwrap.dedent(source)).new


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            """
            from xpm import (
                Config,
                Param,
            )
            class A(Config):
                x: Param[int] = 1
            """,
            """
            from xpm import (
                Config,
                Param,
                field,
            )
            class A(Config):
                x: Param[int] = field(default=1, ignore_default=True)
            """,
            id="one-name-a-line",
        ),
        pytest.param(
            """
            from xpm import Config, \\
                Param
            class A(Config):
                x: Param[int] = 1
            """,
            """
            from xpm import Config, \\
                Param, field
            class A(Config):
                x: Param[int] = field(default=1, ignore_default=True)
            """,
            id="continued-line",
        ),
        pytest.param(
            """
            from dataclasses import field
            import xpm
            from xpm import Config, Param
            class A(Config):
                x: Param[int] = 1
                y: xpm.Param[str] = "s"
            """,
            """
            from dataclasses import field
            import xpm
            from xpm import Config, Param
            class A(Config):
                x: Param[int] = xpm.field(default=1, ignore_default=True)
                y: xpm.Param[str] = xpm.field(default="s", ignore_default=True)
            """,
            id="dataclasses-field-and-import-xpm",
        ),
        pytest.param(
            """
            from dataclasses import field
            from xpm import Config, Param
            class A(Config):
                x: Param[int] = 1
            """,
            """
            from dataclasses import field
            from xpm import Config, Param, field as xpm_field
            class A(Config):
                x: Param[int] = xpm_field(default=1, ignore_default=True)
            """,
            id="dataclasses-field",
        ),
        pytest.param(
            """
            from xpm.config.types import Param
            from xpm import Config
            class A(Config):
                x: Param[int] = (y := 2)
                if True:
                    pass
            """,
            """
            from xpm.config.types import Param
            from xpm import field
            from xpm import Config
            class A(Config):
                x: Param[int] = (field(default=(y := 2), ignore_default=True))
                if True:
                    pass
            """,
            id="a-module-without-field",
        ),
        pytest.param(
            """
            from xpm import *
            class A(Config):
                x: Param[int] = 1
            """,
            """
            from xpm import *
            class A(Config):
                x: Param[int] = field(default=1, ignore_default=True)
            """,
            id="star-import",
        ),
        pytest.param(
            """
            import xpm as x
            class A(x.Config):
                a: x.Param[int] = 1; b: x.Meta[int] = 2
                c: x.Param[int] = x.field(default=1)
                d: int = 4
            """,
            """
            import xpm as x
            class A(x.Config):
                a: x.Param[int] = x.field(default=1, ignore_default=True); b: x.Meta[int] = x.field(default=2, \
ignore_default=True)
                c: x.Param[int] = x.field(default=1)
                d: int = 4
            """.replace("\\\n", ""),
            id="module-alias",
        ),
    ],
)
def test_field_is_imported_or_reached_as_the_module_allows(source: str, expected: str):
    new = rewritten(source)
    assert new == textwrap.dedent(expected)
    # The rewritten module defines its classes without a bare-default warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        exec(compile(new, "<rewritten>", "exec"), {"__name__": "refactor_case"})


def test_experimaestro_imports_get_experimaestro_field():
    new = rewritten(
        """
        from experimaestro import Config, Param
        class A(Config):
            x: Param[int] = 1
        """
    )
    assert "from experimaestro import Config, Param, field\n" in new
    assert "x: Param[int] = field(default=1, ignore_default=True)" in new


def test_line_endings_and_encoding_are_kept(tmp_path: Path):
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(b"from xpm import Config, Param\r\n\r\nclass A(Config):\r\n    x: Param[int] = 1  # one\r\n")
    latin = tmp_path / "latin.py"
    latin.write_bytes("# -*- coding: latin-1 -*-\nfrom xpm import Config, Param\nclass B(Config):\n"
                      "    s: Param[str] = 'caf\u00e9'\n    t: Param[str] = 'x'".encode("latin-1"))
    result = run("refactor", "default-values", str(tmp_path), "--perform")
    assert result.exit_code == 0, result.output
    assert crlf.read_bytes() == (b"from xpm import Config, Param, field\r\n\r\nclass A(Config):\r\n"
                                 b"    x: Param[int] = field(default=1, ignore_default=True)  # one\r\n")
    assert latin.read_bytes() == (
        "# -*- coding: latin-1 -*-\nfrom xpm import Config, Param, field\nclass B(Config):\n"
        "    s: Param[str] = field(default='caf\u00e9', ignore_default=True)\n"
        "    t: Param[str] = field(default='x', ignore_default=True)"
    ).encode("latin-1")


def test_a_file_that_does_not_parse_is_named_and_the_others_are_rewritten(tmp_path: Path):
    (tmp_path / "broken.py").write_text("class A(:\n")
    (tmp_path / "undecodable.py").write_bytes(b"x = '\xff\xfe'\n")
    good = tmp_path / "good.py"
    good.write_text("from xpm import Config, Param\nclass A(Config):\n    x: Param[int] = 1\n")
    result = run("refactor", "default-values", str(tmp_path), "--perform")
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert [line for line in errors if line.startswith("Warning:")] == [
        f"Warning: {tmp_path / 'broken.py'}: line 1: not valid Python (invalid syntax); left unchanged",
        f"Warning: {tmp_path / 'undecodable.py'}: cannot be decoded "
        "(invalid or missing encoding declaration); left unchanged",
    ]
    assert (tmp_path / "broken.py").read_text() == "class A(:\n"
    assert "field(default=1, ignore_default=True)" in good.read_text()
    ast.parse(good.read_text())


def test_a_path_that_does_not_exist_is_one_line(tmp_path: Path):
    result = run("refactor", "default-values", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ") and "does not exist" in result.stderr


def test_help_fits_80_columns_and_shows_examples():
    for command in (["refactor"], ["refactor", "default-values"]):
        result = run(*command, "--help")
        assert result.exit_code == 0
        assert "experimaestro refactor default-values" in result.stdout
        assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_the_deprecation_warning_and_the_command_say_the_same_form(tmp_path: Path):
    """The rewrite writes what xpm's warning about bare defaults tells users to write."""
    source = "from xpm import Config, Param\nclass W(Config):\n    x: Param[int] = 1\n"
    (tmp_path / "warned.py").write_text(source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import_file("refactor_warned", tmp_path / "warned.py")
    sys.modules.pop("refactor_warned")
    message = next(str(w.message) for w in caught if "bare default" in str(w.message))
    assert "field(default=..., ignore_default=True)" in message
    assert "field(default=1, ignore_default=True)" in rewritten(source)


def test_files_are_found_sorted_and_skipped_folders_are_not(project: Path):
    from xpm.refactor import python_files

    found = [os.path.relpath(p, project) for p in python_files(str(project))]
    assert found == ["pkg/clean.py", "pkg/models.py"]


@pytest.mark.parametrize("perform", [False, True])
def test_the_reference_examples_run_as_written(project: Path, perform: bool):
    example = "experimaestro refactor default-values /path/to/project" + (" --perform" if perform else "")
    words = shlex.split(example.replace("/path/to/project", str(project)))
    result = CliRunner().invoke(cli, words[1:], catch_exceptions=False, prog_name="experimaestro")
    assert result.exit_code == (0 if perform else 1), result.output
    models = (project / "pkg" / "models.py").read_text(encoding="utf-8")
    assert (models == REWRITTEN) is perform
