"""Every example of the command-line reference about jobs, filters and experiments, run as written.

The examples are copied from experimaestro's documentation (the reference of our command line). The
workspace is the first one of settings.yaml when an example gives none, and ``/path/to/workspace``
stands for it when it does; ``mymodule.MyTask/abc123def`` is a job of the test workspace.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.commands.conftest import Maker, dead_pid, local

EXAMPLES = {
    "experimaestro experiments sync --workdir /path/to/workspace": "jobs, 0 fixes",
    "experimaestro jobs list -c 10": "DONE        mymodule.mytask/abc123def000",
    "experimaestro jobs list --filter '@state = \"RUNNING\"' -c 5": "RUNNING     mymodule.other/000000000000",
    "experimaestro jobs kill --filter '@state=\"RUNNING\"'": "KILLING mymodule.other/000000000000 (dry run)",
    "experimaestro jobs clean --filter '@state=\"DONE\"'": "CLEANING mymodule.mytask/abc123def000 (dry run)",
    "experimaestro jobs log mymodule.MyTask/abc123def": "an error line",
    "experimaestro jobs log --std mymodule.MyTask/abc123def": "an output line",
    "experimaestro jobs log -f mymodule.MyTask/abc123def": "an error line",
    "experimaestro jobs path mymodule.MyTask/abc123def": "/jobs/mymodule.mytask/abc123def000",
    "experimaestro jobs list --filter '@state = \"DONE\"'": "DONE        mymodule.mytask/abc123def000",
    "experimaestro jobs list --filter '@state = \"ERROR\"'": "ERROR       mymodule.other/000000000000",
    "experimaestro jobs list --filter 'model = \"bm25\"'": "DONE        mymodule.mytask/abc123def000",
    "experimaestro jobs list --filter 'model = \"bm25\" and dataset = \"msmarco\"'":
        "DONE        mymodule.mytask/abc123def000",
    "experimaestro jobs list --filter '@state = \"RUNNING\" or @state = \"WAITING\"'":
        "WAITING     mymodule.other/000000000000\nRUNNING     mymodule.other/000000000000",
    "experimaestro jobs list --filter 'model in [\"bm25\", \"splade\"]'":
        "ERROR       mymodule.other/000000000000\nDONE        mymodule.mytask/abc123def000",
    "experimaestro jobs list --filter 'mode not in [\"debug\", \"test\"]'":
        "WAITING     mymodule.other/000000000000\nERROR       mymodule.other/000000000000\n"
        "DONE        mymodule.mytask/abc123def000",
    "experimaestro jobs list --filter '@state = \"ERROR\" and model = \"bm25\"'": "No jobs found.",
    "experimaestro experiments list --workdir /path/to/workspace": "xp [node1] (1/4 jobs)",
}
PERFORM = {
    "experimaestro jobs kill --filter '@state=\"RUNNING\"' --perform": "CANCELLED mymodule.other/000000000000",
    "experimaestro jobs clean --filter '@state=\"DONE\"' --perform": "CLEANED mymodule.mytask/abc123def000",
}


@pytest.fixture
def workspace(maker: Maker, own_settings: Path) -> Maker:
    (own_settings / "settings.yaml").write_text(f"workspaces:\n  - id: main\n    path: {maker.root}\n")
    run = ("xp", maker.run("xp"))
    done = maker.job("mymodule.mytask", 0xABC123DEF << 220, "done", tags={"model": "bm25", "dataset": "msmarco"},
                     experiment=run)
    (maker.path(done) / "mytask.err").write_text("an error line\n")
    (maker.path(done) / "mytask.out").write_text("an output line\n")
    maker.job("mymodule.other", 1, "error", reason="failed", tags={"model": "splade"}, experiment=run)
    maker.job("mymodule.other", 2, "running", process=local(dead_pid()), tags={"mode": "debug"}, experiment=run)
    maker.job("mymodule.other", 3, "waiting", tags={"mode": "train"}, experiment=run)
    return maker


def run_example(example: str, maker: Maker, xpm_cli) -> str:
    args = shlex.split(example.replace("/path/to/workspace", str(maker.root)))
    assert args[0] == "experimaestro"
    result = xpm_cli(*args[1:])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_reference_example(example: str, workspace: Maker, xpm_cli):
    out = run_example(example, workspace, xpm_cli)
    assert EXAMPLES[example] in out


@pytest.mark.parametrize("example", sorted(PERFORM))
def test_reference_example_with_perform(example: str, workspace: Maker, xpm_cli):
    before = run_example(example.replace(" --perform", ""), workspace, xpm_cli)
    out = run_example(example, workspace, xpm_cli)
    assert PERFORM[example] in out.splitlines()
    assert "(dry run)" in before and "(dry run)" not in out
