"""The small helpers of configuration classes: initializer, markers, Identifier, help, tags, Array,
and the contexts in which generated paths are made outside a job. (``cache`` needs a workspace:
its tests run experiments and jobs, in tests/run/test_task_globals.py.)"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Annotated, Optional

import pytest

from xpm import Config, Param, Task, field, tag
from xpm.config.annotations import (
    STDERR,
    STDOUT,
    Array,
    CacheError,
    Identifier,
    TagDict,
    cache,
    config_only,
    configmethod,
    documentation,
    help,
    initializer,
    shoulddocument,
    tags,
)
from xpm.config.contexts import ConfigWalkContext, DirectoryContext, EmptyContext, NoFolderError
from xpm.errors import ConfigError, ValidationError, XpmError

# --- initializer ----------------------------------------------------------------------------------


class Lazy(Config):
    __xpmid__ = "test.annotations.lazy"
    size: Param[int]

    @initializer
    def network(self, scale: int = 1) -> list[int]:
        self.__dict__.setdefault("_calls", []).append(scale)
        return [self.size * scale]

    @initializer
    def failing(self) -> None:
        self.__dict__["_failures"] = self.__dict__.get("_failures", 0) + 1
        raise RuntimeError("not ready")


class LazierChild(Lazy):
    __xpmid__ = "test.annotations.lazier"

    @initializer
    def network(self, scale: int = 1) -> list[int]:
        return super().network(scale) + [0]


def test_an_initializer_runs_once_per_object_and_always_returns_its_result():
    cfg = Lazy.C(size=3)
    first = cfg.network(2)
    assert first == [6]
    assert cfg.network() is first and cfg.network(5) is first, "later calls return the first result"
    assert cfg._calls == [2]
    other = Lazy.C(size=4)
    assert other.network() == [4], "each object runs it once"


def test_an_initializer_works_on_built_objects_and_leaves_identifiers_alone():
    cfg = Lazy.C(size=2)
    before = cfg.__identifier__()
    cfg.network()
    assert cfg.__identifier__() == before
    obj = Lazy.C(size=5).instance()
    assert obj.network() == [5] and obj.network() is obj.network()


def test_an_initializer_that_raises_runs_again():
    cfg = Lazy.C(size=1)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="not ready"):
            cfg.failing()
    assert cfg._failures == 2


def test_an_overriding_initializer_and_its_parent_are_two_initializers():
    cfg = LazierChild.C(size=2)
    assert cfg.network() == [2, 0]
    assert cfg.network() == [2, 0]


def test_an_initializer_keeps_the_function_name_and_docstring():
    def build(self: object) -> int:
        """Builds."""
        return 1

    wrapped = initializer(build)
    assert (wrapped.__name__, wrapped.__doc__) == ("build", "Builds.")


def test_an_initializer_needs_somewhere_to_keep_its_result():
    class Slotted:
        __slots__ = ()

        @initializer
        def value(self) -> int:
            return 1

    with pytest.raises(XpmError, match="Slotted objects have no __dict__"):
        Slotted().value()


# --- cache (the part that needs no workspace) -------------------------------------------------------


class Cached(Config):
    __xpmid__ = "test.annotations.cached"
    x: Param[int]

    @cache("value.txt")
    def value(self, path: Path) -> str:
        return str(path)


def test_a_cache_method_outside_a_job_and_an_experiment_says_it_has_no_workspace():
    with pytest.raises(CacheError) as info:
        Cached.C(x=1).value()
    assert str(info.value) == ("@cache Cached.value: no workspace: call it in a job, or inside `with experiment(...)`")


def test_a_cache_method_needs_a_configuration():
    with pytest.raises(CacheError, match="Cached object has no configuration identifier"):
        Cached.C(x=1).instance(keep=False).value()
    with pytest.raises(CacheError, match="no workspace"):
        Cached.C(x=1).instance().value()  # an object built by instance() knows its configuration


def test_a_cache_method_keeps_its_name():
    assert Cached.value.__name__ == "value"


# --- markers --------------------------------------------------------------------------------------


def test_markers_return_the_method():
    def method(self: object) -> int:
        return 1

    assert config_only(method) is method
    assert configmethod(method) is method
    assert not shoulddocument(method)
    assert documentation(method) is method
    assert shoulddocument(method)
    assert method.__xpm_documentation__ is True
    assert method.__experimaestro_documentation__ is True


def test_documentation_marks_a_property_through_its_getter():
    class Documented:
        @documentation
        @property
        def size(self) -> int:
            return 1

    assert shoulddocument(Documented.__dict__["size"])
    assert Documented().size == 1


def test_log_file_names():
    class Job:
        name = "train"

    assert (STDOUT(Job(), None), STDERR(Job(), None)) == ("train.out", "train.err")


# --- Identifier -----------------------------------------------------------------------------------


def test_identifier_builds_lower_case_dotted_names():
    base = Identifier("My.Module")
    assert str(base) == "my.module"
    assert base.sub == Identifier("my.module.sub")
    assert base["Sub"] == base("sub") == base.sub
    assert str(base.a.b["c"]) == "my.module.a.b.c"
    assert repr(base.a) == "Identifier('my.module.a')"


def test_identifiers_are_equal_and_hashable_by_name():
    assert Identifier("a.b") == Identifier("A.B")
    assert Identifier("a") != Identifier("b")
    assert Identifier("a") != "a", "an identifier is not a string"
    assert {Identifier("a.b"): 1}[Identifier("a")("b")] == 1
    assert len({Identifier("x"), Identifier("X"), Identifier("x").y}) == 2


def test_identifiers_copy_and_pickle():
    ident = Identifier("a").b
    assert copy.copy(ident) == ident and copy.deepcopy(ident) == ident
    assert pickle.loads(pickle.dumps(ident)) == ident


def test_private_names_are_not_pieces_of_an_identifier():
    ident = Identifier("a")
    with pytest.raises(AttributeError):
        ident._hidden
    assert ident["_hidden"] == Identifier("a._hidden")


def test_identifier_takes_a_string():
    with pytest.raises(ConfigError, match=r"Identifier\(\) takes a string, got int"):
        Identifier(3)  # type: ignore[arg-type]


# --- help, Array --------------------------------------------------------------------------------


class Helped(Config):
    """A configuration.

    Attributes:
        lr: the docstring's text
    """

    __xpmid__ = "test.annotations.helped"
    lr: Param[Annotated[float, help("the learning rate")]] = field(default=0.1)
    epochs: Annotated[int, help("how many passes")]
    documented: Param[int] = field(default=0)


def test_help_sets_the_help_text_and_makes_an_argument():
    arguments = Helped.__xpmtype__.arguments
    assert arguments["lr"].help == "the learning rate"
    assert arguments["epochs"].help == "how many passes", "help() alone in Annotated makes a parameter"
    assert Helped.C(epochs=2).lr == 0.1


def test_array_is_the_old_spelling_of_list():
    assert Array(int) == list[int]

    class Listed(Config):
        __xpmid__ = "test.annotations.listed"
        values: Param[Array(int)]  # type: ignore[valid-type]

    assert Listed.C(values=(1, 2)).values == [1, 2]
    with pytest.raises(ValidationError, match=r"Listed\.values\[1\]: expected int"):
        Listed.C(values=[1, "x"])
    assert Listed.C(values=[1]).__identifier__() != Listed.C(values=[2]).__identifier__()


# --- tags -----------------------------------------------------------------------------------------


class Inner(Config):
    __xpmid__ = "test.annotations.inner"
    depth: Param[int]


class Tagged(Task):
    __xpmid__ = "test.annotations.tagged"
    lr: Param[float]
    name: Param[str] = field(default="x")
    inner: Param[Optional[Inner]] = field(default=None)

    def execute(self) -> None:
        pass


def test_tags_are_sorted_and_gathered_from_sub_configurations():
    cfg = Tagged.C(lr=tag(0.1), name=tag("run"), inner=Inner.C(depth=tag(3)))
    found = tags(cfg)
    assert isinstance(found, TagDict)
    assert list(found.items()) == [("depth", 3), ("lr", 0.1), ("name", "run")]
    assert found == {"lr": 0.1, "name": "run", "depth": 3}
    assert repr(found) == "TagDict({'depth': 3, 'lr': 0.1, 'name': 'run'})"


def test_tags_of_the_object_built_for_a_task():
    obj = Tagged.C(lr=tag(0.5)).instance()
    assert tags(obj) == {"lr": 0.5}


def test_tags_take_a_configuration():
    with pytest.raises(ConfigError, match="tags\\(\\) takes a configuration, got int"):
        tags(3)


def test_a_tag_dict_is_hashable_and_read_only():
    one = TagDict({"b": 2, "a": 1})
    two = TagDict(a=1, b=2)
    assert hash(one) == hash(two) and {one: "x"}[two] == "x"
    assert hash(TagDict(a=1)) != hash(TagDict(a=2))
    for change in (
        lambda d: d.__setitem__("a", 3),
        lambda d: d.__delitem__("a"),
        lambda d: d.update(c=3),
        lambda d: d.pop("a"),
        lambda d: d.popitem(),
        lambda d: d.setdefault("c", 3),
        lambda d: d.clear(),
    ):
        with pytest.raises(TypeError, match="a TagDict is read-only"):
            change(one)
    with pytest.raises(XpmError, match="setting 'a' is refused"):
        one["a"] = 3
    with pytest.raises(TypeError):
        one |= {"c": 3}
    assert one == {"a": 1, "b": 2}


def test_a_tag_dict_copies_and_pickles_as_a_tag_dict():
    tags_ = TagDict(b=2, a=1)
    for other in (tags_.copy(), copy.deepcopy(tags_), pickle.loads(pickle.dumps(tags_))):
        assert type(other) is TagDict and list(other) == ["a", "b"] and other == tags_
    changed = dict(tags_)
    changed["c"] = 3
    assert changed == {"a": 1, "b": 2, "c": 3}


# --- contexts -------------------------------------------------------------------------------------


def test_a_directory_context_generates_in_its_folder(tmp_path: Path):
    context = DirectoryContext(tmp_path)
    assert context.path == tmp_path
    assert context.currentpath() == tmp_path
    assert context.task is None
    assert isinstance(context, ConfigWalkContext)
    assert repr(context) == f"DirectoryContext({str(tmp_path)!r})"
    assert DirectoryContext(str(tmp_path)).path == tmp_path


def test_the_current_path_follows_the_walk(tmp_path: Path):
    context = DirectoryContext(tmp_path)
    with context.push("encoder") as key:
        assert key == "encoder"
        assert context.currentpath() == tmp_path / "out" / "encoder"
        with context.push("0"):
            assert context.currentpath() == tmp_path / "out" / "encoder" / "0"
        assert context.currentpath() == tmp_path / "out" / "encoder"
    assert context.currentpath() == tmp_path


def test_the_walk_is_restored_after_an_error(tmp_path: Path):
    context = DirectoryContext(tmp_path)
    with pytest.raises(RuntimeError):
        with context.push("model"):
            raise RuntimeError("boom")
    assert context.currentpath() == tmp_path


def test_an_empty_context_has_no_folder():
    context = EmptyContext()
    for ask in (lambda: context.path, context.currentpath):
        with pytest.raises(NoFolderError) as info:
            ask()
        assert str(info.value).startswith("EmptyContext has no folder: a configuration that generates paths")
        assert isinstance(info.value, ConfigError)


def test_the_base_context_has_no_path_of_its_own():
    with pytest.raises(NotImplementedError, match="ConfigWalkContext.path"):
        ConfigWalkContext().path
