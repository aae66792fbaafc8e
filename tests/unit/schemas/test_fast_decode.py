"""The fast decode path takes nothing the slow path refuses and builds the same events.

`schemas.fast.decode_fast` (one Rust validation, canonical times parsed in Rust) must, for every message,
either decline (None: the slow path decides) or give exactly the `Event` the slow path gives, with the same
bytes when re-encoded. Checked on every line of a faulty simulated log, on mutations of its values (types,
extra and missing fields, versions) and on generated spellings of times.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import Refused, decode, decode_slow
from schemas.envelope import canonical_json
from schemas.fast import decode_fast
from sn51.sim import lines
from sn51.sim.faults import Faults


def outcome(decoder: Any, raw: str) -> Any:
    try:
        return decoder(raw)
    except Refused as refused:
        return refused.code


def agree(raw: str) -> bool:
    """`decode` (the fast path when it takes the message, then the stateless rules) gives what the slow path
    alone gives: the same refusal code, or an equal event with the same bytes. True when the fast path took
    the message."""
    fast, slow = outcome(decode, raw), outcome(decode_slow, raw)
    if isinstance(slow, str):
        assert fast == slow, f"refused by the slow path ({slow}), not by decode ({fast}): {raw[:200]}"
    else:
        assert fast == slow
        assert fast.to_bytes() == slow.to_bytes()
        assert fast.time.utcoffset() == slow.time.utcoffset()
    return decode_fast(raw) is not None


LOG = [line.text for line in lines(7, 6, 1.5, faults=Faults(duplicates=0.02, out_of_order=0.05, malformed=0.02))]


def test_every_line_of_a_faulty_log() -> None:
    taken = sum(agree(text) for text in LOG)
    assert taken > 0.9 * len(LOG)  # the fast path is the path: clean lines all go through it


def one_of_each_type() -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for text in LOG:
        try:
            env = json.loads(text)
        except ValueError:
            continue
        seen.setdefault(env.get("type"), env)
    return list(seen.values())


ODD_VALUES: list[Any] = [None, True, False, 0, 1, -1, 1.0, 2.5, 2**70, "", "1", "2.5", "x", [], {}, [1], {"a": 1}]


@pytest.mark.parametrize("env", one_of_each_type(), ids=lambda e: e.get("type"))
def test_every_field_with_odd_values(env: dict[str, Any]) -> None:
    for field in [*env, *(f"data.{k}" for k in env["data"])]:
        for value in [*ODD_VALUES, "__missing__"]:
            mutated = json.loads(json.dumps(env))
            target, name = (mutated["data"], field[5:]) if field.startswith("data.") else (mutated, field)
            if value == "__missing__":
                target.pop(name)
            else:
                target[name] = value
            agree(canonical_json(mutated))
    extra = json.loads(json.dumps(env))
    extra["data"]["surprise"] = 1
    assert not agree(canonical_json(extra))
    extra = json.loads(json.dumps(env))
    extra["surprise"] = 1  # beside the envelope's fields: not a keyword `Event` takes
    assert not agree(canonical_json(extra))
    text = canonical_json(env)
    assert agree(json.dumps(env, indent=2))  # white space and key order are not content
    agree(text[:-1] + ',"id":"another"}')  # a repeated key: the last one, on both paths
    agree(text[:-1] + ',"data":{}}')


two = st.integers(0, 99).map(lambda n: f"{n:02d}")
times = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone: f"{y:04d}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{zone}",
    st.integers(0, 9999), two, two, st.sampled_from(["T", "t", " "]), two, two, two,
    st.one_of(st.just(""), st.integers(0, 10**10).map(lambda n: "." + str(n)), st.just(".")),
    st.sampled_from(["Z", "z", "", "+00:00", "-05:30", "+14:00", "+2:00", "Zz"]),
)


@settings(max_examples=500)
@given(times)
def test_generated_times(time: str) -> None:
    env = one_of_each_type()
    for base in env:
        if base.get("type") == "rental.started":
            mutated = json.loads(json.dumps(base))
            mutated["time"] = time
            mutated["data"]["started_at"] = time
            agree(canonical_json(mutated))
            return
    pytest.fail("no rental.started in the log")
