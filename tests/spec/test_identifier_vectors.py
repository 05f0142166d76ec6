"""The identifier test vectors, ``spec/vectors/identifiers.json``.

Two independent routes must reach the identifiers of the file:

* a reference evaluator, written below from ``spec/identifiers.md`` alone (it does not
  import ``xpm.ids``), computes the preimage and identifier of each case from its
  language-neutral description;
* xpm computes ``xpm.identifier(cfg)`` for the Python configuration that
  ``vector_cases.py`` builds for the case.

The relations between cases (equal / different identifiers) pin the rules down.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

import xpm
from xpm import Param, Task
from xpm.errors import IdentifierError

from . import vector_cases

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = ROOT / "spec" / "vectors" / "identifiers.json"
SPEC_FILE = ROOT / "spec" / "identifiers.md"
GENERATOR = ROOT / "scripts" / "gen_identifier_vectors.py"

DOCUMENT = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DOCUMENT["cases"]
BY_NAME = {c["name"]: c for c in CASES}
CASE_IDS = [c["name"] for c in CASES]


# ---------------------------------------------------------------------------
# Reference evaluator (from spec/identifiers.md only)
# ---------------------------------------------------------------------------

DOMAIN = b"xpm/identifier/v1\x00"
CANONICAL_NAN = bytes.fromhex("7ff8000000000000")


class SpecError(Exception):
    """The description cannot be encoded (the spec's "Errors" section)."""


def u64(n: int) -> bytes:
    if not 0 <= n < 2**64:
        raise SpecError(f"{n} does not fit in a u64")
    return n.to_bytes(8, "big")


def text(s: str) -> bytes:
    data = s.encode("utf-8")
    return u64(len(data)) + data


def float_bytes(s: str) -> bytes:
    x = float(s)  # Python repr strings, "nan", "inf", "-inf", "-0.0"
    if math.isnan(x):
        return CANONICAL_NAN
    if x == 0.0:
        x = 0.0  # -0.0 is encoded as 0.0
    return struct.pack(">d", x)


PARTIAL_DOMAIN = b"xpm/partial/v1\x00"
INSTANCE_DOMAIN = b"xpm/instance/v1\x00"


class Reference:
    """Computes (digest, preimage) of a described configuration."""

    def __init__(self) -> None:
        self.depth = -1  # depth of the configuration being encoded (the root is 0)
        #: InstanceConfig objects met, by plain digest: their object numbers in the order met
        self.instances: dict[bytes, list[int]] = {}

    def config(self, desc: dict[str, Any]) -> tuple[bytes, bytes]:
        if "converted" in desc:
            # a deprecated class: what its conversion gives
            return self.config(desc["converted"])
        digest, preimage = self.plain_config(desc)
        if "instance" in desc:
            order = self.instances.setdefault(digest, [])
            if desc["instance"] not in order:
                order.append(desc["instance"])
            position = order.index(desc["instance"])
            if position:
                digest = blake3(INSTANCE_DOMAIN + digest + u64(position)).digest()
        return digest, preimage

    def plain_config(self, desc: dict[str, Any]) -> tuple[bytes, bytes]:
        self.depth += 1
        try:
            partial = desc.get("partial") if self.depth == 0 else None
            out = bytearray()
            if partial is not None:
                out += PARTIAL_DOMAIN + b"S" + text(partial["name"])
            out += DOMAIN
            out += b"S" + text(desc["type"])
            producer = desc.get("task")
            if producer is None:
                out += b"\x00"
            else:
                out += b"\x01" + self.config(producer)[0]
            entries = []
            excluded = set(partial["excluded"]) if partial is not None else set()
            # In the order of the preimage (the order InstanceConfig objects are numbered in)
            for name, field in sorted(desc["fields"].items(), key=lambda item: item[0].encode("utf-8")):
                if name in excluded:
                    continue
                encoded = self.field(name, field)
                if encoded is not None:
                    entries.append((name.encode("utf-8"), encoded))
            entries.sort(key=lambda entry: entry[0])
            out += u64(len(entries))
            for name_bytes, encoded in entries:
                out += b"S" + u64(len(name_bytes)) + name_bytes + encoded
            init_tasks = desc.get("init_tasks", [])
            out += u64(len(init_tasks))
            for init in init_tasks:
                out += self.config(init)[0]
            preimage = bytes(out)
            return blake3(preimage).digest(), preimage
        finally:
            self.depth -= 1

    def field(self, name: str, field: dict[str, Any]) -> bytes | None:
        """The encoded value of a field, or None when the field is left out."""
        kind = field["kind"]
        assert kind in ("param", "meta", "constant"), kind
        if kind == "meta" or field["path"]:
            return None
        has_default = "default" in field
        if "value" not in field:
            if kind == "param" and not has_default and not field["optional"]:
                raise SpecError(f"{name}: required parameter without a value")
            return None
        value = field["value"]
        if "none" in value and not has_default:
            return None
        if _is_meta(value):
            return None  # a configuration marked meta
        value = _without_meta(value)
        encoded = self.value(value)
        if kind == "param" and field["ignore_default"] and has_default:
            if encoded == Reference().value(field["default"]):
                return None
        return encoded

    def value(self, v: dict[str, Any]) -> bytes:
        ((kind, body),) = v.items()
        if kind == "none":
            return b"N"
        if kind == "bool":
            assert body is True or body is False
            return b"B\x01" if body else b"B\x00"
        if kind == "int":
            return b"I" + text(str(int(body, 10)))
        if kind == "float":
            return b"F" + float_bytes(body)
        if kind == "str":
            return b"S" + text(body)
        if kind in ("list", "tuple"):
            return (b"L" if kind == "list" else b"T") + u64(len(body)) + b"".join(self.value(x) for x in body)
        if kind == "dict":
            keyed = sorted(((self.value(k), x) for k, x in body), key=lambda pair: pair[0])
            pairs = [(k, self.value(x)) for k, x in keyed]
            for (k1, _), (k2, _) in zip(pairs, pairs[1:]):
                if k1 == k2:
                    raise SpecError("two dictionary keys with the same encoding")
            return b"D" + u64(len(pairs)) + b"".join(k + x for k, x in pairs)
        if kind == "set":
            items = sorted(self.value(x) for x in body)
            return b"X" + u64(len(items)) + b"".join(items)
        if kind == "enum":
            return b"E" + text(body["type"]) + text(body["member"])
        if kind == "config":
            return b"C" + self.config(body)[0]
        if kind == "ancestor":
            if not 0 <= body <= self.depth:
                raise SpecError(f"ancestor {body} is not on the current path (depth {self.depth})")
            return b"R" + u64(body)
        raise SpecError(f"a value of kind {kind!r} cannot enter an identifier")


def _is_meta(value: dict[str, Any]) -> bool:
    return "config" in value and value["config"].get("meta") is True


def _without_meta(value: dict[str, Any]) -> dict[str, Any]:
    """A list, tuple, set or dict value without its configurations marked meta (one level)."""
    ((kind, body),) = value.items()
    if kind in ("list", "tuple", "set"):
        return {kind: [x for x in body if not _is_meta(x)]}
    if kind == "dict":
        return {kind: [[k, x] for k, x in body if not _is_meta(x)]}
    return value


def reference_identifier(desc: dict[str, Any]) -> tuple[str, str]:
    digest, preimage = Reference().config(desc)
    return digest.hex(), preimage.hex()


def scrambled(node: Any) -> Any:
    """The same description with every unordered listing reversed (fields, dict entries, set items)."""
    if isinstance(node, list):
        return [scrambled(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in reversed(list(node.items())):
        if key in ("fields",):
            out[key] = {k: scrambled(v) for k, v in reversed(list(value.items()))}
        elif key in ("dict", "set") and isinstance(value, list):
            out[key] = [scrambled(x) for x in reversed(value)]
        else:
            out[key] = scrambled(value)
    return out


# ---------------------------------------------------------------------------
# (a) the reference evaluator reproduces every vector
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_IDS)
def test_reference_evaluator_reproduces_vector(name: str) -> None:
    case = BY_NAME[name]
    identifier, preimage = reference_identifier(case["config"])
    assert preimage == case["preimage"]
    assert identifier == case["identifier"]
    assert blake3(bytes.fromhex(case["preimage"])).hexdigest() == case["identifier"]


@pytest.mark.parametrize("name", CASE_IDS)
def test_reference_evaluator_ignores_listing_order(name: str) -> None:
    case = BY_NAME[name]
    assert reference_identifier(scrambled(case["config"])) == (case["identifier"], case["preimage"])


def test_reference_evaluator_layout_of_model_basic() -> None:
    # Spelled out byte by byte, as in the worked example of the spec.
    expected = (
        DOMAIN
        + b"S" + (9).to_bytes(8, "big") + b"vec.model"
        + b"\x00"
        + (1).to_bytes(8, "big")
        + b"S" + (6).to_bytes(8, "big") + b"hidden" + b"I" + (2).to_bytes(8, "big") + b"10"
        + (0).to_bytes(8, "big")
    )  # fmt: skip
    assert BY_NAME["model_basic"]["preimage"] == expected.hex()
    assert BY_NAME["model_basic"]["identifier"] == blake3(expected).hexdigest()


@pytest.mark.parametrize(
    "value, encoded",
    [
        ({"none": None}, "4e"),
        ({"bool": True}, "4201"),
        ({"bool": False}, "4200"),
        ({"int": "-42"}, "49" + "0000000000000003" + "2d3432"),
        ({"float": "0.5"}, "46" + "3fe0000000000000"),
        ({"float": "-0.0"}, "46" + "0000000000000000"),
        ({"float": "nan"}, "46" + "7ff8000000000000"),
        ({"float": "-inf"}, "46" + "fff0000000000000"),
        ({"str": "é"}, "53" + "0000000000000002" + "c3a9"),
        ({"list": [{"int": "1"}]}, "4c" + "0000000000000001" + "49" + "0000000000000001" + "31"),
        ({"tuple": []}, "54" + "0000000000000000"),
        (
            {"set": [{"str": "aa"}, {"str": "z"}]},
            "58" + "02".zfill(16) + "53" + "01".zfill(16) + "7a" + "53" + "02".zfill(16) + "6161",
        ),
        (
            {"enum": {"type": "vec.Color", "member": "RED"}},
            "45" + "09".zfill(16) + "7665632e436f6c6f72" + "03".zfill(16) + "524544",
        ),
    ],
)  # fmt: skip
def test_reference_value_encodings(value: dict[str, Any], encoded: str) -> None:
    assert Reference().value(value).hex() == encoded


def test_reference_evaluator_errors() -> None:
    field = {"kind": "param", "path": False, "optional": False, "ignore_default": False}
    desc = {"type": "vec.any", "fields": {"v": dict(field)}, "init_tasks": []}
    with pytest.raises(SpecError, match="required"):
        Reference().config(desc)
    desc["fields"]["v"]["value"] = {"path": "/data"}
    with pytest.raises(SpecError, match="cannot enter"):
        Reference().config(desc)
    desc["fields"]["v"]["value"] = {"dict": [[{"float": "nan"}, {"int": "1"}], [{"float": "nan"}, {"int": "2"}]]}
    with pytest.raises(SpecError, match="same encoding"):
        Reference().config(desc)
    desc["fields"]["v"]["value"] = {"ancestor": 1}
    with pytest.raises(SpecError, match="not on the current path"):
        Reference().config(desc)


# ---------------------------------------------------------------------------
# (b) xpm gives the identifiers of the vectors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_IDS)
def test_xpm_identifier_matches_vector(name: str) -> None:
    built = vector_cases.CASES[name].build()
    identify = vector_cases.identify
    assert identify(built) == BY_NAME[name]["identifier"]
    # Sealing (which enables caching) does not change it.
    config = built.config if isinstance(built, vector_cases.PartialOf) else built
    config.__xpm__.seal()
    assert identify(built) == BY_NAME[name]["identifier"]
    assert identify(built) == BY_NAME[name]["identifier"]


@pytest.mark.parametrize("name", CASE_IDS)
def test_description_matches_python_case(name: str) -> None:
    case = vector_cases.CASES[name]
    assert vector_cases.describe(case.build()) == BY_NAME[name]["config"]
    assert case.description == BY_NAME[name]["description"]


def test_vectors_file_is_up_to_date() -> None:
    """What ``scripts/gen_identifier_vectors.py --check`` checks: the file is exactly what it generates."""
    spec = importlib.util.spec_from_file_location("_gen_identifier_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render(generator.build_document(vector_cases)) == VECTORS_FILE.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# (c) relations, (d) shape of the file
# ---------------------------------------------------------------------------


def _relations() -> list[tuple[str, str, str]]:
    out = []
    for relation in DOCUMENT["relations"]:
        ((kind, names),) = relation.items()
        assert kind in ("equal", "different")
        assert len(names) == 2
        out.append((kind, names[0], names[1]))
    return out


@pytest.mark.parametrize("kind, a, b", _relations(), ids=lambda x: str(x))
def test_relation_holds(kind: str, a: str, b: str) -> None:
    ida, idb = BY_NAME[a]["identifier"], BY_NAME[b]["identifier"]
    if kind == "equal":
        assert ida == idb
        # Equal identifiers come from equal preimages.
        assert BY_NAME[a]["preimage"] == BY_NAME[b]["preimage"]
    else:
        assert ida != idb


def test_relations_cover_the_rules() -> None:
    relations = {(kind, frozenset((a, b))) for kind, a, b in _relations()}
    required = [
        ("equal", "float_zero", "float_negative_zero"),
        ("equal", "float_two", "float_from_int"),
        ("different", "any_str_one", "any_int_one"),
        ("different", "any_int_one", "any_float_one"),
        ("different", "any_list_1_2", "any_tuple_1_2"),
        ("different", "any_list_1_2", "any_list_nested_1_2"),
        ("equal", "dict_str_keys", "dict_str_keys_reordered"),
        ("equal", "set_strings", "set_strings_reordered"),
        ("equal", "shared_subconfig", "shared_equal_copies"),
        ("equal", "model_basic", "meta_set"),
        ("equal", "model_basic", "path_params"),
        ("different", "field_default_at_default", "model_basic"),
        ("equal", "model_basic", "ignore_default_at_default"),
        ("different", "model_basic", "ignore_default_overridden"),
        ("equal", "model_basic", "bare_default_at_default"),
        ("equal", "model_basic", "optional_none"),
        ("different", "model_basic", "optional_set"),
        ("different", "model_basic", "constant"),
        ("equal", "xpmid_mixed_case", "xpmid_lower_case"),
        ("equal", "field_order_ab", "field_order_ba"),
        ("different", "init_task_two", "init_task_two_swapped"),
        ("different", "task_output", "task_output_plain"),
        ("different", "nested_depth2", "subclass_for_parent_param"),
        ("equal", "generic_typevar_int", "generic_as_any"),
        ("equal", "pair_first_only", "pair_second_meta"),
        ("equal", "pair_list_with_meta", "pair_list_without_meta"),
        ("different", "instance_shared", "instance_separate"),
        ("equal", "deprecated_converted", "deprecated_target"),
        ("equal", "partial_iter10", "partial_iter20"),
        ("different", "partial_iter10", "learner_iter10"),
        ("different", "partial_iter10", "partial_other_name"),
    ]
    for kind, a, b in required:
        assert (kind, frozenset((a, b))) in relations, (kind, a, b)


def test_file_shape() -> None:
    assert DOCUMENT["version"] == 1
    assert DOCUMENT["hash"] == "blake3-256"
    assert bytes.fromhex(DOCUMENT["domain_hex"]) == DOMAIN
    assert len(CASES) >= 45
    assert len(set(CASE_IDS)) == len(CASE_IDS)
    assert CASE_IDS == list(vector_cases.CASES)
    for case in CASES:
        assert set(case) == {"name", "description", "config", "identifier", "preimage"}
        assert re.fullmatch(r"[a-z0-9_]+", case["name"])
        assert case["description"]
        assert re.fullmatch(r"[0-9a-f]{64}", case["identifier"])
        assert re.fullmatch(r"(?:[0-9a-f]{2})+", case["preimage"])
        assert case["preimage"].startswith((DOMAIN.hex(), PARTIAL_DOMAIN.hex()))


def _kinds(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        found.update(k for k in node if k in _VALUE_KINDS or k in ("task", "init_tasks"))
        if node.get("init_tasks"):
            found.add("init_tasks")
        for value in node.values():
            _kinds(value, found)
    elif isinstance(node, list):
        for x in node:
            _kinds(x, found)


_VALUE_KINDS = {"none", "bool", "int", "float", "str", "list", "tuple", "dict", "set", "enum", "config", "ancestor"}


def test_vectors_cover_every_kind() -> None:
    found: set[str] = set()
    _kinds([c["config"] for c in CASES], found)
    assert _VALUE_KINDS | {"task", "init_tasks"} <= found
    kinds = {f["kind"] for c in CASES for f in c["config"]["fields"].values()}
    assert kinds == {"param", "meta", "constant"}
    assert any(f["path"] for c in CASES for f in c["config"]["fields"].values())
    # the special floats
    floats = {c["config"]["fields"]["x"]["value"]["float"] for c in CASES if c["config"]["type"] == "vec.float"}
    assert {"nan", "inf", "-inf", "-0.0", "0.0"} <= floats


def test_spec_worked_example_matches_vectors() -> None:
    """The annotated preimages of the spec (```hex blocks, comments after '#') are those of the vectors."""
    spec = SPEC_FILE.read_text(encoding="utf-8")
    blocks = []
    for block in re.findall(r"```hex\n(.*?)```", spec, flags=re.S):
        blocks.append("".join(re.sub(r"\s", "", line.split("#")[0]) for line in block.splitlines()))
    for name in ("model_basic", "worked_example"):
        assert BY_NAME[name]["identifier"] in spec
        assert BY_NAME[name]["preimage"] in blocks


# ---------------------------------------------------------------------------
# Errors: values that cannot enter an identifier (spec, section "Errors")
# ---------------------------------------------------------------------------


class _ErrProducer(Task):
    __xpmid__ = "vec.err.producer"
    extra: Param[Any]


@pytest.mark.parametrize(
    "value, message",
    [
        (Path("/data"), "PosixPath|WindowsPath"),
        (b"bytes", "bytes"),
        (object(), "object"),
        ({float("nan"): 1, float("nan"): 2}, "same encoding"),
    ],
    ids=["path", "bytes", "object", "nan-keys"],
)
def test_xpm_rejects_values_that_cannot_enter(value: Any, message: str) -> None:
    with pytest.raises(IdentifierError, match=message) as info:
        xpm.identifier(vector_cases.AnyCfg.C(v=value))
    assert info.value.path == "AnyCfg.v"


def test_xpm_rejects_task_output_inside_its_producer() -> None:
    producer = _ErrProducer.C()
    output = vector_cases.Model.C(hidden=1)
    output.__xpm__.task = producer
    producer.extra = [output]
    with pytest.raises(IdentifierError, match="task output cannot be part of the parameters"):
        xpm.identifier(producer)


def test_xpm_rejects_missing_required_parameter() -> None:
    with pytest.raises(IdentifierError, match="required"):
        xpm.identifier(vector_cases.Model.C())


# ---------------------------------------------------------------------------
# Caching (spec, section 7): results never depend on what was computed before
# ---------------------------------------------------------------------------


def _two_node_cycle() -> tuple[Any, Any]:
    parent = vector_cases.Node.C(label="parent")
    child = vector_cases.Node.C(label="child", link=parent)
    parent.link = child
    parent.__xpm__.seal()
    return parent, child


@pytest.mark.parametrize("first", ["parent", "child"])
def test_cycle_identifiers_do_not_depend_on_computation_order(first: str) -> None:
    # Once sealed, digests may be cached; a configuration on a cycle must not be,
    # or the identifier of the other one would depend on which was computed first.
    parent, child = _two_node_cycle()
    expected = {
        "parent": BY_NAME["cycle_parent"]["identifier"],
        "child": BY_NAME["cycle_parent_from_child"]["identifier"],
    }
    order = [first, "child" if first == "parent" else "parent"]
    configs = {"parent": parent, "child": child}
    for _ in range(2):
        for name in order:
            assert xpm.identifier(configs[name]) == expected[name]


def test_shared_subconfig_digest_is_reused_consistently() -> None:
    model = vector_cases.Model.C(hidden=10)
    model.__xpm__.seal()
    assert xpm.identifier(model) == BY_NAME["model_basic"]["identifier"]
    pair = vector_cases.Pair.C(left=model, right=model)
    assert xpm.identifier(pair) == BY_NAME["shared_subconfig"]["identifier"]
