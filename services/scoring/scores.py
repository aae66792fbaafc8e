"""Scores (SPEC 3.1): why an executor earns nothing, from its latest listing and its latest benchmark.

Pure and exact. Model, GPU count and listed price come from the listing; VRAM, matmul, the download EMA and
sysbox from the benchmark. `not_benchmarked` stands alone, then `unknown_gpu_model` stands alone; the other
reasons stack in the order of `STACKED`. Score is 1 with no reason, else 0.

Benchmarks dominate real logs, so the per-benchmark work is integer arithmetic: what the listing alone
decides (`ListingCheck`: model known, VRAM bounds as integers, price limit) is computed once per listing and
parameters, and the download EMA is kept exactly as a scaled integer (see `Benchmark`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple, Protocol

from services.params import Params
from services.rentals import Listing

NOT_BENCHMARKED = "not_benchmarked"
UNKNOWN_GPU_MODEL = "unknown_gpu_model"
MATMUL_FAILED = "matmul_failed"
VRAM_MISMATCH = "vram_mismatch"
GPU_COUNT_MISMATCH = "gpu_count_mismatch"
NETWORK_TOO_SLOW = "network_too_slow"
PRICE_ABOVE_LIMIT = "price_above_limit"
SYSBOX_MISSING = "sysbox_missing"

STACKED = (
    MATMUL_FAILED, VRAM_MISMATCH, GPU_COUNT_MISMATCH, NETWORK_TOO_SLOW, PRICE_ABOVE_LIMIT, SYSBOX_MISSING,
)
ALL_REASONS = (NOT_BENCHMARKED, UNKNOWN_GPU_MODEL, *STACKED)


def decimal_scaled(value: str) -> tuple[int, int]:
    """A decimal string (as `DecimalStr` admits: sign, digits, point, exponent) exactly as
    (n, places) with value = n / 10**places and places ≥ 0."""
    if value.isascii():  # the common spellings first: "9119" and "9119.35"
        if value.isdigit():
            return int(value), 0
        whole, point, fraction = value.partition(".")
        if point and whole.isdigit() and fraction.isdigit():
            return int(whole + fraction), len(fraction)
    text = value.lower()
    negative = text.startswith("-")
    mantissa, _, exponent = text.lstrip("+-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    n = int(whole + fraction or "0")
    places = len(fraction) - (int(exponent) if exponent else 0)
    if places < 0:
        n, places = n * 10**-places, 0
    return (-n if negative else n), places


class Benchmark(NamedTuple):
    """What scoring keeps of an executor's benchmarks: the latest one's facts and the download EMA over all.

    The EMA is exactly download_num / (2**download_twos × 10**download_places). Each step halves, so the
    exact value needs one more bit per benchmark: keeping it as a scaled integer (no gcd) makes a step cost
    linear time in that size instead of the quadratic gcd of a reduced fraction. (A named tuple, not a frozen
    dataclass: one is built per benchmark, nearly every event of a real log, and a tuple builds faster.)
    """

    gpu_count: int
    vram_mb_per_gpu: int
    matmul_passed: bool
    sysbox: bool
    download_num: int
    download_twos: int
    download_places: int

    @property
    def download_scale(self) -> int:
        """The EMA's denominator, 2**twos × 10**places."""
        scale: int = 10**self.download_places
        return scale << self.download_twos

    @property
    def download_ema(self) -> Fraction:
        return Fraction(self.download_num, self.download_scale)

    def download_below(self, num: int, den: int) -> bool:
        """ema < num / den (den > 0)."""
        return self.download_num * den < num * self.download_scale


class BenchmarkFacts(Protocol):
    """What scoring reads of a `benchmark.completed` (the event's data, or the same fields validated apart)."""

    @property
    def gpu_count(self) -> int: ...

    @property
    def vram_mb_per_gpu(self) -> int: ...

    @property
    def matmul_passed(self) -> bool: ...

    @property
    def sysbox(self) -> bool: ...

    @property
    def download_mbps(self) -> str: ...


def next_benchmark(previous: Benchmark | None, d: BenchmarkFacts) -> Benchmark:
    """The benchmark state after `d`: ema ← ema + (x − ema) / 2 = (ema + x) / 2, exact, the first value as
    is."""
    x, x_places = decimal_scaled(d.download_mbps)
    if previous is None:
        num, twos, places = x, 0, x_places
    else:
        num, twos, places = previous.download_num, previous.download_twos, previous.download_places
        if x_places > places:
            num, places = num * 10 ** (x_places - places), x_places
        elif places > x_places:
            x *= 10 ** (places - x_places)
        num, twos = num + (x << twos), twos + 1  # (num / 2^t + x) / 2 = (num + x·2^t) / 2^(t+1)
        if num == 0:
            twos = 0
        else:  # drop the powers of two the numerator shares with the scale
            shift = min((num & -num).bit_length() - 1, twos)
            num, twos = num >> shift, twos - shift
    return Benchmark(d.gpu_count, d.vram_mb_per_gpu, d.matmul_passed, d.sysbox, num, twos, places)


@dataclass(frozen=True, slots=True)
class ListingCheck:
    """What one listing decides under one set of parameters (computed once, used at every benchmark).

    VRAM is an integer, so vram < lo × nominal ⟺ vram < ⌈lo × nominal⌉ and vram > hi × nominal ⟺
    vram > ⌊hi × nominal⌋: the bounds are kept as integers.
    """

    known_model: bool
    gpu_count: int
    vram_min: int
    vram_max: int
    price_above_limit: bool
    min_download_num: int
    min_download_den: int

    @staticmethod
    def of(listing: Listing, params: Params) -> ListingCheck:
        md_num, md_den = params.min_download_mbps.as_integer_ratio()
        model = params.models.get(listing.gpu_model)
        if model is None:
            return ListingCheck(False, listing.gpu_count, 0, 0, False, md_num, md_den)
        lo, hi = params.vram_window
        low, high = lo * model.vram_mib, hi * model.vram_mib
        above = model.price > 0 and listing.price > params.max_price_rate * model.price
        return ListingCheck(True, listing.gpu_count, -((-low.numerator) // low.denominator),
                            high.numerator // high.denominator, above, md_num, md_den)


def reasons(check: ListingCheck, bench: Benchmark | None) -> tuple[str, ...]:
    """The reason codes of an executor, in the spec's order; empty means score 1."""
    if bench is None:
        return (NOT_BENCHMARKED,)
    if not check.known_model:
        return (UNKNOWN_GPU_MODEL,)
    out: list[str] = []
    if not bench.matmul_passed:
        out.append(MATMUL_FAILED)
    if bench.vram_mb_per_gpu < check.vram_min or bench.vram_mb_per_gpu > check.vram_max:
        out.append(VRAM_MISMATCH)
    if bench.gpu_count != check.gpu_count:
        out.append(GPU_COUNT_MISMATCH)
    if bench.download_below(check.min_download_num, check.min_download_den):
        out.append(NETWORK_TOO_SLOW)
    if check.price_above_limit:
        out.append(PRICE_ABOVE_LIMIT)
    if not bench.sysbox:
        out.append(SYSBOX_MISSING)
    return tuple(out)


def reasons_of(listing: Listing, bench: Benchmark | None, params: Params) -> tuple[str, ...]:
    """`reasons` from the listing and parameters directly (one-off use)."""
    return reasons(ListingCheck.of(listing, params), bench)
