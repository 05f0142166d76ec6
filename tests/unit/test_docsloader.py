"""Fake modules for documentation builds: missing dependencies that match a pattern import as fakes."""

from __future__ import annotations

import importlib
import re
import sys
from typing import Iterator

import pytest

from xpm.docsloader import DependencyInjectorFinder, Module


@pytest.fixture
def finder() -> Iterator[DependencyInjectorFinder]:
    installed = DependencyInjectorFinder.install(re.compile(r"fakeheavy(\..*)?"))
    try:
        yield installed
    finally:
        installed.uninstall()


def test_matching_modules_import_as_fakes(finder: DependencyInjectorFinder):
    import fakeheavy.sub
    from fakeheavy import x
    from fakeheavy.sub.deeper import Thing

    assert isinstance(fakeheavy, Module) and isinstance(fakeheavy.sub, Module)
    assert sys.modules["fakeheavy.sub"] is fakeheavy.sub
    assert x.__name__ == "fakeheavy.x"
    assert Thing.__name__ == "fakeheavy.sub.deeper.Thing"
    assert fakeheavy.x is x, "an attribute is made once"
    assert repr(fakeheavy.nn.Module) == "<fake module 'fakeheavy.nn.Module'>"


def test_other_modules_are_left_alone(finder: DependencyInjectorFinder):
    with pytest.raises(ModuleNotFoundError):
        import notfakeheavy  # noqa: F401 - the pattern is matched from the start of the name
    import json

    assert not isinstance(json, Module), "installed modules are imported for real"


def test_code_written_against_fakes_loads(finder: DependencyInjectorFinder):
    namespace: dict[str, object] = {}
    exec(
        "import fakeheavy.nn as nn\n"
        "import fakeheavy\n"
        "class Net(nn.Module):\n"
        "    '''A network.'''\n"
        "    def forward(self, x: fakeheavy.Tensor) -> fakeheavy.Tensor:\n"
        "        return x\n"
        "class Other(nn.Module):\n"
        "    pass\n"
        "@fakeheavy.no_grad()\n"
        "def infer(x):\n"
        "    return x\n"
        "@fakeheavy.jit.script\n"
        "def scripted(x):\n"
        "    '''Scripted.'''\n"
        "    return x\n"
        "device = fakeheavy.device('cpu')\n",
        namespace,
    )
    net, other = namespace["Net"], namespace["Other"]
    assert isinstance(net, type) and net.__doc__ == "A network."
    assert net.__mro__[1] is other.__mro__[1], "the placeholder base is shared"
    assert net.__mro__[1].__name__ == "Module"
    assert net().forward(3) == 3
    assert namespace["scripted"].__doc__ == "Scripted.", "a fake used as a decorator keeps the function"
    assert isinstance(namespace["device"], Module)


def test_uninstall_forgets_the_fakes(finder: DependencyInjectorFinder):
    import fakeheavy.sub  # noqa: F401

    finder.uninstall()
    assert finder not in sys.meta_path
    assert "fakeheavy" not in sys.modules and "fakeheavy.sub" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("fakeheavy")
    finder.uninstall()  # a second time does nothing


def test_a_pattern_matches_from_the_start_and_dollar_ends_it():
    finder = DependencyInjectorFinder.install(re.compile(r"anchored(\..*)?$"))
    try:
        assert isinstance(importlib.import_module("anchored.sub"), Module)
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("anchoredmore")
    finally:
        finder.uninstall()


def test_the_pattern_may_be_given_as_text():
    finder = DependencyInjectorFinder.install(r"otherfake(\..*)?")
    try:
        assert importlib.import_module("otherfake.a").__name__ == "otherfake.a"
        assert repr(finder) == "DependencyInjectorFinder('otherfake(\\\\..*)?')"
    finally:
        finder.uninstall()
    assert "otherfake" not in sys.modules


def test_the_finder_comes_after_the_real_ones(finder: DependencyInjectorFinder):
    assert sys.meta_path[-1] is finder
