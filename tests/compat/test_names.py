"""The table of the drop-in (xpm/compat/names.py) is right: every provided name resolves to an object,
through the drop-in too, and every name or module xpm does not provide fails with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compat.conftest import check, python
from xpm.compat.finder import resolve
from xpm.compat.names import MISSING_MODULES, MODULES, ROOT, NotProvided

PROVIDED = sorted(
    (module, name, target) for module, names in MODULES.items() for name, target in names.items()
    if isinstance(target, str)
)
NOT_PROVIDED = sorted(
    (module, name, target.reason) for module, names in MODULES.items() for name, target in names.items()
    if isinstance(target, NotProvided)
)


#: Targets that need a package xpm does not install: without it, importing them says which.
NEEDS = {"xpm.compat.huggingface": "huggingface_hub"}


def _available(target: str) -> bool:
    import importlib.util

    package = NEEDS.get(target.partition(":")[0])
    return package is None or importlib.util.find_spec(package) is not None


@pytest.mark.parametrize(("module", "name", "target"), PROVIDED, ids=[f"{m}.{n}" for m, n, _ in PROVIDED])
def test_every_provided_target_resolves(module: str, name: str, target: str) -> None:
    if _available(target):
        assert resolve(target) is not None
    else:
        with pytest.raises(ImportError, match=f"needs the {NEEDS[target.partition(':')[0]]} package"):
            resolve(target)


def test_the_drop_in_gives_every_provided_object(tmp_path: Path) -> None:
    """Through the import system, each module of the table gives, for each provided name, its target's object."""
    out = check(python(f"""
        import importlib, json
        import xpm.compat
        from xpm.compat.finder import resolve
        xpm.compat.install()
        wrong = []
        for module, name, target in json.loads({json.dumps(json.dumps([p for p in PROVIDED if _available(p[2])]))}):
            try:
                if getattr(importlib.import_module(module), name) is not resolve(target):
                    wrong.append(f"{{module}}.{{name}}: not {{target}}")
            except ImportError as exc:
                wrong.append(f"{{module}}.{{name}}: {{exc}}")
        print(json.dumps(wrong))
    """, cwd=tmp_path))
    assert json.loads(out) == []


def test_every_name_xpm_does_not_provide_raises_its_reason(tmp_path: Path) -> None:
    out = check(python(f"""
        import json
        import xpm.compat
        from xpm.compat.finder import NotProvidedError
        xpm.compat.install()
        messages = {{}}
        for module, name, reason in json.loads({json.dumps(json.dumps(NOT_PROVIDED))}):
            try:
                exec(f"from {{module}} import {{name}}")
                messages[f"{{module}}.{{name}}"] = "imported"
            except NotProvidedError as exc:
                messages[f"{{module}}.{{name}}"] = str(exc)
        print(json.dumps(messages))
    """, cwd=tmp_path))
    messages = json.loads(out)
    assert messages == {
        f"{module}.{name}": f"{module}.{name} is not provided by xpm: {reason}; see docs/compatibility.md"
        for module, name, reason in NOT_PROVIDED
    }


def test_every_module_xpm_does_not_provide_says_why(tmp_path: Path) -> None:
    out = check(python(f"""
        import json
        import xpm.compat
        xpm.compat.install()
        messages = {{}}
        for module in json.loads({json.dumps(json.dumps(sorted(MISSING_MODULES)))}):
            try:
                __import__(module)
                messages[module] = "imported"
            except ModuleNotFoundError as exc:
                messages[module] = str(exc)
        print(json.dumps(messages))
    """, cwd=tmp_path))
    assert json.loads(out) == {
        module: f"No module named {module!r} (xpm does not provide it: {reason}); see docs/compatibility.md"
        for module, reason in MISSING_MODULES.items()
    }


def test_the_table_is_well_formed() -> None:
    # Every module's parent is served too, so that its import finds a package.
    for module in [*MODULES, *MISSING_MODULES]:
        parent = module.rpartition(".")[0]
        assert module == ROOT or parent in MODULES, module
    assert not set(MODULES) & set(MISSING_MODULES)
    for names in MODULES.values():
        for name, target in names.items():
            assert name.isidentifier() and not name.startswith("_"), name
            if isinstance(target, str):
                module, _, attribute = target.partition(":")
                assert module and attribute.isidentifier(), target
            else:
                assert target.reason and "\n" not in target.reason, name
    # The package itself has a target or a reason for each of the 78 names of experimaestro 2.7.0's __all__
    # (besides __version__): checked against experimaestro itself when the table was written.
    assert len(MODULES[ROOT]) == 78
