"""The parameters of SPEC section 3, their defaults, and how a `params.updated` changes them.

Pure and exact: every decimal is a `Fraction`. Shared by every core, so that each reads the same parameters
from the same place in the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction as F

from schemas.codec import Refused
from schemas.events import ParamsUpdated
from schemas.values import frac


@dataclass(frozen=True, slots=True)
class GpuModel:
    price: F
    caps: dict[int, int]
    vram_mib: int


DEFAULT_MODELS: dict[str, GpuModel] = {
    "NVIDIA H200": GpuModel(F("2.85"), {1: 10, 8: 64}, 143771),
    "NVIDIA H100 80GB HBM3": GpuModel(F("1.494"), {1: 10, 8: 64}, 81559),
    "NVIDIA B200": GpuModel(F("4.25"), {1: 10, 8: 64}, 183359),
    "NVIDIA B300": GpuModel(F("5.10"), {1: 4, 8: 32}, 275040),
    "NVIDIA A100-SXM4-80GB": GpuModel(F("0.6923"), {1: 10, 8: 40}, 81920),
    "NVIDIA GeForce RTX 5090": GpuModel(F("0.65"), {1: 10, 8: 64}, 32607),
    "NVIDIA GeForce RTX 4090": GpuModel(F("0.30"), {1: 10, 8: 64}, 24564),
}

DEFAULT_PORTIONS: dict[str, F] = {
    "NVIDIA H200": F("0.56"),
    "NVIDIA H100 80GB HBM3": F("0.10"),
    "NVIDIA B200": F("0.05"),
    "NVIDIA B300": F("0.05"),
    "NVIDIA A100-SXM4-80GB": F("0.05"),
    "NVIDIA GeForce RTX 5090": F("0.025"),
    "NVIDIA GeForce RTX 4090": F("0.05"),
}


@dataclass(frozen=True, slots=True)
class Params:
    total_burn_emission: F = F("0.91")
    rental_fees_rate: F = F("0.9")
    tempo: int = 360
    seconds_per_block: int = 12
    gpu_portion_alpha: F = F("0.01")
    max_price_rate: F = F(3)
    min_download_mbps: F = F(100)
    vram_window: tuple[F, F] = (F("0.90"), F("1.05"))
    rented_normalization: str = "rented"
    min_rented_price_rate: F = F("0.5")
    unrented_pay_ratio: F = F(1)
    max_unrented_price_rate: F = F("1.1")
    day_close_grace_seconds: int = 7200
    payout_delay_days: int = 2
    payout_hour_utc: int = 17
    min_payout_rao: int = 10_000_000
    max_batch: int = 64
    models: dict[str, GpuModel] = field(default_factory=lambda: dict(DEFAULT_MODELS))


_DECIMALS = (
    "total_burn_emission", "rental_fees_rate", "gpu_portion_alpha", "max_price_rate", "min_download_mbps",
    "min_rented_price_rate", "unrented_pay_ratio", "max_unrented_price_rate",
)
_INTS = (
    "tempo", "seconds_per_block", "day_close_grace_seconds", "payout_delay_days", "payout_hour_utc",
    "min_payout_rao", "max_batch",
)


def apply_update(params: Params, update: ParamsUpdated) -> tuple[Params, dict[str, F]]:
    """The parameters after `update`, and the portions it sets for new models.

    Refuses the whole update (`bad_params`) when a new model lacks price, caps or vram_mib, or when a
    `portion` is given for a model that already exists. Nothing changes on a refusal.
    """
    changes: dict[str, object] = {}
    for name in _DECIMALS:
        value = getattr(update, name)
        if value is not None:
            changes[name] = frac(value)
    for name in _INTS:
        value = getattr(update, name)
        if value is not None:
            changes[name] = value
    if update.vram_window is not None:
        changes["vram_window"] = (frac(update.vram_window[0]), frac(update.vram_window[1]))
    if update.rented_normalization is not None:
        changes["rented_normalization"] = update.rented_normalization
    portions: dict[str, F] = {}
    if update.models:
        models = dict(params.models)
        for name, spec in update.models.items():
            old = models.get(name)
            caps = {int(k): v for k, v in spec.caps.items()} if spec.caps is not None else None
            if old is None:
                if spec.price is None or caps is None or spec.vram_mib is None:
                    raise Refused("bad_params", f"new model {name!r} needs price, caps and vram_mib")
                models[name] = GpuModel(frac(spec.price), caps, spec.vram_mib)
                if spec.portion is not None:
                    portions[name] = frac(spec.portion)
            else:
                if spec.portion is not None:
                    raise Refused("bad_params", f"portion given for existing model {name!r}")
                models[name] = GpuModel(
                    frac(spec.price) if spec.price is not None else old.price,
                    caps if caps is not None else old.caps,
                    spec.vram_mib if spec.vram_mib is not None else old.vram_mib,
                )
        changes["models"] = models
    return replace(params, **changes), portions  # type: ignore[arg-type]
