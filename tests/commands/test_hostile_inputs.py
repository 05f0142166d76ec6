"""Hostile or damaged input gets one clear line and a non-zero exit: never a traceback, never a hang.

YAML that expands to billions of values or nests thousands deep, numbers and counts past what
Python converts, an empty module name, a regular expression that backtracks exponentially, and a
few thousand generated filters and job ids.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands.conftest import Maker
from xpm.errors import XpmError
from xpm.filter import FilterError, parse
from xpm.store.jobs import JobStore

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{before}'] * 9)}]\n" for before, name in zip("abcdefgh", "bcdefghi")
)
DEEP = "a: " + "[" * 5000 + "]" * 5000 + "\n"


def command(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command line in its own process (a hang would be killed: the timeout is a guard, not a measure)."""
    return subprocess.run([sys.executable, "-m", "xpm", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.stderr, result.stderr
    for part in parts:
        assert part in lines[0]


@pytest.mark.parametrize("text, problem", [(LAUGHS, "aliases expand to more than"), (DEEP, "nested more than")])
def test_hostile_settings_yaml(text: str, problem: str, tmp_path: Path, own_settings: Path):
    (own_settings / "settings.yaml").write_text(text)  # XPM_CONFIG_DIR names this folder
    one_line_error(command("jobs", "list", "--workdir", str(tmp_path / "ws")), "settings.yaml", problem)


@pytest.mark.parametrize("text, problem", [(LAUGHS, "aliases expand to more than"), (DEEP, "nested more than")])
def test_hostile_experiment_yaml(text: str, problem: str, tmp_path: Path):
    (tmp_path / "xp.yaml").write_text("id: xp\nfile: xp\n" + text)
    (tmp_path / "xp.py").write_text("def run(helper, cfg):\n    pass\n")
    result = command("run-experiment", "--workdir", str(tmp_path / "ws"), "xp.yaml", cwd=tmp_path)
    one_line_error(result, "xp.yaml", problem)


def test_a_number_past_what_python_converts(maker: Maker, xpm_cli):
    result = xpm_cli("jobs", "list", "--workdir", "{ws}", "--filter", "epochs = " + "9" * 100_000)
    assert result.exit_code == 2 and "a number of at most 4300 digits" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_count_past_what_a_list_can_hold(maker: Maker, xpm_cli):
    result = xpm_cli("jobs", "list", "--workdir", "{ws}", "-c", "9" * 30)
    assert result.exit_code == 2 and "is not in the range" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_empty_module_name(tmp_path: Path):
    (tmp_path / "xp.yaml").write_text("id: xp\n")
    result = command("run-experiment", "--workdir", str(tmp_path / "ws"), "--module-name", "", "xp.yaml", cwd=tmp_path)
    one_line_error(result, "--module-name", "expected a module name")


def test_a_regular_expression_that_backtracks_exponentially_is_refused(maker: Maker, xpm_cli):
    maker.job("m.train", 1, "done", tags={"note": "a" * 5000 + "!"})
    result = xpm_cli("jobs", "list", "--workdir", "{ws}", "--filter", 'note ~ "(a+)+$"')
    assert result.exit_code == 2 and "without a repetition inside a repetition" in result.stderr
    # The same question, asked safely, is answered at once.
    assert xpm_cli("jobs", "list", "--workdir", "{ws}", "--filter", 'note ~ "a+$"').stdout.strip() == "No jobs found."


ALPHABET = 'abz@ _.-=!~()[],"\'\\09eE+ \t\n\x00é' + "\u2028"
WORDS = ["@state", "@name", "in", "not", "and", "or", "done", "RUNNING", "~", "=", "!=", "(", ")", "[", "]", ",",
         '"', "1e-", "9" * 50, "(a+)+", "\\d+"]


def generated(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        if rng.random() < 0.5:
            parts.append(rng.choice(WORDS))
        else:
            parts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6))))
    return rng.choice(["", " "]).join(parts)


def test_generated_filters_parse_or_give_a_filter_error():
    rng = random.Random(20261204)
    tags = {"model": "bm25", "epochs": 10, "note": None, "flag": True}
    for _ in range(3000):
        text = generated(rng)
        try:
            compiled = parse(text)
        except FilterError as error:
            assert 1 <= error.column <= len(text) + 1 and "\n" not in str(error), text
            continue
        compiled.matches("done", "m.train", tags)


def test_generated_job_ids_resolve_or_give_one_error(maker: Maker):
    rng = random.Random(4)
    key = maker.job("m.train", 0xABC, "done")
    store = JobStore(maker.ws)
    texts = [f"{key[0]}/{key[1][:n]}" for n in range(0, 66)] + ["../" + key[1], "/", "", "m.train//x", "\x00/a"]
    texts += [generated(rng).replace(" ", "/") for _ in range(2000)]
    for text in texts:
        try:
            assert store.resolve(text) == key
        except XpmError as error:
            assert "\n" not in str(error)
