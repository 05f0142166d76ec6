"""The YAML layer of run-experiment: merging, imports, overrides, and validation into
the user's configuration class (xpm.experiments.yamlconfig and .loader)."""

from __future__ import annotations

import dataclasses
import datetime
import re
import sys
import textwrap
import types
from dataclasses import field
from pathlib import Path

import pytest

from tests.helpers import restoring_imports

from xpm.errors import XpmError
from xpm.experiments import ConfigurationBase, ExperimentHelper, configuration
from xpm.experiments.loader import (
    apply_options,
    check_keys,
    experiment_id,
    find_run,
    find_target,
    load_experiment,
    validate,
)
from xpm.experiments.yamlconfig import (
    ExperimentConfigError,
    MergedConfig,
    find_yaml,
    load_configuration,
    parse_override,
    read_yaml,
)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Runs in tmp_path, and forgets the sys.path entries and modules a test adds."""
    monkeypatch.chdir(tmp_path)
    with restoring_imports(tmp_path):
        yield tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@configuration
class Model:
    layers: int = 1
    name: str = "mlp"


@configuration
class Config(ConfigurationBase):
    epochs: int = 10
    lr: float = 0.1
    lrs: list[float] = field(default_factory=lambda: [0.1])
    model: Model = field(default_factory=Model)
    models: list[Model] = field(default_factory=list)
    optional: Model | None = None
    flag: bool = False
    where: Path = Path(".")


# --- configuration / ConfigurationBase / ExperimentHelper


def test_configuration_is_a_keyword_only_dataclass():
    @configuration
    class Sub(ConfigurationBase):
        required: int  # no default after defaults: allowed because keyword-only

    cfg = Sub(id="x", required=3)
    assert dataclasses.is_dataclass(cfg) and cfg.required == 3 and cfg.file == "experiment"
    with pytest.raises(TypeError):
        Sub("x", 3)  # type: ignore[misc]

    @configuration()
    class WithParentheses(ConfigurationBase):
        n: int = 1

    assert WithParentheses(id="y").n == 1


def test_configuration_base_defaults():
    cfg = ConfigurationBase(id="x")
    assert (cfg.file, cfg.module, cfg.imports, cfg.parent, cfg.pythonpath) == ("experiment", None, [], None, [])
    assert (cfg.title, cfg.add_timestamp, cfg.pre_experiment) == ("", False, None)


def test_helper_and_decorator():
    helper = ExperimentHelper(xp="xp", args=["a"], cfg=1)
    assert (helper.xp, helper.args, helper.cfg) == ("xp", ["a"], 1)

    def run(helper, cfg): ...

    assert ExperimentHelper.decorator(run) is run
    assert ExperimentHelper.decorator()(run) is run


# --- reading files


def test_find_yaml_adds_the_suffix(tmp_path):
    write(tmp_path / "xp.yaml", "id: a\n")
    assert find_yaml("xp") == Path("xp.yaml")
    assert find_yaml("xp.yaml") == Path("xp.yaml")
    with pytest.raises(ExperimentConfigError, match=r"^nope: no such file \(tried nope and nope.yaml\)$"):
        find_yaml("nope")


def test_bad_yaml_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "bad.yaml", "id: a\nmodel: [1, 2\n")
    with pytest.raises(ExperimentConfigError) as info:
        read_yaml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 3, column 1: invalid YAML")
    assert "\n" not in message and isinstance(info.value, XpmError)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "3\n"])
def test_top_level_must_be_a_mapping(tmp_path, text):
    path = write(tmp_path / "list.yaml", text)
    with pytest.raises(ExperimentConfigError, match="expected a mapping at the top level"):
        read_yaml(path)


def test_empty_file_is_an_empty_mapping(tmp_path):
    assert read_yaml(write(tmp_path / "empty.yaml", "")) == {}


# --- merging


def test_merge_order_pre_main_post_then_overrides(tmp_path):
    write(tmp_path / "pre.yaml", "a: pre\nb: pre\nc: pre\nd: pre\nnested: {x: 1, y: 1}\n")
    write(tmp_path / "main.yaml", "id: m\nb: main\nc: main\nd: main\nnested: {y: 2, z: 2}\n")
    write(tmp_path / "post.yaml", "c: post\nd: post\n")
    merged = load_configuration("main", pre_yaml=["pre"], post_yaml=["post.yaml"], overrides=["d=cli", "nested.z=3"])
    assert merged.data == {
        "a": "pre",
        "b": "main",
        "c": "post",
        "d": "cli",
        "nested": {"x": 1, "y": 2, "z": "3"},
        "id": "m",
    }


def test_lists_are_replaced_mappings_merged(tmp_path):
    write(tmp_path / "pre.yaml", "lrs: [1, 2, 3]\nmodel: {layers: 2, name: a}\n")
    write(tmp_path / "main.yaml", "id: m\nlrs: [4]\nmodel: {layers: 5}\n")
    merged = load_configuration("main", pre_yaml=["pre"])
    assert merged.data["lrs"] == [4]
    assert merged.data["model"] == {"layers": 5, "name": "a"}


def test_a_later_scalar_replaces_a_mapping_and_back(tmp_path):
    write(tmp_path / "pre.yaml", "a: {x: 1}\nb: 3\n")
    write(tmp_path / "main.yaml", "id: m\na: none\nb: {y: 2}\n")
    assert load_configuration("main", pre_yaml=["pre"]).data == {"a": "none", "b": {"y": 2}, "id": "m"}


def test_imports_recursive_relative_and_importer_wins(tmp_path):
    write(tmp_path / "common" / "root.yaml", "a: root\nb: root\nc: root\n")
    write(tmp_path / "common" / "base.yaml", "imports: [root]\nb: base\nc: base\n")
    write(tmp_path / "configs" / "main.yaml", "id: m\nimports: [../common/base.yaml]\nc: main\n")
    merged = load_configuration(tmp_path / "configs" / "main")
    assert merged.data == {"a": "root", "b": "base", "c": "main", "id": "m", "imports": ["../common/base.yaml"]}


def test_several_imports_in_order(tmp_path):
    write(tmp_path / "one.yaml", "a: one\nb: one\n")
    write(tmp_path / "two.yaml", "b: two\n")
    write(tmp_path / "main.yaml", "id: m\nimports: [one, two]\n")
    assert load_configuration("main").data == {"a": "one", "b": "two", "id": "m", "imports": ["one", "two"]}


def test_parent_is_the_single_form(tmp_path):
    write(tmp_path / "base.yaml", "a: base\n")
    write(tmp_path / "main.yaml", "id: m\nparent: base.yaml\n")
    assert load_configuration("main").data == {"a": "base", "id": "m", "parent": "base.yaml"}


def test_imports_and_parent_together_is_an_error(tmp_path):
    write(tmp_path / "base.yaml", "a: 1\n")
    write(tmp_path / "main.yaml", "id: m\nparent: base\nimports: [base]\n")
    with pytest.raises(ExperimentConfigError, match=r"^main.yaml: imports: give either imports .* or parent"):
        load_configuration("main")


def test_import_cycle_names_the_files(tmp_path):
    write(tmp_path / "a.yaml", "imports: [b]\n")
    write(tmp_path / "b.yaml", "imports: [a]\n")
    write(tmp_path / "main.yaml", "id: m\nimports: [a]\n")
    with pytest.raises(ExperimentConfigError) as info:
        load_configuration("main")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert str(info.value) == f"b.yaml: imports: import cycle: {a} -> {b} -> {a}"


def test_self_import_is_a_cycle(tmp_path):
    write(tmp_path / "main.yaml", "id: m\nparent: main\n")
    with pytest.raises(ExperimentConfigError, match=r"^main.yaml: parent: import cycle: .*main.yaml -> .*main.yaml$"):
        load_configuration("main")


def test_a_file_imported_twice_is_not_a_cycle(tmp_path):
    write(tmp_path / "d.yaml", "d: 1\n")
    write(tmp_path / "b.yaml", "imports: [d]\nb: 1\n")
    write(tmp_path / "c.yaml", "imports: [d]\nc: 1\n")
    write(tmp_path / "main.yaml", "id: m\nimports: [b, c]\n")
    assert load_configuration("main").data == {"d": 1, "b": 1, "c": 1, "id": "m", "imports": ["b", "c"]}


def test_missing_import_names_importer_and_key(tmp_path):
    write(tmp_path / "main.yaml", "id: m\nimports: [ok, gone]\n")
    write(tmp_path / "ok.yaml", "a: 1\n")
    with pytest.raises(ExperimentConfigError, match=r"^main.yaml: imports\[1\]: gone: no such file"):
        load_configuration("main")


@pytest.mark.parametrize("imports", ["base", "[3]", "{a: b}"])
def test_imports_must_be_a_list_of_names(tmp_path, imports):
    write(tmp_path / "main.yaml", f"id: m\nimports: {imports}\n")
    with pytest.raises(ExperimentConfigError, match=r"^main.yaml: imports(\[0\])?: expected a"):
        load_configuration("main")


def test_bad_yaml_in_an_import_names_that_file(tmp_path):
    write(tmp_path / "base.yaml", "a: [\n")
    write(tmp_path / "main.yaml", "id: m\nimports: [base]\n")
    with pytest.raises(ExperimentConfigError, match=r"base.yaml: line 2, column 1: invalid YAML"):
        load_configuration("main")


def test_missing_main_file(tmp_path):
    with pytest.raises(ExperimentConfigError, match=r"^absent.yaml: no such file \(tried absent.yaml\)$"):
        load_configuration("absent.yaml")


# --- overrides


def test_parse_override():
    assert parse_override("a.b.c=1=2") == (("a", "b", "c"), "1=2")
    assert parse_override("a=") == (("a",), "")
    with pytest.raises(ExperimentConfigError, match=r"^-c epochs: expected key=value"):
        parse_override("epochs")
    with pytest.raises(ExperimentConfigError, match="empty part"):
        parse_override("a..b=1")


def test_overrides_create_nested_mappings_and_are_checked_first(tmp_path):
    write(tmp_path / "main.yaml", "id: m\nmodel: 3\n")
    merged = load_configuration("main", overrides=["model.layers=4", "new.deep.key=x"])
    assert merged.data == {"id": "m", "model": {"layers": "4"}, "new": {"deep": {"key": "x"}}}
    # A malformed -c is reported even when the YAML is missing.
    with pytest.raises(ExperimentConfigError, match="expected key=value"):
        load_configuration("absent", overrides=["oops"])


def test_python_path_adds_up_relative_to_each_file(tmp_path):
    write(tmp_path / "lib" / "base.yaml", "pythonpath: [., ../src]\n")
    write(tmp_path / "main.yaml", "id: m\nimports: [lib/base]\npythonpath: [extra]\n")
    merged = load_configuration("main")
    assert merged.python_path == [tmp_path / "lib", tmp_path / "src", tmp_path / "extra"]
    assert merged.data["pythonpath"] == ["extra"]


# --- validation


def merged_from(tmp_path: Path, text: str, overrides: list[str] | None = None) -> MergedConfig:
    write(tmp_path / "experiment.yaml", text)
    return load_configuration("experiment", overrides=overrides or [])


def test_validate_coerces_override_strings(tmp_path):
    merged = merged_from(
        tmp_path,
        "id: x\nmodel: {name: cnn}\nmodels: [{layers: 2}]\n",
        ["epochs=3", "lr=1e-3", "flag=true", "model.layers=7", "where=/data", "optional.layers=2"],
    )
    cfg = validate(merged, Config)
    assert isinstance(cfg, Config)
    assert (cfg.epochs, cfg.lr, cfg.flag, cfg.where) == (3, 0.001, True, Path("/data"))
    assert cfg.model == Model(layers=7, name="cnn")
    assert cfg.models == [Model(layers=2)] and cfg.optional == Model(layers=2)
    assert cfg.lrs == [0.1]


def test_wrong_type_names_file_key_and_value(tmp_path):
    merged = merged_from(tmp_path, "id: x\nepochs: ten\n")
    with pytest.raises(ExperimentConfigError) as info:
        validate(merged, Config)
    assert str(info.value) == "experiment.yaml: epochs: expected int, got 'ten'"
    assert (info.value.key, info.value.path) == ("epochs", "experiment.yaml")


def test_wrong_type_from_an_override_says_so(tmp_path):
    merged = merged_from(tmp_path, "id: x\n", ["model.layers=many"])
    with pytest.raises(
        ExperimentConfigError,
        match=r"^experiment.yaml: model.layers: expected int, got 'many' \(set by -c model.layers=many\)$",
    ):
        validate(merged, Config)


def test_wrong_type_from_an_import_names_it(tmp_path):
    write(tmp_path / "base.yaml", "lrs: [0.1, oops]\n")
    merged = merged_from(tmp_path, "id: x\nimports: [base]\n")
    with pytest.raises(ExperimentConfigError) as info:
        validate(merged, Config)
    assert str(info.value) == "experiment.yaml: lrs[1]: expected float, got 'oops' (set in base.yaml)"


@pytest.mark.parametrize(
    "text, message",
    [
        ("id: x\nmodel: 3\n", "experiment.yaml: model: expected mapping, got 3"),
        ("id: x\nlrs: 0.5\n", "experiment.yaml: lrs: expected list, got 0.5"),
        ("id: x\nflag: maybe\n", "experiment.yaml: flag: expected bool, got 'maybe'"),
        ("id: x\noptional: {layers: x}\n", "experiment.yaml: optional.layers: expected int, got 'x'"),
        ("id: x\nparent: 3\n", "experiment.yaml: parent: expected a file name, got 3"),
        ("id: x\npre_experiment: 3\n", "experiment.yaml: pre_experiment: expected str | null, got 3"),
        ("epochs: 3\n", "experiment.yaml: id: required key is missing"),
        ("id: x\nmodels: [{layers: 1}, {layers: z}]\n", "experiment.yaml: models[1].layers: expected int, got 'z'"),
    ],
)
def test_validation_messages(tmp_path, text, message):
    with pytest.raises(ExperimentConfigError) as info:
        validate(merged_from(tmp_path, text), Config)
    assert str(info.value) == message


def test_unknown_key_lists_known_keys(tmp_path):
    merged = merged_from(tmp_path, "id: x\nepoch: 3\n")
    with pytest.raises(ExperimentConfigError) as info:
        validate(merged, Config)
    message = str(info.value)
    assert message.startswith("experiment.yaml: unknown key 'epoch' (did you mean 'epochs'? known keys: add_timestamp,")
    assert "epochs, file, flag, grid_search, id, imports, lr, lrs, model, models, module" in message


@pytest.mark.parametrize(
    "text, key",
    [
        ("id: x\nmodel: {layer: 3}\n", "model"),
        ("id: x\nmodels: [{}, {size: 3}]\n", "models[1]"),
        ("id: x\noptional: {size: 3}\n", "optional"),
    ],
)
def test_unknown_nested_key(tmp_path, text, key):
    with pytest.raises(ExperimentConfigError, match=rf"^experiment.yaml: {re.escape(key)}: unknown key '(layer|size)'"):
        validate(merged_from(tmp_path, text), Config)


def test_unknown_key_from_an_override_says_so(tmp_path):
    with pytest.raises(ExperimentConfigError, match=r"\(set by -c modle.layers=2\)$"):
        validate(merged_from(tmp_path, "id: x\n", ["modle.layers=2"]), Config)


def test_configuration_base_accepts_only_its_keys(tmp_path):
    assert validate(merged_from(tmp_path, "id: x\ntitle: T\n"), ConfigurationBase).title == "T"
    with pytest.raises(ExperimentConfigError, match="unknown key 'epochs'"):
        validate(merged_from(tmp_path, "id: x\nepochs: 3\n"), ConfigurationBase)


@configuration
class Positive:
    n: int = 1

    def __post_init__(self):
        if self.n < 0:
            raise ValueError("n must be positive")


@configuration
class WithCheck(ConfigurationBase):
    sub: Positive = field(default_factory=Positive)


def test_post_init_errors_are_reported_with_their_key(tmp_path):
    with pytest.raises(ExperimentConfigError, match=r"^experiment.yaml: sub: n must be positive$"):
        validate(merged_from(tmp_path, "id: x\nsub: {n: -1}\n"), WithCheck)


def test_unresolvable_annotation_in_the_class_is_a_clear_error(tmp_path):
    @configuration
    class Local:
        n: int = 1

    @configuration
    class Outer(ConfigurationBase):
        sub: Local = field(default_factory=Local)  # a string annotation naming a local class

    with pytest.raises(ExperimentConfigError, match=r"^experiment.yaml: the configuration class .*Outer cannot be"):
        validate(merged_from(tmp_path, "id: x\n"), Outer)


def test_check_keys_follows_dicts_of_configurations(tmp_path):
    @configuration
    class Many(ConfigurationBase):
        by_name: dict[str, Model] = field(default_factory=dict)

    merged = merged_from(tmp_path, "id: x\nby_name: {a: {layers: 2}, b: {colour: red}}\n")
    with pytest.raises(ExperimentConfigError, match=r"^experiment.yaml: by_name.b: unknown key 'colour'"):
        check_keys(merged.data, Many, merged)


def test_experiment_id_timestamp():
    moment = datetime.datetime(2024, 3, 5, 7, 9)
    assert experiment_id(ConfigurationBase(id="xp"), moment) == "xp"
    assert experiment_id(ConfigurationBase(id="xp", add_timestamp=True), moment) == "xp-20240305-0709"


# --- finding and loading the experiment


@pytest.fixture
def module(monkeypatch):
    """Makes a module from source (registered in sys.modules while the test runs)."""

    def make(source: str, name: str = "xp_module_for_xpm_test") -> types.ModuleType:
        mod = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, mod)
        # dont_inherit: this test file's "from __future__ import annotations" must not leak in.
        exec(compile(textwrap.dedent(source), name, "exec", dont_inherit=True), mod.__dict__)
        return mod

    return make


def test_find_run_with_string_annotations(module):
    mod = module(
        """
        from __future__ import annotations
        from typing import TYPE_CHECKING
        from xpm.experiments import configuration, ConfigurationBase
        if TYPE_CHECKING:
            from somewhere import NotImportable

        @configuration
        class Cfg(ConfigurationBase):
            n: int = 1

        def run(helper: NotImportable, cfg: Cfg):
            pass
        """
    )
    run, cls = find_run(mod, "xp.py")
    assert run is mod.run and cls is mod.Cfg


def test_find_run_without_annotation_uses_configuration_base(module):
    assert find_run(module("def run(helper, cfg): pass"), "xp.py")[1] is ConfigurationBase


@pytest.mark.parametrize(
    "source, message",
    [
        ("x = 1", re.escape("xp.py defines no run(helper, cfg) function")),
        ("run = 3", re.escape("xp.py defines no run(helper, cfg) function")),
        ("def run(helper): pass", r"xp.py: run must take exactly two parameters \(helper, cfg\), not \(helper\)"),
        ("def run(a, b, c): pass", "run must take exactly two parameters"),
        ("def run(a, *b): pass", "run must take exactly two parameters"),
        ("def run(a, b: int): pass", "must be annotated with a @configuration class deriving from ConfigurationBase"),
        ("def run(a, b: 'Missing'): pass", "cannot resolve the annotation 'Missing'"),
        (
            "from xpm.experiments import ConfigurationBase\n"
            + "class Plain(ConfigurationBase):\n    n: int = 1\n"
            + "def run(a, b: Plain): pass",
            "Plain must be decorated with @configuration",
        ),
    ],
)
def test_find_run_errors(module, source, message):
    with pytest.raises(ExperimentConfigError, match=message):
        find_run(module(source), "xp.py")


def test_find_target_file_relative_to_the_yaml_that_gave_it(tmp_path):
    write(tmp_path / "lib" / "code.py", "")
    write(tmp_path / "lib" / "base.yaml", "file: code\n")
    write(tmp_path / "configs" / "main.yaml", "id: m\nimports: [../lib/base]\n")
    merged = load_configuration("configs/main")
    assert find_target(merged).file == tmp_path / "lib" / "code.py"


def test_find_target_default_file_and_override(tmp_path):
    write(tmp_path / "configs" / "experiment.py", "")
    write(tmp_path / "configs" / "main.yaml", "id: m\n")
    write(tmp_path / "configs" / "other.py", "")
    write(tmp_path / "mine.py", "")
    merged = load_configuration("configs/main", overrides=["file=other"])
    assert find_target(merged).file == tmp_path / "configs" / "other.py"
    merged = load_configuration("configs/main")
    assert find_target(merged).file == tmp_path / "configs" / "experiment.py"
    apply_options(merged, file="mine.py")
    assert merged.data["file"] == "mine.py" and find_target(merged, file="mine.py").file == tmp_path / "mine.py"


def test_find_target_errors(tmp_path):
    write(tmp_path / "main.yaml", "id: m\nfile: gone\n")
    with pytest.raises(ExperimentConfigError, match=r"^main.yaml: file: no such file: .*gone \(nor .*gone.py\)$"):
        find_target(load_configuration("main"))
    write(tmp_path / "both.yaml", "id: m\nfile: x\nmodule: y\n")
    with pytest.raises(ExperimentConfigError, match="give either file .* or module .*, not both"):
        find_target(load_configuration("both"))
    with pytest.raises(ExperimentConfigError, match="^--file: no such file"):
        find_target(load_configuration("main"), file="absent.py")
    with pytest.raises(ExperimentConfigError, match="either --file or --module-name"):
        apply_options(load_configuration("main"), file="a", module="b")


def test_module_name_option_replaces_file(tmp_path):
    write(tmp_path / "main.yaml", "id: m\nfile: x\n")
    merged = load_configuration("main")
    apply_options(merged, module="pkg.xp")
    assert merged.data == {"id": "m", "module": "pkg.xp"}
    assert find_target(merged, module="pkg.xp").module == "pkg.xp"


def test_load_experiment_file_python_path_and_pre_experiment(tmp_path):
    write(tmp_path / "src" / "helpers_mod_for_xpm_test.py", "VALUE = 41\n")
    write(tmp_path / "pre.py", "import os\nos.environ['XPM_TEST_PRE'] = 'ran'\n")
    write(
        tmp_path / "xp" / "experiment_for_xpm_test.py",
        """
        import os
        from helpers_mod_for_xpm_test import VALUE
        from xpm.experiments import configuration, ConfigurationBase
        PRE = os.environ.get("XPM_TEST_PRE")

        @configuration
        class Cfg(ConfigurationBase):
            n: int = VALUE + 1

        def run(helper, cfg: Cfg):
            pass
        """,
    )
    write(
        tmp_path / "xp" / "main.yaml",
        "id: m\nfile: experiment_for_xpm_test\npythonpath: [../src]\npre_experiment: ../pre.py\n",
    )
    merged = load_configuration("xp/main")
    try:
        loaded = load_experiment(merged, find_target(merged))
        mod = sys.modules["experiment_for_xpm_test"]
        assert mod.PRE == "ran" and loaded.run is mod.run and loaded.cls is mod.Cfg
        assert loaded.folders == [tmp_path / "src", tmp_path / "xp"]
        assert str(tmp_path / "src") in sys.path and validate(merged, loaded.cls).n == 42
    finally:
        import os

        os.environ.pop("XPM_TEST_PRE", None)


def test_load_experiment_module_found_above_the_yaml(tmp_path):
    write(tmp_path / "proj_for_xpm_test" / "__init__.py", "")
    write(tmp_path / "proj_for_xpm_test" / "xp.py", "def run(helper, cfg): pass\n")
    write(tmp_path / "proj_for_xpm_test" / "configs" / "main.yaml", "id: m\nmodule: proj_for_xpm_test.xp\n")
    merged = load_configuration("proj_for_xpm_test/configs/main")
    loaded = load_experiment(merged, find_target(merged))
    assert loaded.cls is ConfigurationBase and loaded.folders == [tmp_path]


def test_load_experiment_missing_module(tmp_path):
    write(tmp_path / "main.yaml", "id: m\nmodule: no_such_module_for_xpm.xp\n")
    merged = load_configuration("main")
    with pytest.raises(ExperimentConfigError, match=r"^main.yaml: module: cannot import the module 'no_such_module"):
        load_experiment(merged, find_target(merged))


def test_missing_pre_experiment(tmp_path):
    write(tmp_path / "experiment.py", "def run(helper, cfg): pass\n")
    write(tmp_path / "main.yaml", "id: m\npre_experiment: gone.py\n")
    merged = load_configuration("main")
    with pytest.raises(ExperimentConfigError, match=r"^main.yaml: pre_experiment: no such file"):
        load_experiment(merged, find_target(merged))
    write(tmp_path / "main.yaml", "id: m\npre_experiment: no_such_module_for_xpm\n")
    merged = load_configuration("main")
    with pytest.raises(ExperimentConfigError, match=r"^main.yaml: pre_experiment: cannot import the module"):
        load_experiment(merged, find_target(merged))


def test_experiment_file_cannot_shadow_an_imported_module(tmp_path):
    write(tmp_path / "json.py", "def run(helper, cfg): pass\n")
    write(tmp_path / "main.yaml", "id: m\nfile: json.py\n")
    merged = load_configuration("main")
    with pytest.raises(ExperimentConfigError, match="already imported module 'json'"):
        load_experiment(merged, find_target(merged))
