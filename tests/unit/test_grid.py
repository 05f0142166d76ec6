"""Grid search in experiment configurations (xpm.experiments.grid), and validate_attrs:
reading GridSearch values, expanding them with generate_grid, and the errors naming the key."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Optional

import pytest

from xpm.errors import XpmError
from xpm.experiments import (
    ConfigurationBase,
    ExperimentCallable,
    ExperimentHelper,
    GenericParams,
    GridSearch,
    configuration,
    generate_grid,
)
from xpm.experiments.grid import GridSearchError, check_grid, discover_grid_params, grid_item_type
from xpm.experiments.loader import validate, validate_attrs
from xpm.experiments.yamlconfig import ExperimentConfigError, load_configuration


@configuration
class Sub:
    value: GridSearch[int] = 1


@configuration
class Main(ConfigurationBase):
    lr: GridSearch[float] = 0.01
    batch_size: GridSearch[int] = 32
    epochs: int = 10
    tags: Optional[list[str]] = None
    sub: Optional[Sub] = None
    out: Path = Path("out")


def main(**data: Any) -> Main:
    return validate_attrs(Main, {"id": "test", **data})


# --- GenericParams and the GridSearch type


@pytest.mark.parametrize(
    "raw, values",
    [
        (10, [10]),
        ([1, 2, 3], [1, 2, 3]),
        ({"value": 4}, [4]),
        ({"values_list": [5, 6]}, [5, 6]),
        ({"values_range": [0, 3]}, [0, 1, 2]),
        ({"range": [0, 10, 2]}, [0, 2, 4, 6, 8]),
        ({"range": [16, 64, 10]}, [16, 26, 36, 46, 56]),
        ({"range": [3]}, [0, 1, 2]),
        ({"range_mult": [1e-4, 4, 10]}, [1e-4, 1e-3, 1e-2, 1e-1]),
        ({"values_mult": ["1e-4", 2, 10]}, [1e-4, 1e-3]),
        ({"range_mult": [16, 3, 2]}, [16, 32, 64]),
    ],
)
def test_generic_params_values(raw, values):
    params = GenericParams.from_any(raw)
    assert params.as_list() == pytest.approx(values)
    assert params.is_grid == (len(values) > 1)


def test_generic_params_convert_to_the_target_type():
    assert GenericParams.from_any(["1", 2], float).values_list == [1.0, 2.0]
    assert GenericParams.from_any("0.5", float).value == 0.5
    assert GenericParams.from_any(None).as_list() == [None]
    assert GenericParams.from_any(GenericParams(value=3)) == GenericParams(value=3)
    with pytest.raises(GridSearchError) as info:
        GenericParams.from_any([1, "x"], int, parts=("n",))
    assert str(info.value) == "n[1]: expected int, got 'x'"
    assert info.value.parts == ("n", "[1]") and isinstance(info.value, (XpmError, ValueError))


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"ranges": [0.1, 0.01]},
            "lr: unknown grid key 'ranges' (did you mean 'range'? known keys: range, range_mult, value, "
            "values_list, values_mult, values_range)",
        ),
        ([], "lr: an empty list gives no value to search"),
        ({"range": [0.5, 2]}, "lr.range[0]: expected int, got 0.5"),
        ({"range": [1, 2, 3, 4]}, "lr.range: expected [start, stop] or [start, stop, step], got [1, 2, 3, 4]"),
        ({"range": [1, 5, 0]}, "lr.range: expected [start, stop] or [start, stop, step], got [1, 5, 0]"),
        ({"range_mult": [1, 2]}, "lr.range_mult: expected [start, count, multiplier], got [1, 2]"),
        ({"range_mult": [1, "x", 2]}, "lr.range_mult[1]: expected int, got 'x'"),
        ({"range": [1, 2], "values_range": [1, 3]}, "lr: give either range or values_range, not both"),
        ({"values_list": 3}, "lr.values_list: expected a list, got 3"),
        ({"values_list": []}, "lr.values_list: an empty list gives no value to search"),
        ({"range": [5, 1]}, "lr: {'range': [5, 1]} gives no value to search"),
        ({"range_mult": [1, 0, 10]}, "lr: {'range_mult': [1, 0, 10]} gives no value to search"),
    ],
)
def test_generic_params_errors_name_the_key(raw, message):
    with pytest.raises(GridSearchError) as info:
        GenericParams.from_any(raw, parts=("lr",))
    assert str(info.value) == message


def test_gridsearch_type():
    assert grid_item_type(GridSearch[float]) is float
    assert grid_item_type(typing.get_type_hints(Main)["lr"]) is float  # Annotated stripped
    assert grid_item_type(Optional[GridSearch[int]]) == Optional[int]
    assert grid_item_type(float) is None and grid_item_type(Optional[float]) is None
    # Declared and checked as the union it is: one value, or values to search
    assert Main(id="x", lr=0.5).lr == 0.5


# --- validation (what run-experiment does to the YAML data)


def test_values_of_gridsearch_fields_are_read_and_converted():
    cfg = main(lr=["0.1", 0.01], sub={"value": {"values_list": [1, "2", 3]}})
    assert cfg.lr == GenericParams(values_list=[0.1, 0.01])
    assert cfg.sub is not None and cfg.sub.value == GenericParams(values_list=[1, 2, 3])
    cfg = main(lr=0.05, sub={"value": "10"})  # a scalar (from -c, a string) is one value
    assert cfg.lr == GenericParams(value=0.05) and cfg.sub is not None and cfg.sub.value == GenericParams(value=10)
    assert main().lr == 0.01  # the default is left as it is


@pytest.mark.parametrize(
    "data, message",
    [
        ({"lr": [0.1, "oops"]}, "Main: lr[1]: expected float, got 'oops'"),
        ({"lr": {"ranges": [1]}}, "Main: lr: unknown grid key 'ranges' (did you mean 'range'? "),
        ({"sub": {"value": {"value": "x"}}}, "Main: sub.value.value: expected int, got 'x'"),
        ({"lr": None}, "Main: lr: expected float | mapping, got None"),
        ({"grid_search": {"lrr": [1]}}, "Main: grid_search: unknown key 'lrr' (did you mean 'lr'? known keys: "),
        (
            {"grid_search": {"sub.valu": [1]}, "sub": {}},
            "Main: grid_search: unknown key 'sub.valu' (did you mean 'sub.value'? known keys of sub: value)",
        ),
        ({"grid_search": {"sub.value": [1]}}, "Main: grid_search: cannot search 'sub.value': sub is None"),
        ({"grid_search": {"epochs.x": [1]}}, "Main: grid_search: cannot search 'epochs.x': epochs is not a config"),
        ({"grid_search": {"epochs": [1, "ten"]}}, "Main: grid_search.epochs[1]: expected int, got 'ten'"),
        ({"grid_search": {"out": {"range": [1, 3]}}}, "Main: grid_search.out[0]: expected Path, got 1"),
        ({"grid_search": {"config_dicts": "x"}}, "Main: grid_search.config_dicts: expected a list of mappings, got"),
        ({"grid_search": {"config_dicts": []}}, "Main: grid_search.config_dicts: expected a list of mappings, got an"),
        ({"grid_search": {"config_dicts": [3]}}, "Main: grid_search.config_dicts[0]: expected a mapping, got 3"),
        ({"grid_search": {"config_dicts": [{}]}}, "Main: grid_search.config_dicts[0]: an empty mapping sets no value"),
        (
            {"grid_search": {"config_dicts": [{"lr": 1, "epochs": 2}, {"lr": 2, "batch": 3}]}},
            "Main: grid_search.config_dicts[1]: every mapping must have the keys of the first one "
            "(missing: epochs; extra: batch)",
        ),
        (
            {"grid_search": {"config_dicts": [{"lr": 1}, {"lr": "x"}]}},
            "Main: grid_search.config_dicts[1].lr: expected float, got 'x'",
        ),
        (
            {"grid_search": {"config_dicts": [{"lrr": 1}]}},
            "Main: grid_search.config_dicts[0]: unknown key 'lrr' (did you mean 'lr'?",
        ),
        (
            {"lr": [0.1, 0.2], "grid_search": {"config_dicts": [{"lr": 0.5}]}},
            "Main: grid_search.config_dicts: lr: searched both here and on its own; give it in one place",
        ),
        (
            {"grid_search": {"lr": [0.1, 0.2], "config_dicts": [{"lr": 0.5}]}},
            "Main: grid_search.config_dicts: lr: searched both here and on its own",
        ),
    ],
)
def test_validation_errors_name_the_key(data, message):
    with pytest.raises(ExperimentConfigError) as info:
        main(**data)
    assert str(info.value).startswith(message)


def test_errors_from_yaml_name_the_file_and_the_origin(tmp_path):
    (tmp_path / "base.yaml").write_text("grid_search:\n  lr: [0.1, x]\n")
    (tmp_path / "sweep.yaml").write_text("id: s\nimports: [base]\nlr: [0.1, 0.2]\n")
    merged = load_configuration(str(tmp_path / "sweep.yaml"), overrides=["batch_size=big"])
    with pytest.raises(ExperimentConfigError) as info:
        validate(merged, Main)
    assert str(info.value) == f"{tmp_path}/sweep.yaml: batch_size: expected int, got 'big' (set by -c batch_size=big)"
    merged = load_configuration(str(tmp_path / "sweep.yaml"))
    with pytest.raises(ExperimentConfigError) as info:
        validate(merged, Main)
    assert str(info.value) == (
        f"{tmp_path}/sweep.yaml: grid_search.lr[1]: expected float, got 'x' (set in {tmp_path}/base.yaml)"
    )
    assert info.value.key == "grid_search.lr[1]"


def test_validate_attrs():
    cfg = main(epochs="3", tags=["a"])
    assert (cfg.epochs, cfg.tags, cfg.out) == (3, ["a"], Path("out"))
    assert validate_attrs(Main, cfg) is cfg
    assert validate_attrs(int, "3") == 3
    with pytest.raises(ExperimentConfigError) as info:
        main(epoch=3)
    assert str(info.value).startswith("Main: unknown key 'epoch' (did you mean 'epochs'?")
    with pytest.raises(ExperimentConfigError, match=r"^Main: id: required key is missing$"):
        validate_attrs(Main, {})
    with pytest.raises(ExperimentConfigError, match=r"^int: expected int, got 'x'$"):
        validate_attrs(int, "x")


# --- generate_grid


def test_generate_grid_inline_lists_and_ranges():
    cfg = main(lr=[0.1, 0.01], sub={"value": {"range": [1, 3]}})
    assert discover_grid_params(cfg) == {
        "lr": GenericParams(values_list=[0.1, 0.01]),
        "sub.value": GenericParams(values_range=(1, 3)),
    }
    configurations, tags = generate_grid(cfg)
    assert [(c.lr, c.batch_size, c.sub.value) for c in configurations] == [
        (0.1, 32, 1),
        (0.1, 32, 2),
        (0.01, 32, 1),
        (0.01, 32, 2),
    ]
    assert tags == [
        {"lr": 0.1, "sub.value": 1},
        {"lr": 0.1, "sub.value": 2},
        {"lr": 0.01, "sub.value": 1},
        {"lr": 0.01, "sub.value": 2},
    ]
    assert all(isinstance(c, Main) and c is not cfg for c in configurations)
    assert cfg.lr == GenericParams(values_list=[0.1, 0.01])  # the original is left as it is


def test_generate_grid_converts_range_values_to_the_field_type():
    configurations, _ = generate_grid(main(lr={"range": [1, 3]}))
    assert [c.lr for c in configurations] == [1.0, 2.0] and all(type(c.lr) is float for c in configurations)


def test_generate_grid_without_search_gives_a_copy():
    cfg = main(lr=0.05, sub={"value": 10})
    configurations, tags = generate_grid(cfg)
    assert tags == [{}] and len(configurations) == 1
    assert (configurations[0].lr, configurations[0].sub.value) == (0.05, 10)
    assert configurations[0] is not cfg
    # A list of one value is that value, not a search
    configurations, tags = generate_grid(main(lr=[0.5], batch_size={"range": [8, 9]}))
    assert (configurations[0].lr, configurations[0].batch_size, tags) == (0.5, 8, [{}])


def test_generate_grid_block_merges_with_inline_fields():
    cfg = main(lr=0.1, grid_search={"batch_size": [16, 32, 64], "epochs": 5})
    configurations, tags = generate_grid(cfg)
    assert [(c.lr, c.batch_size, c.epochs) for c in configurations] == [(0.1, 16, 5), (0.1, 32, 5), (0.1, 64, 5)]
    assert tags == [{"batch_size": 16}, {"batch_size": 32}, {"batch_size": 64}]  # epochs has one value
    assert all(c.grid_search == {} for c in configurations)
    # The block wins over the inline value of the same field
    configurations, _ = generate_grid(main(lr=[0.1, 0.2], grid_search={"lr": [0.3]}))
    assert [c.lr for c in configurations] == [0.3]


def test_generate_grid_nested_paths_in_the_block():
    cfg = main(sub={"value": 0}, grid_search={"sub.value": ["1", 2]})
    configurations, tags = generate_grid(cfg)
    assert [c.sub.value for c in configurations] == [1, 2] and tags == [{"sub.value": 1}, {"sub.value": 2}]


def test_generate_grid_config_dicts():
    cfg = main(
        lr=[0.1, 0.01],
        sub={"value": 0},
        grid_search={"config_dicts": [{"batch_size": 16, "sub.value": 1}, {"batch_size": 64, "sub.value": 1}]},
    )
    configurations, tags = generate_grid(cfg)
    assert [(c.lr, c.batch_size, c.sub.value) for c in configurations] == [
        (0.1, 16, 1),
        (0.1, 64, 1),
        (0.01, 16, 1),
        (0.01, 64, 1),
    ]
    # sub.value is the same in every mapping: it is not a tag
    assert tags == [
        {"lr": 0.1, "batch_size": 16},
        {"lr": 0.1, "batch_size": 64},
        {"lr": 0.01, "batch_size": 16},
        {"lr": 0.01, "batch_size": 64},
    ]
    configurations, tags = generate_grid(main(grid_search={"config_dicts": [{"lr": 0.5, "batch_size": 8}]}))
    assert (configurations[0].lr, configurations[0].batch_size, tags) == (0.5, 8, [{}])


def test_generate_grid_block_typed_as_a_grid_search():
    """A configuration may declare grid_search's values as GridSearch[Any]: config_dicts
    is then read as values to search, and still works."""

    @configuration
    class Custom(ConfigurationBase):
        grid_search: dict[str, GridSearch[Any]] = field(default_factory=dict)
        lr: Optional[float] = 0.01
        batch_size: Optional[int] = 32

    dicts = [{"lr": 0.05, "batch_size": 16}, {"lr": None, "batch_size": 64}]
    cfg = validate_attrs(Custom, {"id": "x", "grid_search": {"config_dicts": dicts}})
    assert isinstance(cfg.grid_search["config_dicts"], GenericParams)
    configurations, tags = generate_grid(cfg)
    assert [(c.lr, c.batch_size) for c in configurations] == [(0.05, 16), (None, 64)]
    assert tags == [{"lr": 0.05, "batch_size": 16}, {"lr": None, "batch_size": 64}]


def test_generate_grid_on_configurations_built_in_python():
    """generate_grid checks what it is given, even without validation."""
    cfg = Main(id="x", lr=GenericParams(values_list=[0.1, 0.2]), grid_search={"epochs": [1, "x"]})
    with pytest.raises(GridSearchError) as info:
        generate_grid(cfg)
    assert str(info.value) == "grid_search.epochs[1]: expected int, got 'x'"
    with pytest.raises(GridSearchError, match="^grid_search: unknown key 'nope'"):
        check_grid(Main(id="x", grid_search={"nope": [1]}))
    configurations, tags = generate_grid(Main(id="x", lr=GenericParams(values_list=[0.1, 0.2])))
    assert [c.lr for c in configurations] == [0.1, 0.2] and tags == [{"lr": 0.1}, {"lr": 0.2}]


def test_experiment_callable_describes_run():
    def run(helper: ExperimentHelper, cfg: Main) -> None:
        pass

    checked: ExperimentCallable = run  # what a type checker accepts
    assert callable(checked) and dataclasses.is_dataclass(Main)
