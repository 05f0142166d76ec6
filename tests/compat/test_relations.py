"""xpm finds the identifier relations experimaestro 2.7.0 finds, on a module written for it.

``tests/compat/corpus.py`` is imported unchanged through the drop-in import; which of
its configurations share an identifier must be what experimaestro 2.7.0 itself
recorded (``expected_relations.json``, made by ``scripts/compat/relations.py``). The
identifier values differ (each library has its own encoding); the relations carry over.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = json.loads((Path(__file__).parent / "expected_relations.json").read_text(encoding="utf-8"))

_spec = importlib.util.spec_from_file_location("xpm_compat_relations", ROOT / "scripts" / "compat" / "relations.py")
assert _spec is not None and _spec.loader is not None
relations = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(relations)

#: Cases experimaestro 2.7.0 refuses and xpm accepts, each documented in docs/compatibility.md:
#: a tuple given to a list parameter is stored as a list (so it names the same job as the list).
ACCEPTED_HERE = {"containers_tuple": "containers_list"}


def test_the_corpus_gives_experimaestros_relations_through_the_drop_in():
    ids = relations.identifiers(sys.executable, "import xpm.compat; xpm.compat.install()")
    assert not [name for name, ident in ids.items() if ident.startswith("error")]
    for name, same_as in ACCEPTED_HERE.items():
        assert name in EXPECTED["errors"]
        assert ids[name] == ids[same_as]
        del ids[name]
    expected = [group for group in EXPECTED["classes"] if not set(group) & set(EXPECTED["errors"])]
    assert relations.classes(ids) == expected
    # the corpus exercises both kinds of relation, on most rules
    assert sum(len(group) > 1 for group in expected) >= 8 and len(expected) >= 25
