"""A full disk ends the experiment with one clear line; nothing hangs, and space freed brings it back.

The workspace is on a small tmpfs of its own (mounted by the test: it needs root, as CI has),
filled while an experiment runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.run.conftest import script_env, wait_until

SCRIPT = """
import sys
from xpm import experiment, tag
from tests.run.tasks import Record

with experiment(sys.argv[1], "full") as xp:
    previous = None
    for i in range(40):
        task = Record.C(key=tag(f"job{{i}}"), log=sys.argv[2], wait_for={go!r} if i == 5 else None)
        if previous is not None:
            task.add_dependencies(previous.job)
        previous = task.submit()
"""


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MB tmpfs, unmounted at the end."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        if os.environ.get("XPM_REQUIRE_MOUNT") == "1":
            pytest.fail(f"cannot mount a tmpfs: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here (root needed): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Writes a file until the disk is full; returns it."""
    filler = folder / "filler"
    # Unbuffered: a buffered file would try its last, partial block again when closed, and
    # raise there (ENOSPC) whenever the free space is not a multiple of the block.
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def run(script: Path, ws: Path, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(script), str(ws), str(log)], env=script_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_full_disk_ends_the_experiment_with_one_line_and_space_freed_brings_it_back(small_disk: Path,
                                                                                        tmp_path: Path):
    ws, log, go = small_disk / "ws", tmp_path / "log", tmp_path / "go"
    script = tmp_path / "full.py"
    script.write_text(SCRIPT.format(go=str(go)))
    experiment = run(script, ws, log)
    wait_until(lambda: log.exists() and "job5 start" in log.read_text(), timeout=60, what="job5 to start")
    filler = fill(small_disk)
    go.write_text("go")
    _, err = experiment.communicate(timeout=120)  # before: it never ended
    assert experiment.returncode == 1
    assert "Traceback" not in err and "scheduler error" not in err, err
    assert "No space left on device" in err
    lines = [line for line in err.splitlines() if "No space left on device" in line]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err

    # Every command says it in one line while the disk is full.
    listed = subprocess.run([sys.executable, "-m", "xpm", "experiments", "sync", "--workdir", str(ws)],
                            capture_output=True, text=True, timeout=60, env=script_env())
    assert listed.returncode != 0 and "Traceback" not in listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1

    # Space freed: sync and check bring the workspace back, and the experiment ends its work.
    filler.unlink()
    for command in (["experiments", "sync"], ["workspace", "check"]):
        done = subprocess.run([sys.executable, "-m", "xpm", *command, "--workdir", str(ws)], capture_output=True,
                              text=True, timeout=120, env=script_env())
        assert "Traceback" not in done.stderr, done.stderr
    again = run(script, ws, log)
    _, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    ends = [line.split()[0] for line in log.read_text().splitlines() if line.split()[1] == "end"]
    assert set(ends) == {f"job{i}" for i in range(40)}
    # Only the job whose end could not be recorded on the full disk runs again.
    assert sorted(ends) == sorted([*(f"job{i}" for i in range(40)), "job5"]) or len(ends) == 40
