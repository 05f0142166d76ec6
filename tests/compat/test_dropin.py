"""The drop-in, in fresh interpreters: off by default, on by install() or XPM_EXPERIMAESTRO=1 (through
the installed .pth file), the same objects as xpm's, clear errors for what it lacks, never a silent
shadowing of a real experimaestro."""

from __future__ import annotations

import json
import site
import sysconfig
import textwrap
from pathlib import Path

from tests.compat.conftest import FAKE_VERSION, check, python

#: Names that exist in xpm today, each with the xpm object it must be
SAME_OBJECTS = {
    "experimaestro:Config": "xpm:Config",
    "experimaestro:Task": "xpm:Task",
    "experimaestro:Param": "xpm:Param",
    "experimaestro:Meta": "xpm:Meta",
    "experimaestro:Option": "xpm:Option",
    "experimaestro:Constant": "xpm:Constant",
    "experimaestro:field": "xpm:field",
    "experimaestro:tag": "xpm:tag",
    "experimaestro:tagspath": "xpm:tagspath",
    "experimaestro:stop_tags": "xpm:stop_tags",
    "experimaestro:copyconfig": "xpm:copyconfig",
    "experimaestro:PathGenerator": "xpm:PathGenerator",
    "experimaestro:LightweightTask": "xpm:LightweightTask",
    "experimaestro:ResumableTask": "xpm:ResumableTask",
    "experimaestro:Prepare": "xpm:Prepare",
    "experimaestro:experiment": "xpm:experiment",
    "experimaestro:FailedExperiment": "xpm:FailedExperiment",
    "experimaestro:RunMode": "xpm:RunMode",
    "experimaestro:GracefulTimeout": "xpm:GracefulTimeout",
    "experimaestro:TaskCancelled": "xpm:TaskCancelled",
    "experimaestro:load": "xpm:load",
    "experimaestro:save": "xpm:save",
    "experimaestro:from_task_dir": "xpm:from_task_dir",
    "experimaestro.core.objects:Config": "xpm:Config",
    "experimaestro.core.objects:ConfigMixin": "xpm.config.base:ConfigMixin",
    "experimaestro.core.arguments:Param": "xpm:Param",
    "experimaestro.core.arguments:field": "xpm:field",
    "experimaestro.core.objects.config:Task": "xpm:Task",
    "experimaestro.generators:PathGenerator": "xpm:PathGenerator",
    "experimaestro.scheduler:experiment": "xpm:experiment",
    "experimaestro.scheduler.workspace:RunMode": "xpm:RunMode",
    "experimaestro.launchers:Launcher": "xpm.launchers:Launcher",
    "experimaestro.launchers.direct:DirectLauncher": "xpm.launchers.local:LocalLauncher",
    "experimaestro.launchers.slurm:SlurmLauncher": "xpm.launchers.slurm:SlurmLauncher",
    "experimaestro.launchers.slurm:SlurmOptions": "xpm.launchers.slurm_options:SlurmOptions",
    "experimaestro.launcherfinder:find_launcher": "xpm.launchers.finder:find_launcher",
    "experimaestro.launcherfinder.specs:HostRequirement": "xpm.launchers.requirements:HostRequirement",
    "experimaestro.tokens:CounterToken": "xpm.store.tokens:CounterToken",
    "experimaestro.exceptions:GracefulTimeout": "xpm:GracefulTimeout",
    "experimaestro.experiments:configuration": "xpm.experiments:configuration",
    "experimaestro.experiments:ExperimentHelper": "xpm.experiments:ExperimentHelper",
    "experimaestro.settings:WorkspaceSettings": "xpm.settings:WorkspaceSettings",
    "experimaestro:Annotated": "typing:Annotated",
    "experimaestro:Path": "pathlib:Path",
}

#: Compares each drop-in name with its xpm object; prints the names that differ (as JSON)
COMPARE = """
import importlib, json
def get(spec):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
pairs = json.loads(%r)
print(json.dumps(sorted(name for name, xpm_name in pairs.items() if get(name) is not get(xpm_name))))
"""


def test_off_by_default_and_import_xpm_installs_nothing(tmp_path: Path) -> None:
    out = check(python("""
        import os, sys
        import xpm, xpm.config
        from xpm import Config, Param
        print(os.environ.get("XPM_EXPERIMAESTRO"), "xpm.compat" in sys.modules,
              [type(f).__name__ for f in sys.meta_path if "DropIn" in type(f).__name__])
        try:
            import experimaestro
        except ModuleNotFoundError as exc:
            print("ModuleNotFoundError", exc.name)
    """, cwd=tmp_path))
    assert out.splitlines() == ["None False []", "ModuleNotFoundError experimaestro"]


def test_install_gives_xpm_objects(tmp_path: Path) -> None:
    out = check(python(textwrap.dedent("""
        import os
        import xpm.compat
        xpm.compat.install()
        import experimaestro
        from experimaestro import Config, Task, Param, field, tag
        import xpm
        assert (Config, Task, Param, field, tag) == (xpm.Config, xpm.Task, xpm.Param, xpm.field, xpm.tag)
        print(repr(experimaestro))
        print(experimaestro.__version__, experimaestro.__xpm__, os.environ["XPM_EXPERIMAESTRO"])
        print(xpm.compat.is_installed(), xpm.compat.status())
        exported = experimaestro.__all__
        print("Config" in dir(experimaestro), "Config" in exported, "Scheduler" in exported)
        # As in experimaestro, whose package imports its submodules:
        print(experimaestro.core.objects.Config is Config)
    """) + COMPARE % json.dumps(SAME_OBJECTS), cwd=tmp_path))
    lines = out.splitlines()
    assert lines[0] == f"<module 'experimaestro' (xpm {xpm_version()} drop-in for experimaestro 2.7.0)>"
    assert lines[1] == "2.7.0 True 1"
    assert lines[2] == f"True xpm {xpm_version()} (drop-in, experimaestro 2.7.0 API)"
    assert lines[3:] == ["True True False", "True", "[]"]


def test_a_library_class_is_an_xpm_configuration(tmp_path: Path) -> None:
    """A class written for experimaestro is an xpm class: its identifier is xpm's, ``.C`` and tags work."""
    (tmp_path / "mylib.py").write_text(
        "from experimaestro import Config, Param, Meta, field\n\n"
        "class Model(Config):\n"
        "    hidden: Param[int]\n"
        "    layers: Param[int] = field(default=2, ignore_default=True)\n"
        "    device: Meta[str] = field(default='cpu')\n"
    )
    out = check(python("""
        import xpm.compat
        xpm.compat.install()
        import xpm
        from experimaestro import tag
        from mylib import Model
        model = Model.C(hidden=tag(64))
        same = xpm.identifier(model) == xpm.identifier(Model.C(hidden=64, layers=2))
        print(isinstance(model, xpm.Config), model.tags(), same)
    """, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}))
    assert out.split() == ["True", "{'hidden':", "64}", "True"]


def test_the_environment_variable_turns_it_on_at_interpreter_start(tmp_path: Path) -> None:
    """Through the installed xpm_experimaestro.pth: the code itself never mentions xpm."""
    assert pth_file().is_file(), f"{pth_file()} is missing: reinstall xpm (pip install -e .)"
    out = check(python("""
        import os, sys
        print("xpm" in sys.modules)
        from experimaestro import Config
        from experimaestro.core.arguments import Param
        import xpm
        print(Config is xpm.Config, Param is xpm.Param, os.environ["XPM_EXPERIMAESTRO"])
    """, cwd=tmp_path, env={"XPM_EXPERIMAESTRO": "1"}))
    assert out.splitlines() == ["True", "True True 1"]
    # Unset, the .pth line loads nothing.
    out = check(python("import sys; print('xpm' in sys.modules)", cwd=tmp_path))
    assert out.strip() == "False"


def test_status_command(tmp_path: Path) -> None:
    out = check(python("", args=["-m", "xpm.compat"], cwd=tmp_path))
    assert out.strip() == "none: no experimaestro is installed, and xpm's drop-in is off (XPM_EXPERIMAESTRO is not 1)"
    out = check(python("", args=["-m", "xpm.compat"], cwd=tmp_path, env={"XPM_EXPERIMAESTRO": "1"}))
    assert out.strip() == f"xpm {xpm_version()} (drop-in, experimaestro 2.7.0 API)"


def test_a_name_xpm_does_not_provide_is_an_import_error_that_says_why(tmp_path: Path) -> None:
    out = check(python("""
        import xpm.compat
        xpm.compat.install()
        import experimaestro
        from xpm.errors import XpmError
        for statement in ("from experimaestro import Scheduler",
                          "from experimaestro.experiments.cli import experiments_cli",
                          "from experimaestro.connectors import ssh"):
            try:
                exec(statement)
            except ImportError as exc:
                print(type(exc).__name__, isinstance(exc, XpmError), exc)
        # Unknown names: the usual AttributeError, so hasattr and getattr with a default work.
        print(hasattr(experimaestro, "nosuch"), getattr(experimaestro, "nosuch", None))
        try:
            experimaestro.nosuch
        except AttributeError as exc:
            print(exc)
    """, cwd=tmp_path))
    assert out.splitlines() == [
        "NotProvidedError True experimaestro.Scheduler is not provided by xpm: the scheduler is internal to an "
        "experiment: use experiment(...) and task.submit(); see docs/compatibility.md",
        "NotProvidedError True experimaestro.experiments.cli.experiments_cli is not provided by xpm: the command "
        "line runs experiments: experimaestro run-experiment; see docs/compatibility.md",
        "NotProvidedError True experimaestro.connectors.ssh is not provided by xpm: jobs run on this host or through "
        "Slurm's commands, without connectors; see docs/compatibility.md",
        "False None",
        "module 'experimaestro' has no attribute 'nosuch'",
    ]


def test_an_unknown_submodule_is_module_not_found_with_the_pointer(tmp_path: Path) -> None:
    out = check(python("""
        import xpm.compat
        xpm.compat.install()
        for name in ("experimaestro.nosuch", "experimaestro.core.nosuch.deeper", "experimaestro.connectors.ssh"):
            try:
                __import__(name)
            except ModuleNotFoundError as exc:
                print(exc.name, "|", exc)
    """, cwd=tmp_path))
    assert out.splitlines() == [
        "experimaestro.nosuch | No module named 'experimaestro.nosuch' (xpm's drop-in for experimaestro has no such "
        "module); see docs/compatibility.md",
        "experimaestro.core.nosuch | No module named 'experimaestro.core.nosuch' (xpm's drop-in for experimaestro "
        "has no such module); see docs/compatibility.md",
        "experimaestro.connectors.ssh | No module named 'experimaestro.connectors.ssh' (xpm does not provide it: "
        "jobs run on this host or through Slurm's commands, without connectors); see docs/compatibility.md",
    ]


def test_uninstall(tmp_path: Path) -> None:
    out = check(python("""
        import os, sys
        import xpm.compat
        xpm.compat.install()
        import experimaestro.core.objects
        xpm.compat.uninstall()
        print(xpm.compat.is_installed(), os.environ.get("XPM_EXPERIMAESTRO"),
              sorted(name for name in sys.modules if name.startswith("experimaestro")))
        try:
            import experimaestro
        except ModuleNotFoundError as exc:
            print("ModuleNotFoundError", exc.name)
    """, cwd=tmp_path))
    assert out.splitlines() == ["False None []", "ModuleNotFoundError experimaestro"]


# --- a real experimaestro in the same environment -----------------------------------------------------


def test_install_warns_naming_the_real_one_then_shadows_it(tmp_path: Path, fake_real: Path) -> None:
    real_folder = fake_real / "experimaestro"
    out = check(python("""
        import warnings
        import xpm.compat
        print(xpm.compat.status())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            xpm.compat.install()
            xpm.compat.install()  # once only
        print(len(caught), caught[0].category.__name__, caught[0].message)
        import experimaestro
        print(experimaestro.__xpm__, hasattr(experimaestro, "REAL"))
        print(xpm.compat.status())
    """, cwd=tmp_path, env={"PYTHONPATH": str(fake_real)}))
    assert out.splitlines() == [
        f"experimaestro {FAKE_VERSION} ({real_folder})",
        f"1 UserWarning experimaestro {FAKE_VERSION} is installed ({real_folder}), but `import experimaestro` now "
        "gives xpm's drop-in (xpm.compat.install() or XPM_EXPERIMAESTRO=1); unset XPM_EXPERIMAESTRO to use the "
        "real one",
        "True False",
        f"xpm {xpm_version()} (drop-in, experimaestro 2.7.0 API); experimaestro {FAKE_VERSION} at {real_folder} is "
        "installed but not used",
    ]


def test_the_variable_with_a_real_one_installed_warns_at_start(tmp_path: Path, fake_real: Path) -> None:
    done = python("import experimaestro; print(experimaestro.__xpm__)", cwd=tmp_path,
                  env={"PYTHONPATH": str(fake_real), "XPM_EXPERIMAESTRO": "1"})
    assert check(done).strip() == "True"
    assert f"UserWarning: experimaestro {FAKE_VERSION} is installed ({fake_real / 'experimaestro'})" in done.stderr


def test_install_refuses_when_the_real_one_is_already_imported(tmp_path: Path, fake_real: Path) -> None:
    out = check(python("""
        import experimaestro
        import xpm.compat
        from xpm.errors import XpmError
        try:
            xpm.compat.install()
        except XpmError as exc:
            print(type(exc).__name__, "|", exc)
        print(xpm.compat.is_installed(), experimaestro.REAL)
    """, cwd=tmp_path, env={"PYTHONPATH": str(fake_real)}))
    init = fake_real / "experimaestro" / "__init__.py"
    assert out.splitlines() == [
        f"ShadowingError | experimaestro is already imported from {init}: xpm's drop-in cannot replace it in this "
        "process (install it before anything imports experimaestro, or use the real one alone)",
        "False True",
    ]


def xpm_version() -> str:
    from xpm import __version__

    return __version__


def pth_file() -> Path:
    """Where the installed xpm_experimaestro.pth is: the site-packages of this environment."""
    folders = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    found = [Path(folder) / "xpm_experimaestro.pth" for folder in folders]
    return next((path for path in found if path.is_file()), found[0])

