"""The encoder of one configuration class, generated as Python source (see :mod:`xpm.ids`).

:func:`compile_encoder` writes, once per class, a function unrolled over the
class's sorted fields: each field's value is looked up by a constant name, its
common kinds (str, int, float, nested configuration, list or tuple of those
scalars) are encoded inline, the kind the parameter declares tried first, and any
other value goes to the general encoder (``enc.field_bytes``, ``enc.value_bytes``).
The preimage is one ``join`` of the pieces, with the head for the count of fields
that entered.
The function writes exactly the bytes of ``spec/identifiers.md``; the vectors
and ``tests/unit/test_ids_speed_paths.py`` check it against the spec.

The generated source holds no user text: field names, their encodings and the
class name are constants given through the function's namespace (``K0``, ``N0``,
``P0``...), so that no name can break or change the source.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

__all__ = ["FieldSpec", "compile_encoder", "compile_sequence_encoder"]


class FieldSpec(NamedTuple):
    """What the generated code needs to know about one hashed field (in the spec's order)."""

    #: the parameter name (a key of the configuration's ``__dict__``)
    name: str
    #: ``'S' ‖ text(name)``
    encoded_name: bytes
    #: the error path ``Class.name``
    path: str
    #: a missing value is an error
    required: bool
    #: None enters (as ``'N'``): the argument has a default
    none_enters: bool
    #: containers may hold configurations marked meta, left out
    may_hold_meta: bool
    #: the argument whose default encoding leaves the value out (``ignore_default``), or None
    compare: Any
    #: the kind tried first: "str", "int", "float", "config", "sequence" or "" (the declared type's)
    first: str


#: The inline encoding of each common kind: the code sets ``n{i}``, ``h{i}``, ``e{i}`` (the
#: field's name, its value's head and rest) from ``v`` (of type ``t``). ``count`` starts at
#: the number of fields: a field left out sets the three to b"" and takes one off.
_KINDS = {
    "str": (
        "t is str",
        """\
d = v.encode()  # UTF-8
ln = len(d)
n{i} = N{i}; h{i} = STR_HEAD[ln] if ln < SMALL else b"S" + u64(ln); e{i} = d""",
    ),
    "int": (
        "t is int",
        """\
n{i} = N{i}
if 0 <= v < SMALL:
    h{i} = SMALL_INT[v]; e{i} = b""
else:
    e{i} = b"%d" % v; ln = len(e{i}); h{i} = INT_HEAD[ln] if ln < SMALL else b"I" + u64(ln)""",
    ),
    "float": (
        "t is float",
        """\
n{i} = N{i}; e{i} = b""; h{i} = pack_double(b"F", v + 0.0) if v == v else TAGGED_NAN""",
    ),
    "config": (
        "isinstance(v, ConfigMixin)",
        """\
sub = v.__xpm__
if sub.meta:  # marked with setmeta(): out of the identifier
    n{i} = h{i} = e{i} = b""; count -= 1
else:
    d = sub.digest
    if d is None:
        found = positions.get(sub)
        if found is None:
            p = sub.xpmtype.id_plan
            fn = None if p is None else p.encode
            d = enc.config_digest(sub, below) if fn is None else fn(enc, sub, below)
        elif type(found) is bytes:
            d = found
    n{i} = N{i}
    if d is None:  # on the current path: a back-reference
        h{i} = b"R"; e{i} = u64(depth - found)
        if found < enc.low:
            enc.low = found
    else:
        h{i} = b"C"; e{i} = d""",
    ),
    "sequence": (
        "t is list or t is tuple",
        # the generic path when an item is not a str, int or float
        "{sequence}if parts is None:\n{generic}else:\n    n{i} = N{i}; h{i} = join(parts); e{i} = b\"\"",
    ),
}

#: The encoding of a list or tuple ``v`` (of type ``t``) of str, int and float, in ``parts``
#: (to join); ``parts`` is None when an item is anything else. The common lists (sizes,
#: rates, names...) are encoded inline; :func:`compile_sequence_encoder` makes a function of it.
_SEQUENCE = """\
ln = len(v)
if ln < SMALL:
    parts = [LIST_HEAD[ln] if t is list else TUPLE_HEAD[ln]]
else:
    parts = [(b"L" if t is list else b"T") + u64(ln)]
append = parts.append
for item in v:
    ti = type(item)
    if ti is int:
        if 0 <= item < SMALL:
            append(SMALL_INT[item])
            continue
        d = b"%d" % item
        ln = len(d)
        append(INT_HEAD[ln] if ln < SMALL else b"I" + u64(ln))
        append(d)
    elif ti is str:
        d = item.encode()  # UTF-8
        ln = len(d)
        append(STR_HEAD[ln] if ln < SMALL else b"S" + u64(ln))
        append(d)
    elif ti is float:
        append(pack_double(b"F", item + 0.0) if item == item else TAGGED_NAN)
    else:
        parts = None
        break
"""

#: The order in which the kinds are tried after the declared one
_ORDER = ("str", "int", "float", "config", "sequence")

_HEAD = """\
def encode(enc, info, depth):
    positions = enc.positions
    positions[info] = depth
    saved_low = enc.low
    enc.low = NO_REFERENCE
    below = depth + 1
    config = info.config
    values = config.__dict__
    task = info.task
    # a task output: its head holds the producing task's digest
    head = None if task is None or task is config else enc.output_head(info, OUTPUT_HEAD, below)
    count = {count}
    fi = 0
    try:
"""

_TAIL = """\
    except IdentifierError as exc:
        if exc.path:
            raise
        raise IdentifierError(str(exc), PATHS[fi]) from None
    head = HEADS[count] if head is None else head + u64(count)
    # the slot, not the property: read for every configuration
    tasks = info._init_tasks
    tail = enc.init_tail(tasks, below, CLASS_NAME) if tasks else ZERO_COUNT
    data = join(({pieces}))
    hasher = enc.hasher
    if hasher is None:
        result = hash_once(data)
    else:
        hasher.update(data)
        result = hasher.digest()
        hasher.reset()
{instance}    lowest = enc.low
    enc.low = lowest if lowest < saved_low else saved_low
    if lowest > depth:
        positions[info] = result
{cache}    else:
        del positions[info]
    return result
"""


def _indent(code: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in code.splitlines())


def _field_source(i: int, spec: FieldSpec) -> str:
    """The code of field ``i`` (at the indentation of the ``try`` body)."""
    missing = (
        f"raise IdentifierError('the parameter is required but has no value', P{i})"
        if spec.required
        else f'n{i} = h{i} = e{i} = b""; count -= 1'
    )
    lines = [f"fi = {i}", f"v = values.get(K{i}, MISSING)"]
    if spec.compare is not None:
        # ignore_default: the whole value through the general encoder (as spec'd: no meta
        # filtering), left out when it encodes as the default does
        lines += [
            "if v is MISSING:",
            _indent(missing, 4).rstrip("\n"),
            "else:",
            f"    h{i} = SMALL_INT[v] if type(v) is int and 0 <= v < SMALL else enc.value_bytes(v, depth)",
            f"    default = A{i}.default_encoding",
            "    if default is None:",
            f"        default = default_encoding(A{i})",
            f"    if h{i} == default:",
            f'        n{i} = h{i} = e{i} = b""; count -= 1',
            "    else:",
            f'        n{i} = N{i}; e{i} = b""',
        ]
        return _indent("\n".join(lines), 8)
    generic = (
        f"h{i} = enc.field_bytes(v, depth, {spec.none_enters}, {spec.may_hold_meta})\n"
        f"if h{i} is None:\n"
        f'    n{i} = h{i} = e{i} = b""; count -= 1\n'
        "else:\n"
        f'    n{i} = N{i}; e{i} = b""'
    )
    lines.append("t = type(v)")
    kinds = ([spec.first] if spec.first else []) + [k for k in _ORDER if k != spec.first]
    for n, kind in enumerate(kinds):
        test, body = _KINDS[kind]
        lines.append(f"{'if' if n == 0 else 'elif'} {test}:")
        code = body.format(i=i, sequence=_SEQUENCE, generic=_indent(generic, 4))
        lines.append(_indent(code, 4).rstrip("\n"))
    lines += ["elif v is MISSING:", _indent(missing, 4).rstrip("\n"), "else:", _indent(generic, 4).rstrip("\n")]
    return _indent("\n".join(lines), 8)


def encoder_source(fields: tuple[FieldSpec, ...], instance: bool, cacheable: bool) -> str:
    """The source of the encoder of a class with ``fields`` (see :func:`compile_encoder`)."""
    body = "".join(_field_source(i, spec) for i, spec in enumerate(fields)) or "        pass\n"
    pieces = "head, " + "".join(f"n{i}, h{i}, e{i}, " for i in range(len(fields))) + "tail"
    return (
        _HEAD.format(count=len(fields))
        + body
        + _TAIL.format(
            pieces=pieces,
            instance="    result = enc.instance_digest(result, id(info))\n" if instance else "",
            # an InstanceConfig's digest depends on the other objects of the tree: never cached
            cache=(
                "        if info.sealed and enc.convert:\n            info.digest = result\n"
                if cacheable and not instance
                else ""
            ),
        )
    )


def compile_encoder(
    class_name: str,
    fields: tuple[FieldSpec, ...],
    *,
    instance: bool,
    cacheable: bool,
    heads: tuple[bytes, ...],
    output_head: bytes,
    namespace: dict[str, Any],
) -> Callable[[Any, Any, int], bytes]:
    """The function ``encode(enc, info, depth) -> digest`` of a configuration class.

    Args:
        class_name: the class's name, for error paths (init tasks).
        fields: the hashed fields, in the spec's order.
        instance: an InstanceConfig (its digest goes through ``enc.instance_digest``).
        cacheable: a sealed configuration keeps its digest (not for a partial identifier's plan).
        heads: the preimage's head for each count of fields entered (0 to ``len(fields)``).
        output_head: the head of a task output, before the producing task's digest.
        namespace: the tables and helpers of :mod:`xpm.ids` the code uses.
    """
    scope = dict(namespace)
    scope.update(CLASS_NAME=class_name, HEADS=heads, OUTPUT_HEAD=output_head, PATHS=tuple(f.path for f in fields))
    for i, spec in enumerate(fields):
        scope[f"K{i}"] = spec.name
        scope[f"N{i}"] = spec.encoded_name
        scope[f"P{i}"] = spec.path
        scope[f"A{i}"] = spec.compare
    source = encoder_source(fields, instance, cacheable)
    exec(compile(source, f"<xpm identifier encoder of {class_name}>", "exec"), scope)
    return scope["encode"]  # type: ignore[no-any-return]


def compile_sequence_encoder(namespace: dict[str, Any]) -> Callable[[Any], bytes | None]:
    """The function ``scalar_sequence(v)``: the encoding of a list or tuple of str, int and
    float, or None if it holds anything else (the code the encoders inline)."""
    source = "def scalar_sequence(v):\n    t = type(v)\n" + _indent(_SEQUENCE, 4)
    source += "    return None if parts is None else join(parts)\n"
    scope = dict(namespace)
    exec(compile(source, "<xpm identifier encoder of sequences>", "exec"), scope)
    return scope["scalar_sequence"]  # type: ignore[no-any-return]
