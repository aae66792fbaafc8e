"""The epoch split (SPEC 3.3): the emission of one epoch over the rented pool, the unrented pool and burn.

Pure and exact (`Fraction`); the only rounding is alpha_rao = floor(incentive × E) per executor, the rest of
E going to burn. Every incentive depends only on (pool, model, gpu_count) once the pools are known, so it
is computed once per such key (an `Award` shared by the nodes of that key): the split of 10,000 executors
costs a few hundred Fraction operations, a pass to group them and a sort by executor_id.

- Rented pool, R = 1 − total_burn_emission. m = portion[model] × gpu_count / (rented GPUs of that model
  taking part); incentive = R × m / N, N = Σ m ("rented") or Σ portion over the models of the table
  ("table"); incentive 0 when N ≤ 0.
- Unrented pool: per bucket (model, gpu_count) of eligible executors (model price > 0, listed price ≤
  max_unrented_price_rate × price, gpu_count a cap key with cap > 0), count = Σ gpu_count,
  cap_mult = min(count, cap) / count; C = Σ cap_mult × count × price; raw = unrented_pay_ratio × C × tempo ×
  seconds_per_block / 3600 / (E / 10⁹ × tao_usd × alpha_tao); U = min(raw, total_burn_emission) when C > 0
  and E > 0, else 0; incentive = U × gpu_count × price × cap_mult / C.
- Shares: rented = R' (what the rented pool pays), unrented = U, burn = 1 − R' − U.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from services.params import GpuModel, Params
from services.rentals import Listing, Rental

Pool = Literal["rented", "unrented"]
RENTED: Pool = "rented"
UNRENTED: Pool = "unrented"

NO_RENTED_PORTION = "no_rented_portion"
MODEL_NOT_PRICED = "model_not_priced"
PRICE_ABOVE_UNRENTED_LIMIT = "price_above_unrented_limit"
GPU_COUNT_NOT_PRICED = "gpu_count_not_priced"
NO_UNRENTED_SHARE = "no_unrented_share"

_ZERO = Fraction(0)
_RAO_PER_ALPHA = 10**9
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, slots=True, eq=False)
class Award:
    """What every executor of one (pool, model, gpu_count) earns; `reason` only when incentive is 0."""

    pool: Pool
    incentive: Fraction
    alpha_rao: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class Node:
    listing: Listing
    award: Award


@dataclass(frozen=True, slots=True)
class Split:
    rented: Fraction  # R', what the rented pool paid
    unrented: Fraction  # U
    burn: Fraction  # 1 - R' - U
    nodes: list[Node]  # every executor taking part, sorted by executor_id
    burn_rao: int  # E - sum of alpha_rao


def rented_floors(params: Params) -> dict[str, Fraction]:
    """Per model of the table, the least rental price that makes an executor rented:
    min_rented_price_rate × the model's table price."""
    return {name: params.min_rented_price_rate * model.price for name, model in params.models.items()}


def is_rented(listing: Listing, active: Iterable[Rental], floors: Mapping[str, Fraction]) -> bool:
    """Rented: an active rental priced at ≥ the floor of the listing's model (`rented_floors`)."""
    floor = floors.get(listing.gpu_model, _ZERO)
    return any(r.price >= floor for r in active)


def _award(pool: Pool, incentive: Fraction, emission_rao: int, zero_reason: str) -> Award:
    alpha = incentive.numerator * emission_rao // incentive.denominator
    return Award(pool, incentive, alpha, None if incentive > 0 else zero_reason)


def split(
    participants: Iterable[tuple[Listing, bool]],
    params: Params,
    portions: Mapping[str, Fraction],
    emission_rao: int,
    tao_usd: Fraction,
    alpha_tao: Fraction,
) -> Split:
    """The split of one epoch among `participants` (listing, rented), each taking part (listed, score 1)."""
    models: dict[str, GpuModel] = params.models
    rented_gpus: dict[str, int] = {}
    buckets: dict[tuple[str, int], int] = {}
    # Each node's key: (pool, model, gpu_count), or (reason, "", 0) for an unrented node that is not eligible.
    keyed: list[tuple[Listing, tuple[str, str, int]]] = []
    unrented_limit: dict[str, Fraction | None] = {}  # None: the model is not priced
    for listing, rented in participants:
        name, count = listing.gpu_model, listing.gpu_count
        if rented:
            rented_gpus[name] = rented_gpus.get(name, 0) + count
            keyed.append((listing, (RENTED, name, count)))
            continue
        if name in unrented_limit:
            limit = unrented_limit[name]
        else:
            model = models.get(name)
            limit = None if model is None or model.price <= 0 else params.max_unrented_price_rate * model.price
            unrented_limit[name] = limit
        if limit is None:
            keyed.append((listing, (MODEL_NOT_PRICED, "", 0)))
        elif listing.price > limit:
            keyed.append((listing, (PRICE_ABOVE_UNRENTED_LIMIT, "", 0)))
        elif models[name].caps.get(count, 0) <= 0:
            keyed.append((listing, (GPU_COUNT_NOT_PRICED, "", 0)))
        else:
            buckets[(name, count)] = buckets.get((name, count), 0) + count
            keyed.append((listing, (UNRENTED, name, count)))

    awards: dict[tuple[str, str, int], Award] = {}

    # Rented pool.
    share_r = 1 - params.total_burn_emission
    if params.rented_normalization == "table":
        norm = sum((portions.get(m, _ZERO) for m in models), _ZERO)
    else:
        norm = sum((portions.get(m, _ZERO) for m in rented_gpus), _ZERO)
    counts_by_key: dict[tuple[str, str, int], int] = {}
    for _, key in keyed:
        counts_by_key[key] = counts_by_key.get(key, 0) + 1
    for key in counts_by_key:
        pool, name, count = key
        if pool == RENTED:
            inc = _ZERO
            if norm > 0:
                inc = share_r * portions.get(name, _ZERO) * count / rented_gpus[name] / norm
            awards[key] = _award(RENTED, inc, emission_rao, NO_RENTED_PORTION)

    # Unrented pool.
    capped_cost = _ZERO  # C, USD/h
    cap_mult: dict[tuple[str, int], Fraction] = {}
    for (name, count), gpus in buckets.items():
        model = models[name]
        capped = min(gpus, model.caps[count])
        cap_mult[(name, count)] = Fraction(capped, gpus)
        capped_cost += capped * model.price
    share_u = _ZERO
    if capped_cost > 0 and emission_rao > 0:
        raw = (params.unrented_pay_ratio * capped_cost * params.tempo * params.seconds_per_block
               / _SECONDS_PER_HOUR / (Fraction(emission_rao, _RAO_PER_ALPHA) * tao_usd * alpha_tao))
        share_u = min(raw, params.total_burn_emission)
    for key in counts_by_key:
        pool, name, count = key
        if pool == UNRENTED:
            inc = _ZERO
            if share_u > 0:
                inc = share_u * count * models[name].price * cap_mult[(name, count)] / capped_cost
            awards[key] = _award(UNRENTED, inc, emission_rao, NO_UNRENTED_SHARE)
        elif pool != RENTED:
            awards[key] = Award(UNRENTED, _ZERO, 0, pool)

    paid_r = _ZERO
    paid_rao = 0
    for key, n in counts_by_key.items():
        award = awards[key]
        if award.pool == RENTED:
            paid_r += award.incentive * n
        paid_rao += award.alpha_rao * n
    keyed.sort(key=lambda t: t[0].executor_id)
    nodes = [Node(listing, awards[key]) for listing, key in keyed]
    return Split(paid_r, share_u, 1 - paid_r - share_u, nodes, emission_rao - paid_rao)
