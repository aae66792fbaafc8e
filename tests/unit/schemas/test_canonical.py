"""The fast writers of `schemas.envelope` give exactly what the standard library gives.

`canonical_json` (orjson, with the standard library for what orjson refuses) must write the bytes of
`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` for every value an event can hold:
ledger hashes and replay output are compared byte for byte. `derived_id` must be `str(uuid.uuid5(...))`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.envelope import ID_NAMESPACE, canonical_bytes, canonical_json, derived_id


def reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Every kind of value an event holds: strings with any code point (control characters, quotes, backslashes,
# U+2028, astral planes), integers well beyond 64 bits (wei), booleans, null, nested lists and objects.
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
scalars = st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
                      max_leaves=30)


@settings(max_examples=400)
@given(values)
def test_canonical_json_is_the_standard_librarys(value: Any) -> None:
    assert canonical_json(value) == reference(value)
    assert canonical_bytes(value) == reference(value).encode()


def test_values_orjson_refuses_are_written_by_the_standard_library() -> None:
    big = {"amount_wei": 2**64 + 1, "b": [-(2**63) - 1]}
    assert canonical_json(big) == reference(big)
    lone = {"s": "\ud800"}  # not valid Unicode: only a str can hold it
    assert canonical_json(lone) == reference(lone)


def test_keys_sort_by_code_point() -> None:
    value = {"é": 1, "e": 2, "z": 3, "É": 4, "\U0001f600": 5, "\uffff": 6}
    assert canonical_json(value) == reference(value)


@settings(max_examples=300)
@given(st.text(max_size=12), st.lists(st.text(max_size=40), max_size=4))
def test_derived_id_is_uuid5(type_: str, causes: list[str]) -> None:
    name = "|".join((type_, *causes))
    if any("\ud800" <= c <= "\udfff" for c in name):
        return  # not encodable: uuid5 refuses it too
    assert derived_id(type_, *causes) == str(uuid.uuid5(ID_NAMESPACE, name))


@settings(max_examples=300)
@given(st.binary(max_size=40), st.sampled_from([b"", b"\n", b" \n", b"\r\n", b"}\n", b"}"]),
       st.sampled_from([b"", b"{", b" {", b"\t"]))
def test_content_hash_is_blake2b_of_the_stripped_bytes(body: bytes, end: bytes, start: bytes) -> None:
    import hashlib

    from schemas.codec import content_hash

    raw = start + body + end
    assert content_hash(raw) == hashlib.blake2b(raw.strip(), digest_size=16).hexdigest()
