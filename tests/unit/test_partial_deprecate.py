"""Partial identifiers (shared folders) and deprecated classes (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

import xpm
from xpm import Config, Meta, Param, PathGenerator, Task, field
from xpm.config.deprecate import deprecate
from xpm.config.partial import param_group, partial
from xpm.errors import ConfigError
from xpm.ids import partial_identifier, raw_identifier

iterations = param_group("iterations")
optim = param_group("optim")


class Learn(Task):
    __xpmid__ = "partial.learn"
    checkpoints = partial(exclude_groups=[iterations])

    max_iter: Param[int] = field(groups=[iterations])
    lr: Param[float] = field(groups=[optim])
    seed: Param[int] = field(default=0)
    path: Meta[Path] = field(default_factory=PathGenerator("ckpt", partial=checkpoints))
    log: Meta[Path] = field(default_factory=PathGenerator("log.txt"))


def _job(tmp_path: Path, task: Config) -> Path:
    jobpath = tmp_path / "ws" / "jobs" / task.__xpmtype__.identifier / xpm.identifier(task)
    task.__xpm__.generate_paths(jobpath)
    return jobpath


def test_tasks_that_differ_in_excluded_groups_share_the_partial_folder(tmp_path):
    a, b, c = Learn.C(max_iter=10, lr=0.1), Learn.C(max_iter=20, lr=0.1), Learn.C(max_iter=10, lr=0.2)
    ja, jb, jc = (_job(tmp_path, t) for t in (a, b, c))
    assert ja != jb  # different jobs...
    assert a.path == b.path  # ...one checkpoint folder
    assert a.path != c.path
    root = tmp_path / "ws" / "partials" / "partial.learn" / "checkpoints"
    assert a.path.parent.parent == root and a.path.name == "ckpt"
    assert a.log == ja / "log.txt"


def test_partial_rules():
    p = partial(exclude_groups=[iterations], include_groups=[optim], exclude_no_group=True)
    assert p.is_excluded({iterations}) and not p.is_excluded({optim}) and not p.is_excluded({iterations, optim})
    assert p.is_excluded(set())
    everything = partial(exclude_all=True, include_groups=[optim])
    assert everything.is_excluded({iterations}) and not everything.is_excluded({optim})


def test_partial_identifiers_differ_from_identifiers_and_between_names():
    task = Learn.C(max_iter=10, lr=0.1)
    full = partial_identifier(task, "checkpoints", frozenset())
    assert full != xpm.identifier(task)
    assert full != partial_identifier(task, "other", frozenset())
    assert partial_identifier(task, "x", frozenset({"max_iter"})) == partial_identifier(
        Learn.C(max_iter=99, lr=0.1), "x", frozenset({"max_iter"})
    )


def test_bad_groups_are_refused():
    with pytest.raises(ValueError, match="not a parameter group"):
        partial(exclude_groups=["iterations"])
    with pytest.raises(ValueError, match="non-empty name"):
        param_group("")


# --- @deprecate -------------------------------------------------------------------


class NewModel(Config):
    __xpmid__ = "dep.newmodel"
    values: Param[list[int]]


@deprecate(NewModel)
class OldModel(Config):
    __xpmid__ = "dep.oldmodel"
    value: Param[int]

    def __convert__(self):
        return NewModel.C(values=[self.value])


class Base(Config):
    __xpmid__ = "dep.base"
    x: Param[int]


@deprecate
class Renamed(Base):
    __xpmid__ = "dep.renamed"


@deprecate(NewModel, replace=True)
class Replaced(Config):
    __xpmid__ = "dep.replaced"
    value: Param[int]

    def __convert__(self):
        return NewModel.C(values=[self.value, self.value])


class Uses(Config):
    __xpmid__ = "dep.uses"
    model: Param[Config]


class WithOldParameter(Config):
    __xpmid__ = "dep.withold"
    values: Param[list[int]]

    @deprecate
    def value(self, value: int) -> None:
        self.values = [value]


def test_a_deprecated_class_has_the_identifier_of_its_conversion():
    assert xpm.identifier(OldModel.C(value=3)) == xpm.identifier(NewModel.C(values=[3]))
    assert xpm.identifier(Uses.C(model=OldModel.C(value=3))) == xpm.identifier(Uses.C(model=NewModel.C(values=[3])))
    assert xpm.identifier(Renamed.C(x=1)) == xpm.identifier(Base.C(x=1))
    sealed = Uses.C(model=OldModel.C(value=4)).seal()
    assert xpm.identifier(sealed) == xpm.identifier(Uses.C(model=NewModel.C(values=[4])))


def test_the_old_identifier_stays_available_for_existing_job_folders():
    old = Uses.C(model=OldModel.C(value=3))
    assert raw_identifier(old) != xpm.identifier(old)
    # the raw identifier is what the class gave before it was deprecated
    class Before(Config):
        __xpmid__ = "dep.oldmodel"
        value: Param[int]

    class UsesBefore(Config):
        __xpmid__ = "dep.uses"
        model: Param[Config]

    assert raw_identifier(old) == xpm.identifier(UsesBefore.C(model=Before.C(value=3)))
    # and computing it leaves cached identifiers as they were
    old.seal()
    ident = xpm.identifier(old)
    raw_identifier(old)
    assert xpm.identifier(old) == ident


def test_replace_gives_the_new_configuration():
    cfg = Replaced.C(value=2)
    assert type(cfg).__xpmtype__ is NewModel.__xpmtype__ and cfg.values == [2, 2]


def test_a_deprecated_parameter_sets_the_new_ones():
    with pytest.warns(DeprecationWarning, match="WithOldParameter.value is deprecated"):
        cfg = WithOldParameter.C(value=3)
    assert cfg.values == [3]
    assert xpm.identifier(cfg) == xpm.identifier(WithOldParameter.C(values=[3]))


def test_a_deprecated_class_without_conversion_is_refused():
    with pytest.raises(ConfigError, match=r"Lonely is deprecated in favour of NewModel but defines no __convert__"):

        @deprecate(NewModel)
        class Lonely(Config):
            __xpmid__ = "dep.lonely"
            y: Param[int]


def test_a_partial_naming_a_group_no_parameter_has_is_refused():
    with pytest.raises(ConfigError, match=r"Bad.shared: the partial names the group 'optim', which no parameter"):

        class Bad(Task):
            __xpmid__ = "partial.bad"
            shared = partial(exclude_groups=[optim])
            max_iter: Param[int] = field(groups=[iterations])

        Bad.C(max_iter=1)


def test_groups_must_be_parameter_groups():
    with pytest.raises(ConfigError, match=r"Wrong.max_iter: field\(groups=...\) takes parameter groups"):

        class Wrong(Task):
            __xpmid__ = "partial.wrong"
            max_iter: Param[int] = field(groups=["iterations"])

        Wrong.C(max_iter=1)
