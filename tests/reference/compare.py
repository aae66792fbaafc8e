"""What `sn51 replay` derives from a log, set against what the independent oracle computes from the same log:
every refusal, epoch split, score change, portion update, daily statement and payout, to the rao.

`differences(lines)` runs both in process and names each disagreement; `python -m tests.reference.compare LOG`
prints them. The two spell two things differently, which is not a difference: the oracle calls every
schema error `malformed` (the product: `malformed`, `bad_schema`, `unknown_type`), and shares and incentives are
exact fractions there and decimal strings here (rounded at 18 places where they do not terminate), so they are
compared to within 10^-18. `billing_days` of a payout are the days that contributed to it here and the days a
run newly included there: payouts are compared as each coldkey's sequence of (planned or deferred, amount).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from services.pipeline import Pipeline, Refusal
from tests.reference.oracle import run, split_lines

SCHEMA_CODES = {"malformed", "bad_schema", "unknown_type"}
STATEMENT_FIELDS = ("coldkey", "emission_rao", "rental_fee_usd_micros", "forfeited_rao", "forfeited_usd_micros",
                    "adjustment_rao", "adjustment_usd_micros", "payable_rao", "carried_rao")
TINY = Fraction(1, 10**18)


def replay(lines: Sequence[bytes]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """(refusal code by line number, derived events as plain dicts), as `sn51 replay` writes them."""
    refused: dict[str, str] = {}
    derived: list[dict[str, Any]] = []
    for item in Pipeline().run(lines):
        if isinstance(item, Refusal):
            refused[str(item.line)] = item.code
        else:
            derived.append(item.to_dict())
    return refused, derived


def differences(lines: Sequence[bytes]) -> list[str]:
    refused, derived = replay(lines)
    ref = run(list(lines))
    out: list[str] = []
    for line in sorted(set(refused) | set(ref["refused"]), key=int):
        ours, theirs = refused.get(line), ref["refused"].get(line)
        if ours != theirs and not (ours in SCHEMA_CODES and theirs == "malformed"):
            out.append(f"line {line}: refused ours={ours} oracle={theirs}")
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in derived:
        by_type[e["type"]].append(e["data"])
    out += _epochs(by_type["epoch.scored"], ref["epochs"])
    ours_scores = [(d["executor_id"], d["score"], d["reasons"]) for d in by_type["score.updated"]]
    if ours_scores != [(x[1], x[2], x[3]) for x in ref["scores"]]:
        out.append(f"score.updated: ours={ours_scores} oracle={ref['scores']}")
    ours_portions = [{m: Fraction(v) for m, v in d["portions"].items()} for d in by_type["gpu_portion.updated"]]
    if ours_portions != [{m: Fraction(v) for m, v in x[1].items()} for x in ref["portions"]]:
        out.append("gpu_portion.updated differ")
    out += _days(by_type["day.closed"], ref["days"])
    out += _payouts(derived, ref["payouts"])
    return out


def _epochs(ours: list[dict[str, Any]], ref: dict[str, Any]) -> list[str]:
    out: list[str] = []
    by_epoch = {str(d["epoch"]): d for d in ours}
    for epoch in sorted(set(by_epoch) | set(ref), key=int):
        a, b = by_epoch.get(epoch), ref.get(epoch)
        if a is None or b is None:
            out.append(f"epoch {epoch}: scored ours={a is not None} oracle={b is not None}")
            continue
        if a["burn_rao"] != b["burn_rao"]:
            out.append(f"epoch {epoch}: burn_rao ours={a['burn_rao']} oracle={b['burn_rao']}")
        for pool in ("rented", "unrented", "burn"):
            if abs(Fraction(a["shares"][pool]) - Fraction(b["shares"][pool])) > TINY:
                out.append(f"epoch {epoch}: share {pool} ours={a['shares'][pool]} oracle={b['shares'][pool]}")
        nodes = {n["executor_id"]: n for n in a["nodes"]}
        if list(nodes) != sorted(nodes):
            out.append(f"epoch {epoch}: nodes not sorted by executor_id")
        for ex in sorted(set(nodes) | set(b["nodes"])):
            x, y = nodes.get(ex), b["nodes"].get(ex)
            if x is None or y is None:
                out.append(f"epoch {epoch} {ex}: ours={x} oracle={y}")
                continue
            out += [f"epoch {epoch} {ex}: {f} ours={x[f]} oracle={y[f]}"
                    for f in ("hotkey", "pool", "alpha_rao", "reason") if x[f] != y[f]]
            if abs(Fraction(x["incentive"]) - Fraction(y["incentive"])) > TINY:
                out.append(f"epoch {epoch} {ex}: incentive ours={x['incentive']} oracle={y['incentive']}")
    return out


def _days(ours: list[dict[str, Any]], ref: dict[str, Any]) -> list[str]:
    out: list[str] = []
    by_day = {d["billing_day"]: d for d in ours}
    for day in sorted(set(by_day) | set(ref)):
        a, b = by_day.get(day), ref.get(day)
        if a is None or b is None:
            out.append(f"{day}: closed ours={a is not None} oracle={b is not None}")
            continue
        out += [f"{day}: price {p} ours={a['prices'][p]} oracle={b['prices'][p]}"
                for p in ("tao_usd", "alpha_tao") if Fraction(a["prices"][p]) != Fraction(b["prices"][p])]
        providers = {p["hotkey"]: p for p in a["providers"]}
        for hk in sorted(set(providers) | set(b["providers"])):
            x, y = providers.get(hk), b["providers"].get(hk)
            if x is None or y is None:
                out.append(f"{day} {hk}: listed ours={x is not None} oracle={y is not None}")
                continue
            out += [f"{day} {hk}: {f} ours={x[f]} oracle={y[f]}" for f in STATEMENT_FIELDS if x[f] != y[f]]
    return out


def _payouts(derived: list[dict[str, Any]], ref: dict[str, Any]) -> list[str]:
    ours: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for e in derived:
        if e["type"] in ("payout.planned", "payout.deferred"):
            ours[e["data"]["coldkey"]].append((e["type"].removeprefix("payout."), e["data"]["amount_rao"]))
    theirs: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for day in sorted(ref):
        for kind, field in (("planned", "paid"), ("deferred", "deferred")):
            for coldkey, amount in ref[day][field].items():
                theirs[coldkey].append((kind, amount))
    return [f"payouts of {c}: ours={ours.get(c)} oracle={theirs.get(c)}"
            for c in sorted(set(ours) | set(theirs)) if ours.get(c) != theirs.get(c)]


if __name__ == "__main__":
    found = differences(split_lines(Path(sys.argv[1]).read_bytes()))
    print("\n".join(found) if found else "agree")
    sys.exit(1 if found else 0)
