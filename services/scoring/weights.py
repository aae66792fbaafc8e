"""Weights for the validator, from an `epoch.scored`: pure, exact until the one rounding to u16.

Per hotkey, the sum of its nodes' incentives; the burn share goes to the configured burner hotkey (added to
whatever it earns as a node). The vector is scaled so that the largest share gets 65535; every other weight
is share × 65535 / max rounded half to even, and a positive share never rounds to 0 (it gets at least 1).
Hotkeys with a zero share are kept at weight 0. Sorted by hotkey: `[(hotkey, weight), ...]`, which
`to_uids` maps onto the metagraph's uids for `set_weights(uids, weights)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from schemas.events import EpochScored

U16_MAX = 65535


def hotkey_shares(scored: EpochScored, burner_hotkey: str) -> dict[str, Fraction]:
    """Exact share of the epoch's emission per hotkey, the burn share on `burner_hotkey`."""
    shares: dict[str, Fraction] = {}
    for node in scored.nodes:
        shares[node.hotkey] = shares.get(node.hotkey, Fraction(0)) + Fraction(node.incentive)
    shares[burner_hotkey] = shares.get(burner_hotkey, Fraction(0)) + Fraction(scored.shares.burn)
    return shares


def u16_weights(shares: Mapping[str, Fraction]) -> list[tuple[str, int]]:
    """Shares scaled to u16 (max 65535, positive never 0), sorted by hotkey."""
    top = max(shares.values(), default=Fraction(0))
    out: list[tuple[str, int]] = []
    for hotkey in sorted(shares):
        share = shares[hotkey]
        if share <= 0 or top <= 0:
            out.append((hotkey, 0))
            continue
        out.append((hotkey, max(1, min(U16_MAX, round(share * U16_MAX / top)))))
    return out


def weights(scored: EpochScored, burner_hotkey: str) -> list[tuple[str, int]]:
    """The per-hotkey u16 weight vector of an epoch, sorted by hotkey."""
    return u16_weights(hotkey_shares(scored, burner_hotkey))


@dataclass(frozen=True, slots=True)
class UidWeights:
    uids: list[int]  # ascending
    weights: list[int]
    unregistered: list[str]  # hotkeys with a non-zero weight and no uid: their share is not set


def to_uids(vector: list[tuple[str, int]], uid_of: Mapping[str, int]) -> UidWeights:
    """The vector on uids, as `set_weights(uids=..., weights=...)` takes it."""
    by_uid: dict[int, int] = {}
    missing: list[str] = []
    for hotkey, weight in vector:
        uid = uid_of.get(hotkey)
        if uid is None:
            if weight > 0:
                missing.append(hotkey)
            continue
        by_uid[uid] = by_uid.get(uid, 0) + weight
    uids = sorted(by_uid)
    return UidWeights(uids, [min(U16_MAX, by_uid[u]) for u in uids], missing)
