"""Shell completion in a real bash: commands, options, workspace ids, experiment ids and job ids."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands.conftest import Maker

BIN = Path(sys.executable).parent


def complete(line: str, *, cwd: Path, config: Path) -> list[str]:
    """What bash offers at the end of ``line`` (a Tab), with the script `completion bash` prints."""
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to test the completion script")
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    script = f"""
        eval "$(experimaestro completion bash)"
        COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})
        COMP_CWORD={len(words) - 1}
        _experimaestro_completion experimaestro
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "XPM_CONFIG_DIR": str(config)}
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture
def config(tmp_path: Path, maker: Maker) -> Path:
    folder = tmp_path / "completion-config"
    folder.mkdir()
    (folder / "settings.yaml").write_text(
        f"workspaces:\n  - id: main\n    path: {maker.root}\n  - id: cluster\n    path: /scratch/xp\n"
    )
    return folder


def test_commands_and_options(tmp_path: Path, config: Path) -> None:
    assert complete("experimaestro jo", cwd=tmp_path, config=config) == ["jobs"]
    assert set(complete("experimaestro jobs ", cwd=tmp_path, config=config)) >= {"list", "kill", "clean", "log", "path"}
    assert "--filter" in complete("experimaestro jobs list --fi", cwd=tmp_path, config=config)


def test_workspace_experiment_and_job_ids(tmp_path: Path, maker: Maker, config: Path) -> None:
    run = ("my-xp", maker.run("my-xp"))
    done = maker.job("m.train", 1, "done", experiment=run)
    maker.job("m.eval", 2, "error")
    assert complete("experimaestro jobs list --workspace ", cwd=tmp_path, config=config) == ["main", "cluster"]
    assert complete("experimaestro jobs list --workspace c", cwd=tmp_path, config=config) == ["cluster"]
    assert complete("experimaestro jobs list --workspace main --experiment ", cwd=tmp_path, config=config) == [
        "my-xp"
    ]
    # Job ids from the workspace the line designates (here, the group's --workdir).
    offered = complete(f"experimaestro jobs --workdir {maker.root} log m.tr", cwd=tmp_path, config=config)
    assert offered == [f"m.train/{done[1][:12]}"]
    # Nothing to complete from: no error, no output.
    assert complete("experimaestro jobs log --workdir /nonexistent/ws m.", cwd=tmp_path, config=config) == []


def test_completion_scripts_for_every_shell(tmp_path: Path) -> None:
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        done = subprocess.run([str(BIN / "experimaestro"), "completion", shell], capture_output=True, text=True)
        assert done.returncode == 0 and marker in done.stdout and "_EXPERIMAESTRO_COMPLETE" in done.stdout
    xpm = subprocess.run([str(BIN / "xpm"), "completion", "bash", "--prog-name", "xpm"], capture_output=True, text=True)
    assert "_XPM_COMPLETE" in xpm.stdout
