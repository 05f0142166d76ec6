"""``import xpm`` stays light: no command-line, terminal or filesystem libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["click", "urwid", "fsspec", "sshfs", "asyncssh", "yaml", "portalocker", "aiohttp"]


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_import_xpm_loads_no_heavy_module():
    loaded = modules_after("import xpm")
    assert "xpm" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_defining_configs_and_identifiers_loads_no_heavy_module():
    loaded = modules_after(
        "import xpm\n"
        "from xpm import Config, Param\n"
        "class A(Config):\n    __xpmid__ = 'a'\n    x: Param[int]\n"
        "print(xpm.identifier(A.C(x=1)))"
    )
    assert "xpm.ids" in loaded and "blake3" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_the_commands_help_loads_no_web_server():
    """aiohttp is imported by the commands that serve the web monitor only, when they serve."""
    loaded = modules_after(
        "from xpm.cli import main\n"
        "for args in (['--help'], ['experiments', 'monitor', '--help'], ['run-experiment', '--help']):\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass"
    )
    assert "xpm.cli.run_experiment" in loaded and "aiohttp" not in loaded and "xpm.web" not in loaded


def test_public_api_is_complete():
    import xpm

    for name in xpm.__all__:
        assert getattr(xpm, name) is not None, name


def test_the_package_ships_the_typed_marker():
    """PEP 561: type checkers read xpm's annotations only when the package has ``py.typed``."""
    from pathlib import Path

    import xpm

    assert (Path(xpm.__file__).parent / "py.typed").is_file()


def test_listing_experiments_loads_only_its_command(tmp_path):
    """``experiments list`` is mostly start-up: it loads neither the other commands, nor PyYAML when there
    is no settings file, nor the configuration classes, nor socket (docs/performance.md, W4)."""
    from xpm.workspace import Workspace

    Workspace.open(str(tmp_path / "ws"), create=True)
    loaded = modules_after(
        "import os\n"
        f"os.environ['XPM_CONFIG_DIR'] = {str(tmp_path / 'config')!r}\n"
        "from xpm.cli import main\n"
        "try:\n"
        f"    main(['experiments', 'list', '--workdir', {str(tmp_path / 'ws')!r}])\n"
        "except SystemExit:\n    pass"
    )
    assert "xpm.cli.commands" in loaded and "xpm.store.summaries" in loaded
    others = {"xpm.cli.jobs", "xpm.cli.history", "xpm.cli.sshmonitor", "xpm.cli.copy", "xpm.cli.run_experiment",
              "xpm.cli.orphans", "xpm.cli.refactor", "xpm.cli.monitorserver"}
    assert sorted(others & loaded) == []
    assert sorted({"yaml", "xpm.config", "socket", "json", "logging"} & loaded) == []


def _logging_after(args: list[str], tmp_path) -> list[str]:
    """The root level, the asyncssh level and an INFO line, after a command that did not import logging."""
    from xpm.workspace import Workspace

    Workspace.open(str(tmp_path / "ws"), create=True)
    code = (
        "import os, sys\n"
        f"os.environ['XPM_CONFIG_DIR'] = {str(tmp_path / 'config')!r}\n"
        "from xpm.cli import main\n"
        "try:\n"
        f"    main({args!r} + ['experiments', 'list', '--workdir', {str(tmp_path / 'ws')!r}])\n"
        "except SystemExit:\n    pass\n"
        "assert 'logging' not in sys.modules\n"
        "import logging\n"
        "print(logging.getLogger().level, logging.getLogger('asyncssh').level)\n"
        "logging.getLogger('xpm.somewhere').info('said at INFO')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [out.stdout.splitlines()[-1], *out.stderr.splitlines()]


def test_logging_imported_after_start_up_is_configured_as_the_options_say(tmp_path):
    """The command line configures logging when it is first imported (xpm/cli/logs.py), as if at once."""
    assert _logging_after([], tmp_path) == ["20 30", "INFO xpm.somewhere: said at INFO"]
    assert _logging_after(["--debug"], tmp_path) == ["10 10", "INFO xpm.somewhere: said at INFO"]
    assert _logging_after(["--quiet"], tmp_path) == ["30 30"]


def test_every_lazy_command_is_found_under_its_name():
    """The tables of lazily loaded commands name real commands, and each by its own name."""
    import click

    from xpm.cli.app import COMMANDS, cli
    from xpm.cli.commands import EXPERIMENT_COMMANDS, experiments

    for group, table in ((cli, COMMANDS), (experiments, EXPERIMENT_COMMANDS)):
        ctx = click.Context(group)
        for name in table:
            command = group.get_command(ctx, name)
            assert isinstance(command, click.Command) and command.name == name, name
        assert set(table) <= set(group.list_commands(ctx))
