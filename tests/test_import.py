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
