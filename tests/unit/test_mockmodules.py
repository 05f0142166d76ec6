"""mock_modules (xpm.experiments.mockmodules): heavy imports faked in the experiment process.
(Through run-experiment and its job processes: tests/test_experiment_files.py.)"""

from __future__ import annotations

import sys
import typing
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import restoring_imports
from xpm import Config, Param
from xpm.docsloader import Module
from xpm.experiments import FakeModuleFinder, mock_modules, noop_decorator

MOCKED = ["xpm_test_torch", "xpm_test_lightning", "xpm_test_real"]


@pytest.fixture
def mocked(tmp_path: Path) -> Iterator[FakeModuleFinder]:
    """Fakes MOCKED; afterwards removes the finder and forgets the modules."""
    with restoring_imports(tmp_path):
        finder = mock_modules(MOCKED)
        try:
            yield finder
        finally:
            finder.uninstall()
            for name in [name for name in sys.modules if name.split(".")[0] in MOCKED]:
                del sys.modules[name]


def test_the_finder_comes_first_and_fakes_modules_and_submodules(mocked):
    assert sys.meta_path[0] is mocked and mocked.modules == set(MOCKED)
    import xpm_test_torch  # type: ignore[import-not-found]
    import xpm_test_torch.nn.functional as F  # type: ignore[import-not-found]
    from xpm_test_torch.nn import Module as TorchModule  # type: ignore[import-not-found]

    assert isinstance(xpm_test_torch, Module) and isinstance(F, Module)
    assert TorchModule is xpm_test_torch.nn.Module
    with pytest.raises(ModuleNotFoundError):
        import xpm_test_torchvision  # type: ignore[import-not-found]  # noqa: F401  (a prefix is not a module)
    assert repr(mocked) == f"FakeModuleFinder({sorted(MOCKED)})"


def test_an_installed_module_is_faked_until_uninstall(tmp_path):
    """The point of mocking: the experiment process skips the real module."""
    (tmp_path / "xpm_test_real.py").write_text("raise RuntimeError('the real module was imported')\n")
    with restoring_imports(tmp_path):
        sys.path.insert(0, str(tmp_path))
        finder = mock_modules(["xpm_test_real"])
        try:
            import xpm_test_real  # type: ignore[import-not-found]

            assert isinstance(xpm_test_real, Module)
        finally:
            finder.uninstall()
        assert "xpm_test_real" not in sys.modules and finder not in sys.meta_path
        with pytest.raises(RuntimeError, match="the real module was imported"):
            import xpm_test_real  # type: ignore[import-not-found]  # noqa: F401,F811


def test_fakes_are_decorators_with_or_without_arguments(mocked):
    import xpm_test_torch as torch  # type: ignore[import-not-found]

    @torch.no_grad
    def a() -> int:
        return 1

    @torch.no_grad()
    def b() -> int:
        return 2

    @torch.compile(mode="reduce-overhead")
    @torch.jit.script
    def c() -> int:
        return 3

    @torch.compile
    class Model:
        def forward(self) -> str:
            return "compiled"

    assert (a(), b(), c(), Model().forward()) == (1, 2, 3, "compiled")


def test_classes_derive_from_fakes(mocked):
    import xpm_test_lightning as pl  # type: ignore[import-not-found]
    import xpm_test_torch as torch  # type: ignore[import-not-found]

    T = typing.TypeVar("T")

    class Net(torch.nn.Module, pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(10, 5)

    class Scale(torch.autograd.Function):
        @staticmethod
        def forward(ctx: object, x: int) -> int:
            return 2 * x

    class Sharded(torch.utils.data.IterableDataset):
        pass

    class Files(Sharded[T]):
        pass

    assert isinstance(Net().linear, Module)
    assert callable(Scale.apply) and Scale.forward(None, 2) == 4
    assert Files() is not None and torch.Tensor[int] is torch.Tensor


def test_the_classes_of_xpm_derive_from_fakes(mocked):
    """A configuration that is also a torch module (class Model(Config, nn.Module))."""
    import xpm_test_torch as torch  # type: ignore[import-not-found]

    class Model(Config, torch.nn.Module):
        __xpmid__ = "test.mocked.model"
        hidden: Param[int]

    assert Model.C(hidden=8).hidden == 8


def test_decorators_argument_is_deprecated(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        finder = mock_modules(["xpm_test_torch"], decorators=["xpm_test_torch.no_grad"])
        finder.uninstall()
        plain = mock_modules(["xpm_test_torch"])
        plain.uninstall()
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "decorators" in str(caught[0].message) and caught[0].filename == __file__
    assert finder.decorators == {"xpm_test_torch.no_grad"}


def test_noop_decorator():
    def f() -> int:
        return 1

    assert noop_decorator(f) is f
    assert noop_decorator()(f) is f
    assert noop_decorator(option=True)(f) is f
