"""One pydantic model per event type of SPEC section 2: the `data` of the envelope.

Every model is strict: unknown fields are refused, integers must be JSON integers (never floats or strings),
decimals must be decimal strings, times must carry a UTC offset.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_serializer

from schemas.values import DecimalStr, Int64, Text, UtcTime


def _is_none(value: object) -> bool:
    return value is None


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# --- inputs from the platform backend and the chain ---------------------------------------------------------


class ExecutorListed(Data):
    executor_id: Text
    hotkey: Text
    coldkey: Text
    gpu_model: Text
    gpu_count: Int64
    price_per_gpu_usd: DecimalStr
    sysbox: StrictBool


class ExecutorDelisted(Data):
    executor_id: Text


class RentalStarted(Data):
    rental_id: Text
    executor_id: Text
    renter_id: Text
    price_per_gpu_usd: DecimalStr
    started_at: UtcTime


class RentalStopped(Data):
    rental_id: Text
    executor_id: Text
    stopped_at: UtcTime
    reason: Text


class RentalIncident(Data):
    rental_id: Text
    executor_id: Text
    kind: Literal["ssh_refused", "container_crash", "offline"]
    at: UtcTime


class RevenueReported(Data):
    window_start: UtcTime
    window_end: UtcTime
    revenue_usd_by_model: dict[Text, DecimalStr]


class BenchmarkCompleted(Data):
    executor_id: Text
    hotkey: Text
    gpu_model: Text
    gpu_count: Int64
    vram_mb_per_gpu: Int64
    matmul_passed: StrictBool
    matmul_tflops: DecimalStr | None
    download_mbps: DecimalStr
    upload_mbps: DecimalStr
    sysbox: StrictBool
    driver_version: Text
    measured_at: UtcTime


class ModelSpec(Data):
    """One GPU model of the parameter table; in an update every field is optional (field-by-field)."""

    price: DecimalStr | None = None
    caps: dict[Text, Int64] | None = None
    vram_mib: Int64 | None = None
    portion: DecimalStr | None = None


class ParamsUpdated(Data):
    """Any subset of the parameters of SPEC section 3."""

    total_burn_emission: DecimalStr | None = None
    rental_fees_rate: DecimalStr | None = None
    tempo: Int64 | None = None
    seconds_per_block: Int64 | None = None
    gpu_portion_alpha: DecimalStr | None = None
    max_price_rate: DecimalStr | None = None
    min_download_mbps: DecimalStr | None = None
    vram_window: tuple[DecimalStr, DecimalStr] | None = None
    rented_normalization: Literal["rented", "table"] | None = None
    min_rented_price_rate: DecimalStr | None = None
    unrented_pay_ratio: DecimalStr | None = None
    max_unrented_price_rate: DecimalStr | None = None
    day_close_grace_seconds: Int64 | None = None
    payout_delay_days: Int64 | None = None
    payout_hour_utc: Int64 | None = None
    min_payout_rao: Int64 | None = None
    max_batch: Int64 | None = None
    models: dict[Text, ModelSpec] | None = None

    @model_serializer(mode="wrap")
    def _only_given(self, handler: Any) -> dict[str, Any]:
        # A params update names only what it changes: absent parameters stay absent when re-serialised.
        out: dict[str, Any] = handler(self)
        return {k: v for k, v in out.items() if k in self.model_fields_set}


class EpochClosed(Data):
    netuid: Int64
    epoch: Int64
    start_block: Int64
    end_block: Int64
    closed_at: UtcTime
    miner_emission_rao: Int64
    tao_usd: DecimalStr
    alpha_tao: DecimalStr


# --- outputs of the services ---------------------------------------------------------------------------------


class ScoreUpdated(Data):
    executor_id: StrictStr
    hotkey: StrictStr
    score: Literal[0, 1]
    reasons: list[StrictStr]


class GpuPortionUpdated(Data):
    portions: dict[StrictStr, DecimalStr]


class Shares(Data):
    rented: DecimalStr
    unrented: DecimalStr
    burn: DecimalStr


class ScoredNode(Data):
    executor_id: StrictStr
    hotkey: StrictStr
    pool: Literal["rented", "unrented"]
    incentive: DecimalStr
    alpha_rao: StrictInt
    reason: StrictStr | None


class EpochScored(Data):
    netuid: StrictInt
    epoch: StrictInt
    closed_at: UtcTime
    miner_emission_rao: StrictInt
    shares: Shares
    nodes: list[ScoredNode]
    burn_rao: StrictInt


class EarningsAccrued(Data):
    hotkey: StrictStr
    executor_id: StrictStr
    billing_day: StrictStr = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    kind: Literal["emission", "rental_fee", "adjustment"]
    # "amount_rao or amount_usd_micros": the amount in the other unit is absent, not null. (`exclude_if`, not
    # a wrapping serializer: this is the most frequent event, and that costs three times as much.)
    amount_rao: StrictInt | None = Field(default=None, exclude_if=_is_none)
    amount_usd_micros: StrictInt | None = Field(default=None, exclude_if=_is_none)
    cause_id: StrictStr


class DayPrices(Data):
    tao_usd: DecimalStr
    alpha_tao: DecimalStr


class ProviderStatement(Data):
    hotkey: StrictStr
    coldkey: StrictStr
    emission_rao: StrictInt
    rental_fee_usd_micros: StrictInt
    forfeited_rao: StrictInt
    forfeited_usd_micros: StrictInt
    adjustment_rao: StrictInt
    adjustment_usd_micros: StrictInt
    payable_rao: StrictInt
    carried_rao: StrictInt
    slashed_wei: StrictInt


class DayClosed(Data):
    billing_day: StrictStr = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    prices: DayPrices
    providers: list[ProviderStatement]
    ledger_hash: StrictStr


class Payout(Data):
    payout_id: StrictStr
    coldkey: StrictStr
    billing_days: list[StrictStr]
    amount_rao: StrictInt


class PayoutPlanned(Payout):
    hotkeys: list[StrictStr]
    batch: StrictInt


class PayoutSubmitted(Payout):
    extrinsic_hash: StrictStr


class PayoutConfirmed(Payout):
    extrinsic_hash: StrictStr
    block_hash: StrictStr
    block_number: StrictInt


class PayoutFailed(Payout):
    reason: StrictStr


class PayoutDeferred(Payout):
    reason: StrictStr


class PayoutHeld(Payout):
    reason: StrictStr


class CollateralLog(Data):
    """A confirmed log of the collateral contract; its event id is `chain_id:tx_hash:log_index`."""

    executor_id: StrictStr
    miner_evm_address: StrictStr
    amount_wei: StrictInt
    url: StrictStr | None = None
    chain_id: StrictInt
    tx_hash: StrictStr
    block_number: StrictInt
    log_index: StrictInt
    reclaim_request_id: StrictInt | None = None


class CollateralSlashRequested(Data):
    """The trustee's decision to slash, stored before the transaction is sent."""

    executor_id: StrictStr
    miner_evm_address: StrictStr | None
    amount_wei: StrictInt
    rental_id: StrictStr
    incident_id: StrictStr
    reason: StrictStr
    chain_id: StrictInt


EVENT_MODELS: dict[str, type[Data]] = {
    "executor.listed": ExecutorListed,
    "executor.delisted": ExecutorDelisted,
    "rental.started": RentalStarted,
    "rental.stopped": RentalStopped,
    "rental.incident": RentalIncident,
    "revenue.reported": RevenueReported,
    "benchmark.completed": BenchmarkCompleted,
    "params.updated": ParamsUpdated,
    "epoch.closed": EpochClosed,
    "score.updated": ScoreUpdated,
    "gpu_portion.updated": GpuPortionUpdated,
    "epoch.scored": EpochScored,
    "earnings.accrued": EarningsAccrued,
    "day.closed": DayClosed,
    "payout.planned": PayoutPlanned,
    "payout.submitted": PayoutSubmitted,
    "payout.confirmed": PayoutConfirmed,
    "payout.failed": PayoutFailed,
    "payout.deferred": PayoutDeferred,
    "payout.held": PayoutHeld,
    "collateral.deposited": CollateralLog,
    "collateral.reclaim_started": CollateralLog,
    "collateral.reclaimed": CollateralLog,
    "collateral.reclaim_denied": CollateralLog,
    "collateral.slashed": CollateralLog,
    "collateral.slash_requested": CollateralSlashRequested,
}

CURRENT_VERSION: dict[str, int] = dict.fromkeys(EVENT_MODELS, 1)
