"""Independent reference implementation ("oracle") of the money rules of SPEC.md, sections 2 and 3.

Written from /work/shared/SPEC.md and the seed documents only, for differential testing.  It does not
import or mirror the product code.  Standard library only; every share, price, rate and portion is a
``fractions.Fraction`` read exactly from its decimal string; money is integer rao / micro-dollars.

Interface:  ``run(lines: list[bytes]) -> dict``  and the CLI
``python -m tests.reference.oracle --input LOG --output OUT.json``.

Design: one object folds the input lines in file order.  For each line it (1) parses and checks the
envelope and data shape ("malformed"), (2) applies the id rules (duplicate / id_conflict), (3) bad_time,
(4) the type's own refusal rules, and only then (5) mutates state.  Where it is cheap enough, figures are
recomputed from scratch instead of being maintained incrementally.

Processing order for one accepted input line (SPEC 4: "each input event goes to every core that reads
it, and each derived event is processed by its readers right after its cause"): scoring first, then
billing, then settlement (the order of the service table in SPEC 1).  So for an epoch.closed: the
epoch split (scoring) -> its epoch.scored accrues emission (billing, right after its cause) -> billing
closes days on the epoch.closed -> those day.closed reach settlement -> settlement runs payouts on the
epoch.closed.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

# --------------------------------------------------------------------------------------------------
# Readings of ambiguous SPEC sentences.  Each entry: "SPEC quote -> the reading implemented here".
# --------------------------------------------------------------------------------------------------
AMBIGUITIES: list[str] = [
    # ---- section 2: envelopes, refusals, ids ------------------------------------------------------
    '"Unknown fields are refused" (no code is listed for schema errors) -> any line that is not UTF-8 '
    'JSON, not an object, lacks or adds an envelope field, has a wrongly typed envelope/data field, '
    'lacks or adds a data field, or has an unknown type is refused with code "malformed".',
    '"Every type has a pydantic v2 model" / the data columns of the input table -> every listed data '
    "field is required (no defaults); matmul_tflops is required but may be null.",
    '"Unknown fields are refused" / the input table -> only the nine input types of the "Inputs" table '
    "are accepted; any other type (including derived types such as epoch.scored, and collateral.*) "
    'is "malformed".',
    '"a new version of a type gets an upcaster" -> only schema_version 1 exists; any other value '
    '(or a non-integer, or a boolean) is "malformed".',
    "Type strictness -> integers must be JSON integers (not booleans, floats or numeric strings); "
    "booleans must be JSON true/false; strings must be JSON strings; key must be a string; "
    "causation_id a string or null. The envelope key is not checked against the data (e.g. executor_id).",
    '"prices, rates, shares and portions as decimal strings ("2.85")" -> a decimal string is plain '
    "decimal notation, [+-]?digits[.digits], exactly (no exponent, no spaces, no '1.', no '.5', no "
    "NaN/Infinity, no underscores). A JSON number, or any other string, where a decimal string is "
    "required is malformed (inside params.updated it is bad_params).",
    'Check order when several refusals apply -> malformed (parse/shape) first, then the id rules '
    "(duplicate = silently no effect, id_conflict), then bad_time, then the type's own codes "
    "(bad_listing / bad_revenue / bad_params / bad_netuid -> duplicate_epoch -> bad_prices / "
    "unknown_executor).",
    '"The same id with the same content again is a duplicate" -> content = the whole parsed envelope, '
    "compared as canonical JSON (sorted keys), so 1 and 1.0 and true are different content. Only "
    "accepted lines register an id: \"An event that is refused ... changes nothing\", so the id of a "
    "refused line is not 'seen'; a later line with that id is judged afresh (a repeat of a refused line "
    "is refused again with its own code).",
    '"bad_time (a time without a UTC offset ...)" -> a string of the form YYYY-MM-DDTHH:MM:SS[.f] with '
    "no offset is bad_time; any offset (Z, z, +00:00, -00:00, +02:00, ...) is accepted and converted to "
    "UTC. A string that is not such a timestamp at all (or an impossible date) is malformed, not "
    "bad_time. Applies to the envelope time and every data time field (started_at, stopped_at, at, "
    "closed_at, measured_at, window_start, window_end).",
    '"digits beyond the microsecond are truncated" -> truncated toward the past (not rounded), before '
    "the offset is applied.",
    '"refused input is reported with its line number" -> the file is split on b\'\\n\' and numbered from 1; '
    "one final empty piece after a trailing newline is not a line; any other empty or blank line is a "
    "numbered line, refused as malformed. Duplicates (same id, same content) are not refusals and are "
    "not reported.",
    # ---- section 3: parameters ------------------------------------------------------------------
    '"params.updated | any subset of the parameters of section 3" -> the parameters are exactly the '
    "named defaults of section 3 plus `models`; `confirmations` (3.6) is not one of them (the "
    "collateral service does not read params.updated), so it is an unknown parameter -> bad_params. "
    "An empty data object is accepted and changes nothing.",
    '"bad_params (an unknown parameter or model field, a number where a decimal string is required, ...)" '
    "-> every other type/shape error inside params.updated data is also bad_params (e.g. tempo as a "
    "string or float, vram_window not a list of exactly two decimal strings, caps not an object of "
    "canonical non-negative integer-string keys to integer values, vram_mib not an integer). No range "
    "checks beyond the SPEC's list (a payout_hour_utc of 30 or a total_burn_emission of 2 is accepted "
    "and used as the formulas say).",
    '"a `portion` for an existing model" -> "existing" means present in the models table (defaults or '
    "added by an earlier models update); a model only named in revenue reports is new to the table, "
    "must give price, caps and vram_mib, and may give a portion, which then replaces what reports gave.",
    '"`portion` may be given only for a new model" -> the given portion is stored exactly (not rounded '
    "to 18 places); adding a model does not emit gpu_portion.updated (only revenue.reported does).",
    '"N = Σ gpu_portion over all models of the table" -> "the table" is the current models table '
    "(defaults plus models added by params.updated), not models only named in revenue reports.",
    # ---- 3.1 scores --------------------------------------------------------------------------------
    '"From an executor\'s latest benchmark.completed and its listing" -> scores exist only for executors '
    "that have been listed; the first score is computed (and counts as a change) at the listing line "
    "(or at the first benchmark/params line after it). A benchmark of a never-listed executor is "
    "accepted, counts toward its download EMA, and is used once it is listed. Delisting does not change "
    "a score; scores keep being recomputed from the latest listing.",
    '"Emit `score.updated` when score or reasons change" -> scores are recomputed for every '
    "ever-listed executor after every accepted executor.listed, benchmark.completed and params.updated "
    "(the only inputs of 3.1); each change of score or reasons is recorded at that line, several in one "
    "line in executor_id order. A change of hotkey alone is not a change.",
    '"model, GPU count and price come from the listing" -> the benchmark\'s own gpu_model and hotkey '
    "fields are ignored (only its gpu_count is compared, for gpu_count_mismatch).",
    '"vram_mismatch: vram_mb_per_gpu outside vram_window × nominal" -> inside means '
    "lo × nominal ≤ vram ≤ hi × nominal (both bounds inclusive).",
    '"network_too_slow: the download EMA below min_download_mbps" -> strictly below; the EMA runs over '
    "every accepted (non-duplicate) benchmark of the executor in log order, including ones before its "
    "listing.",
    '"price_above_limit: listed price above max_price_rate × model price" -> strictly above.',
    '"sysbox ... from the benchmark" -> the listing\'s sysbox field is ignored for scoring.',
    # ---- 3.2 gpu_portion ---------------------------------------------------------------------------
    '"named in any report so far" -> any accepted report, including one whose total T is 0; such a '
    "report adds its models (at portion 0) but updates and emits nothing.",
    '"Emit gpu_portion.updated with all portions" -> portions are formatted as exact decimal strings '
    "with trailing zeros removed (\"0.56\", \"0\"); a model keeps its table/given value until the first "
    "update rounds it.",
    # ---- 3.3 epoch split ---------------------------------------------------------------------------
    '"An executor takes part if listed" -> listed = has an executor.listed not followed by an '
    "executor.delisted (a later executor.listed re-lists it). executor.delisted for a never-listed "
    "executor is accepted and does nothing.",
    '"it has a rental whose start was processed and whose stop was not" -> taken literally: the times '
    "inside the events (started_at, stopped_at vs closed_at) do not matter; a held stop counts as "
    "processed as soon as its start arrives.",
    '"price_per_gpu_usd ≥ min_rented_price_rate × model price" -> the model is that of the executor\'s '
    "current listing; a rental below the floor makes the executor 'not rented', so it may earn from the "
    "unrented pool.",
    '"m = gpu_portion[model] × gpu_count / (total rented GPUs of that model taking part)" -> gpu_count '
    "of the executor's current listing, not of the rental's listing.",
    '"shares {rented, unrented, burn}" -> rented is R\' (what the rented pool paid out: R × Σm / N, or '
    "0 if N ≤ 0), unrented is U, burn is 1 − R' − U, so the three sum to 1.",
    '"where incentive is 0, its reason, the first that applies: no_rented_portion, model_not_priced, '
    'price_above_unrented_limit, gpu_count_not_priced, no_unrented_share" -> no_rented_portion applies '
    "only to rented nodes (and always to a rented node with incentive 0); for unrented nodes the first "
    "failing eligibility condition in that order, else no_unrented_share. A node with incentive > 0 but "
    "alpha_rao 0 (floor) has reason null.",
    '"weighted = Σ gpu_count × price" -> price is the model\'s table price (SPEC: \'"price" is the '
    "model's table price'), not the listed price.",
    # ---- 3.4 billing --------------------------------------------------------------------------------
    '"Days are counted from the UTC day of the first accepted event in the log" -> the envelope time of '
    "the first accepted line of any type (not only types billing reads). Days before it are treated as "
    "closed: an epoch whose closed_at day is before it accrues to the oldest open day; rental seconds "
    "and incidents before it count for nothing.",
    '"seconds inside D" -> overlap of [started_at, stopped_at) with [D 00:00, D+1 00:00) and with '
    "[origin day 00:00, ∞); a rental without a known stop runs to the end of D; a stop before its start "
    "gives 0 seconds.",
    '"for every rental overlapping D as known then" -> every rental whose start was accepted, '
    "whatever its price (the price floor of 3.3 only concerns scoring) and whatever the executor's "
    "score or listing state; provider part is floored per rental per day.",
    '"A rental uses the gpu_count and hotkey of the latest executor.listed of its executor processed '
    'before its rental.started" -> fees go to that hotkey, even if the executor is later re-listed '
    "under another hotkey.",
    '"A rental (or stop) for an executor never listed is refused (unknown_executor)" -> applies to '
    "rental.started and rental.stopped only (checked on the event's own executor_id); rental.incident "
    "is never refused for that reason. A stop whose executor_id differs from its start's is applied "
    "by rental_id.",
    '"A second rental.started for a known rental_id is ignored" -> known = a start for that rental_id '
    "was accepted before; the line is accepted (its id is registered) but changes nothing. A held stop "
    "does not make a rental_id known.",
    '"Forfeit: an executor with a rental.incident whose at falls in D" -> per executor_id and UTC day '
    "of `at` ([D 00:00, D+1 00:00)); the incident's rental_id and kind do not matter. rental_fee_usd_micros "
    "and emission_rao include the forfeited amounts, which are then shown as forfeited_usd_micros / "
    "forfeited_rao (the usd/rao formulas subtract them).",
    '"its emission ... of D" -> emission accrued to D (after the oldest-open-day rule), attributed to '
    "the node's hotkey in that epoch.scored; fees of D attributed to each rental's hotkey.",
    '"A closed day never changes. When an event changes what a closed day D should have paid ... booked '
    'on the oldest open day" -> after every accepted rental.started / rental.stopped / rental.incident, '
    "for every closed day D and provider, (fees after forfeits, emission after forfeits) is recomputed "
    "with D's rate and compared with what was last booked for D; the difference goes to the oldest "
    "open day's adjustment_usd_micros / adjustment_rao for that provider.",
    '"Day D closes at the first epoch.closed with closed_at ≥ D+1 00:00 UTC + day_close_grace_seconds" '
    "-> grace in force at that epoch.closed; the emission of that same epoch accrues before the days "
    "close (epoch.scored is processed right after its cause, before billing handles the epoch.closed).",
    '"Prices: the epoch.closed with the greatest closed_at before D+1 00:00 (on a tie, the later in the '
    'log), else the one that closes D" -> among accepted epoch.closed lines up to and including the '
    "closing one; 'before' is strict; no lower bound (an epoch of an earlier day may price D).",
    '"day.closed lists every provider with a non-zero figure or a carried rest" -> listed iff any of '
    "emission, fee, forfeits, adjustments, payable or carried is non-zero (a non-zero carried_in always "
    "shows up in one of them). Every closed day is reported even with no providers.",
    '"its coldkey is the coldkey of the hotkey\'s latest executor.listed" -> latest accepted '
    "executor.listed with that hotkey (any executor) as of the closing line.",
    '"carried_rao = min(rao, 0), which carries to that provider\'s next statement" -> carried_in of a '
    "provider is its carried_rao of the previous closed day on which it was considered (0 if none).",
    # ---- 3.5 settlement ----------------------------------------------------------------------------
    '"At the first epoch.closed at or after payout_hour_utc of each UTC day T" -> days T start at the '
    "day origin; the run for T happens at the first accepted epoch.closed (log order) with closed_at ≥ "
    "T 00:00 + payout_hour_utc hours (parameter in force then). If one epoch.closed is past several "
    "such instants, the runs for those days happen one after another at that line, in day order.",
    '"each derived event is processed by its readers right after its cause" (SPEC 4) -> the payout runs '
    "at an epoch.closed happen after billing has closed the days that epoch.closed closes, so those "
    "days are payable in the same run (if old enough).",
    "Which clock -> day closing, payout hours, emission days and price selection use the epoch's "
    "data.closed_at; rental seconds use started_at/stopped_at; forfeits use the incident's `at`; the "
    "envelope `time` is used only for the day origin (and bad_time).",
    '"A rental (or stop) for an executor never listed" -> judged at that line: a listing later in the '
    "log does not rescue a refused rental.started (it stays refused; a re-sent copy would be judged "
    "afresh because the refused id was never registered).",
    '"pay every closed day D ≤ T − payout_delay_days not yet paid, summed per coldkey (plus what was '
    'carried forward)" -> per coldkey: Σ payable_rao of its providers on those days (coldkey as printed '
    "in each day.closed) + its deferred amount; billing_days reported = the days newly included in that "
    "run. A coldkey whose sum is 0 gets neither a payment nor a deferral. A run is reported only if it "
    "included a day or had a carried-forward amount.",
    '"A sum under min_payout_rao carries forward" -> strictly under; the whole sum is deferred and '
    "added to the coldkey's next run; min_payout_rao in force at the run.",
]

# --------------------------------------------------------------------------------------------------
# Constants and defaults (SPEC 3 "Parameters (defaults ...)")
# --------------------------------------------------------------------------------------------------
ENVELOPE_FIELDS = {"id", "type", "schema_version", "source", "time", "key", "causation_id", "data"}

# Data fields per input type (SPEC 2 "Inputs from the platform backend and the chain").
DATA_SCHEMAS: dict[str, dict[str, str]] = {
    "executor.listed": {
        "executor_id": "str", "hotkey": "str", "coldkey": "str", "gpu_model": "str",
        "gpu_count": "int", "price_per_gpu_usd": "dec", "sysbox": "bool",
    },
    "executor.delisted": {"executor_id": "str"},
    "rental.started": {
        "rental_id": "str", "executor_id": "str", "renter_id": "str",
        "price_per_gpu_usd": "dec", "started_at": "time",
    },
    "rental.stopped": {"rental_id": "str", "executor_id": "str", "stopped_at": "time", "reason": "str"},
    "rental.incident": {"rental_id": "str", "executor_id": "str", "kind": "incident_kind", "at": "time"},
    "revenue.reported": {"window_start": "time", "window_end": "time", "revenue_usd_by_model": "dec_map"},
    "benchmark.completed": {
        "executor_id": "str", "hotkey": "str", "gpu_model": "str", "gpu_count": "int",
        "vram_mb_per_gpu": "int", "matmul_passed": "bool", "matmul_tflops": "dec_or_null",
        "download_mbps": "dec", "upload_mbps": "dec", "sysbox": "bool", "driver_version": "str",
        "measured_at": "time",
    },
    "epoch.closed": {
        "netuid": "int", "epoch": "int", "start_block": "int", "end_block": "int", "closed_at": "time",
        "miner_emission_rao": "int", "tao_usd": "dec", "alpha_tao": "dec",
    },
    "params.updated": {},  # validated separately: any subset of the parameters (bad_params)
}
INCIDENT_KINDS = {"ssh_refused", "container_crash", "offline"}

# "`total_burn_emission` "0.91"; `rental_fees_rate` "0.9"; `tempo` 360; ..."
PARAM_KINDS: dict[str, str] = {
    "total_burn_emission": "dec", "rental_fees_rate": "dec", "tempo": "int", "seconds_per_block": "int",
    "gpu_portion_alpha": "dec", "max_price_rate": "dec", "min_download_mbps": "dec",
    "vram_window": "dec_pair", "rented_normalization": "norm", "min_rented_price_rate": "dec",
    "unrented_pay_ratio": "dec", "max_unrented_price_rate": "dec", "day_close_grace_seconds": "int",
    "payout_delay_days": "int", "payout_hour_utc": "int", "min_payout_rao": "int", "max_batch": "int",
    "models": "models",
}
DEFAULT_PARAMS: dict[str, Any] = {
    "total_burn_emission": Fraction("0.91"),
    "rental_fees_rate": Fraction("0.9"),
    "tempo": 360,
    "seconds_per_block": 12,
    "gpu_portion_alpha": Fraction("0.01"),
    "max_price_rate": Fraction("3"),
    "min_download_mbps": Fraction("100"),
    "vram_window": (Fraction("0.90"), Fraction("1.05")),
    "rented_normalization": "rented",
    "min_rented_price_rate": Fraction("0.5"),
    "unrented_pay_ratio": Fraction("1"),
    "max_unrented_price_rate": Fraction("1.1"),
    "day_close_grace_seconds": 7200,
    "payout_delay_days": 2,
    "payout_hour_utc": 17,
    "min_payout_rao": 10_000_000,
    "max_batch": 64,
}
MODEL_FIELDS = {"price", "caps", "vram_mib", "portion"}


@dataclass
class ModelSpec:
    price: Fraction
    caps: dict[int, int]
    vram_mib: int


# | gpu_model | gpu_portion start | price USD/GPU-h | unrented caps | nominal VRAM MiB |
DEFAULT_MODELS: list[tuple[str, str, str, dict[int, int], int]] = [
    ("NVIDIA H200", "0.56", "2.85", {1: 10, 8: 64}, 143771),
    ("NVIDIA H100 80GB HBM3", "0.10", "1.494", {1: 10, 8: 64}, 81559),
    ("NVIDIA B200", "0.05", "4.25", {1: 10, 8: 64}, 183359),
    ("NVIDIA B300", "0.05", "5.10", {1: 4, 8: 32}, 275040),
    ("NVIDIA A100-SXM4-80GB", "0.05", "0.6923", {1: 10, 8: 40}, 81920),
    ("NVIDIA GeForce RTX 5090", "0.025", "0.65", {1: 10, 8: 64}, 32607),
    ("NVIDIA GeForce RTX 4090", "0.05", "0.30", {1: 10, 8: 64}, 24564),
]

ONE_DAY = timedelta(days=1)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
class Malformed(Exception):
    """The line cannot be read as a valid envelope of a known input type."""


class Refused(Exception):
    """A refusal with one of the codes of SPEC 2."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --------------------------------------------------------------------------------------------------
# Exact parsing helpers
# --------------------------------------------------------------------------------------------------
_DEC_RE = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?"
)
_CAP_KEY_RE = re.compile(r"0|[1-9][0-9]*")


def is_int(v: Any) -> bool:
    # bool is a subclass of int in Python; JSON true/false are not integers.
    return isinstance(v, int) and not isinstance(v, bool)


def parse_dec(v: Any) -> Fraction | None:
    """A decimal string read exactly; None if v is not a decimal string."""
    if not isinstance(v, str) or not _DEC_RE.fullmatch(v):
        return None
    return Fraction(v)


@dataclass
class ParsedTime:
    utc: datetime | None  # naive datetime in UTC, microsecond precision; None if no offset
    has_offset: bool


def parse_time(v: Any) -> ParsedTime | None:
    """RFC 3339 timestamp; None if not a timestamp at all (malformed)."""
    if not isinstance(v, str):
        return None
    m = _TIME_RE.fullmatch(v)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    # "digits beyond the microsecond are truncated"
    micro = int((frac or "").ljust(6, "0")[:6])
    try:
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro)
    except ValueError:
        return None
    if off is None:
        return ParsedTime(None, False)
    if off in ("Z", "z"):
        delta = timedelta(0)
    else:
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        delta = timedelta(hours=oh, minutes=om) * (1 if off[0] == "+" else -1)
    try:
        return ParsedTime(local - delta, True)
    except OverflowError:
        return None


def round_half_even(x: Fraction) -> int:
    """Round a Fraction to the nearest integer, ties to even (explicit, not relying on round())."""
    fl = math.floor(x)
    rest = x - fl
    if rest > Fraction(1, 2):
        return fl + 1
    if rest < Fraction(1, 2):
        return fl
    return fl if fl % 2 == 0 else fl + 1


def round_to_places_half_even(x: Fraction, places: int) -> Fraction:
    scale = 10**places
    return Fraction(round_half_even(x * scale), scale)


def fmt_fraction(x: Fraction) -> str:
    """'p/q' or 'p' (the interface asked for)."""
    return str(x)


def fmt_decimal(x: Fraction) -> str:
    """Exact decimal string of a Fraction whose denominator divides a power of ten; trailing zeros
    removed.  (Portions are always such numbers: decimal inputs, rounded to 18 places.)"""
    sign = "-" if x < 0 else ""
    x = abs(x)
    k = 0
    while (x * 10**k).denominator != 1:
        k += 1
        if k > 10_000:
            raise ValueError(f"not a terminating decimal: {x}")
    n = int(x * 10**k)
    if k == 0:
        return sign + str(n)
    digits = str(n).rjust(k + 1, "0")
    whole, frac = digits[:-k], digits[-k:].rstrip("0")
    return sign + (whole + "." + frac if frac else whole)


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)


def seconds_between(a: datetime, b: datetime) -> Fraction:
    """Exact seconds from a to b (microsecond precision)."""
    micros = (b - a) // timedelta(microseconds=1)
    return Fraction(micros, 1_000_000)


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------------------
# Envelope and data shape validation ("malformed")
# --------------------------------------------------------------------------------------------------
@dataclass
class Envelope:
    raw: dict[str, Any]
    id: str
    type: str
    time: datetime | None  # UTC; None when bad_time
    data: dict[str, Any]  # parsed values (Fraction, datetime, ...) for non-params types
    raw_data: dict[str, Any]
    bad_time: bool


def _check_field(kind: str, value: Any) -> tuple[Any, bool]:
    """Returns (parsed value, bad_time flag); raises Malformed."""
    if kind == "str":
        if not isinstance(value, str):
            raise Malformed
        return value, False
    if kind == "int":
        if not is_int(value):
            raise Malformed
        return value, False
    if kind == "bool":
        if not isinstance(value, bool):
            raise Malformed
        return value, False
    if kind == "dec":
        f = parse_dec(value)
        if f is None:
            raise Malformed
        return f, False
    if kind == "dec_or_null":
        if value is None:
            return None, False
        f = parse_dec(value)
        if f is None:
            raise Malformed
        return f, False
    if kind == "time":
        t = parse_time(value)
        if t is None:
            raise Malformed
        return t.utc, not t.has_offset
    if kind == "incident_kind":
        if value not in INCIDENT_KINDS:
            raise Malformed
        return value, False
    if kind == "dec_map":
        if not isinstance(value, dict):
            raise Malformed
        out: dict[str, Fraction] = {}
        for k, v in value.items():
            f = parse_dec(v)
            if f is None:
                raise Malformed
            out[k] = f
        return out, False
    raise AssertionError(kind)


def parse_envelope(raw_line: bytes) -> Envelope:
    try:
        text = raw_line.decode("utf-8")
        obj = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Malformed from None
    if not isinstance(obj, dict) or set(obj.keys()) != ENVELOPE_FIELDS:
        raise Malformed
    if not isinstance(obj["id"], str) or not isinstance(obj["type"], str):
        raise Malformed
    if obj["type"] not in DATA_SCHEMAS:
        raise Malformed
    if not is_int(obj["schema_version"]) or obj["schema_version"] != 1:
        raise Malformed
    if not isinstance(obj["source"], str) or not isinstance(obj["key"], str):
        raise Malformed
    if obj["causation_id"] is not None and not isinstance(obj["causation_id"], str):
        raise Malformed
    if not isinstance(obj["data"], dict):
        raise Malformed
    t = parse_time(obj["time"])
    if t is None:
        raise Malformed
    bad_time = not t.has_offset
    data: dict[str, Any] = {}
    schema = DATA_SCHEMAS[obj["type"]]
    if obj["type"] != "params.updated":
        if set(obj["data"].keys()) != set(schema.keys()):
            raise Malformed  # unknown or missing data field
        for name, kind in schema.items():
            value, bt = _check_field(kind, obj["data"][name])
            data[name] = value
            bad_time = bad_time or bt
    return Envelope(obj, obj["id"], obj["type"], t.utc, data, obj["data"], bad_time)


# --------------------------------------------------------------------------------------------------
# params.updated validation (bad_params); pure: returns the new parameter state
# --------------------------------------------------------------------------------------------------
def apply_params_update(
    params: dict[str, Any], models: dict[str, ModelSpec], portions: dict[str, Fraction], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, ModelSpec], dict[str, Fraction]]:
    """Validate a params.updated data object and return new (params, models, portions).
    Raises Refused("bad_params"); "else the whole update is refused"."""
    new_params = dict(params)
    new_models = {k: ModelSpec(v.price, dict(v.caps), v.vram_mib) for k, v in models.items()}
    new_portions = dict(portions)
    bad = Refused("bad_params")
    for name, value in data.items():
        kind = PARAM_KINDS.get(name)
        if kind is None:
            raise bad  # "an unknown parameter"
        if kind == "dec":
            f = parse_dec(value)  # "a number where a decimal string is required"
            if f is None:
                raise bad
            new_params[name] = f
        elif kind == "int":
            if not is_int(value):
                raise bad
            new_params[name] = value
        elif kind == "dec_pair":
            if not isinstance(value, list) or len(value) != 2:
                raise bad
            pair = [parse_dec(v) for v in value]
            if pair[0] is None or pair[1] is None:
                raise bad
            new_params[name] = (pair[0], pair[1])
        elif kind == "norm":
            # "a `rented_normalization` other than "rented" or "table""
            if value not in ("rented", "table") or not isinstance(value, str):
                raise bad
            new_params[name] = value
        elif kind == "models":
            if not isinstance(value, dict):
                raise bad
            for model_name, spec in value.items():
                if not isinstance(spec, dict):
                    raise bad
                if set(spec.keys()) - MODEL_FIELDS:
                    raise bad  # "an unknown ... model field"
                price = caps = vram = portion = None
                if "price" in spec:
                    price = parse_dec(spec["price"])
                    if price is None:
                        raise bad
                if "caps" in spec:
                    # "In JSON, cap keys are GPU counts as strings ({"1": 10, "8": 64})"
                    if not isinstance(spec["caps"], dict):
                        raise bad
                    caps = {}
                    for ck, cv in spec["caps"].items():
                        if not _CAP_KEY_RE.fullmatch(ck) or not is_int(cv):
                            raise bad
                        caps[int(ck)] = cv
                if "vram_mib" in spec:
                    if not is_int(spec["vram_mib"]):
                        raise bad
                    vram = spec["vram_mib"]
                if "portion" in spec:
                    portion = parse_dec(spec["portion"])
                    if portion is None:
                        raise bad
                if model_name in new_models:
                    # "a `portion` for an existing model" -> bad_params
                    if "portion" in spec:
                        raise bad
                    # "changes the models it names, field by field (`caps` replaces the whole map)"
                    m = new_models[model_name]
                    if price is not None:
                        m.price = price
                    if caps is not None:
                        m.caps = caps
                    if vram is not None:
                        m.vram_mib = vram
                else:
                    # "or adds one, which must give price, caps and vram_mib"
                    if price is None or caps is None or vram is None:
                        raise bad
                    new_models[model_name] = ModelSpec(price, caps, vram)
                    # "without it a new model keeps what revenue reports gave it, or 0"
                    if portion is not None:
                        new_portions[model_name] = portion
                    else:
                        new_portions.setdefault(model_name, Fraction(0))
        else:  # pragma: no cover
            raise AssertionError(kind)
    return new_params, new_models, new_portions


# --------------------------------------------------------------------------------------------------
# State records
# --------------------------------------------------------------------------------------------------
@dataclass
class Listing:
    executor_id: str
    hotkey: str
    coldkey: str
    gpu_model: str
    gpu_count: int
    price: Fraction


@dataclass
class Bench:
    gpu_count: int
    vram: int
    matmul_passed: bool
    sysbox: bool


@dataclass
class Rental:
    rental_id: str
    executor_id: str
    hotkey: str  # of the latest listing processed before its rental.started
    gpu_count: int  # idem
    price: Fraction  # the rental's price_per_gpu_usd
    started_at: datetime
    stopped_at: datetime | None
    stop_processed: bool


@dataclass
class ClosedDay:
    day: date
    line: int
    rate: Fraction  # rental_fees_rate in force when the day closed
    prices: tuple[Fraction, Fraction]
    booked: dict[str, tuple[int, int]]  # hotkey -> (fees after forfeits, emission after forfeits)
    statement: dict[str, dict[str, Any]]  # hotkey -> figures


@dataclass
class DayFigures:
    emission: int = 0
    fee: int = 0
    forfeited_rao: int = 0
    forfeited_usd: int = 0


# --------------------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------------------
class Oracle:
    def __init__(self) -> None:
        # ---- common
        self.seen_ids: dict[str, str] = {}  # id -> canonical content of the accepted line
        self.refused: dict[str, str] = {}
        self.params: dict[str, Any] = dict(DEFAULT_PARAMS)
        self.models: dict[str, ModelSpec] = {
            name: ModelSpec(Fraction(price), dict(caps), vram) for name, _, price, caps, vram in DEFAULT_MODELS
        }
        self.day_origin: date | None = None
        # ---- scoring
        self.ever_listed: set[str] = set()
        self.latest_listing: dict[str, Listing] = {}
        self.listed_now: set[str] = set()
        self.latest_bench: dict[str, Bench] = {}
        self.download_ema: dict[str, Fraction] = {}
        self.current_scores: dict[str, tuple[int, list[str]]] = {}
        self.portions: dict[str, Fraction] = {name: Fraction(p) for name, p, _, _, _ in DEFAULT_MODELS}
        self.accepted_epochs: set[tuple[int, int]] = set()
        # ---- rentals (shared by scoring and billing; both read rental.*)
        self.rentals: dict[str, Rental] = {}
        self.held_stops: dict[str, datetime] = {}
        # ---- billing
        self.oldest_open: date | None = None
        self.closed_days: dict[date, ClosedDay] = {}
        self.accruals: dict[date, dict[tuple[str, str], int]] = {}  # day -> (hotkey, executor) -> rao
        self.incidents: set[tuple[str, date]] = set()  # (executor_id, day of `at`)
        self.adjustments: dict[date, dict[str, list[int]]] = {}  # open day -> hotkey -> [usd, rao]
        self.carried: dict[str, int] = {}  # hotkey -> carried_rao of its last statement
        self.hotkey_coldkey: dict[str, str] = {}  # hotkey -> coldkey of its latest executor.listed
        self.epoch_log: list[tuple[datetime, int, Fraction, Fraction]] = []  # closed_at, line, tao, alpha
        # ---- settlement
        self.next_run_day: date | None = None
        self.unpaid_days: list[date] = []
        self.carry_forward: dict[str, int] = {}
        # ---- outputs
        self.out_epochs: dict[str, Any] = {}
        self.out_scores: list[list[Any]] = []
        self.out_portions: list[list[Any]] = []
        self.out_days: dict[str, Any] = {}
        self.out_payouts: dict[str, Any] = {}

    # ============================================================================================
    # Line intake
    # ============================================================================================
    def feed(self, line_no: int, raw_line: bytes) -> None:
        try:
            env = parse_envelope(raw_line)
        except Malformed:
            self.refused[str(line_no)] = "malformed"
            return
        content = canonical(env.raw)
        # "The same id with the same content again is a duplicate: no effect. The same id with
        #  different content is a conflict: refused"
        if env.id in self.seen_ids:
            if self.seen_ids[env.id] == content:
                return
            self.refused[str(line_no)] = "id_conflict"
            return
        # "bad_time (a time without a UTC offset ...)"
        if env.bad_time:
            self.refused[str(line_no)] = "bad_time"
            return
        try:
            prepared = self.validate(env)
        except Refused as r:
            # "An event that is refused goes to the dead-letter topic with a code and changes nothing."
            self.refused[str(line_no)] = r.code
            return
        # accepted
        self.seen_ids[env.id] = content
        if self.day_origin is None:
            # "Days are counted from the UTC day of the first accepted event in the log"
            assert env.time is not None
            self.day_origin = env.time.date()
            self.oldest_open = self.day_origin
            self.next_run_day = self.day_origin
        self.apply(line_no, env, prepared)

    # ============================================================================================
    # Type-specific refusals (no mutation here)
    # ============================================================================================
    def validate(self, env: Envelope) -> Any:
        d = env.data
        t = env.type
        if t == "executor.listed":
            if d["gpu_count"] < 1:
                raise Refused("bad_listing")  # "bad_listing (gpu_count < 1)"
        elif t == "revenue.reported":
            if any(v < 0 for v in d["revenue_usd_by_model"].values()):
                raise Refused("bad_revenue")  # "bad_revenue (a negative amount)"
        elif t == "params.updated":
            return apply_params_update(self.params, self.models, self.portions, env.raw_data)
        elif t == "epoch.closed":
            if d["netuid"] != 51:
                raise Refused("bad_netuid")  # "an epoch.closed for a netuid other than 51"
            if (d["netuid"], d["epoch"]) in self.accepted_epochs:
                raise Refused("duplicate_epoch")  # "unique per (netuid, epoch)"
            if d["tao_usd"] <= 0 or d["alpha_tao"] <= 0 or d["miner_emission_rao"] < 0:
                raise Refused("bad_prices")
        elif t in ("rental.started", "rental.stopped") and d["executor_id"] not in self.ever_listed:
            # "A rental (or stop) for an executor never listed is refused ... (unknown_executor)"
            raise Refused("unknown_executor")
        return None

    # ============================================================================================
    # Apply an accepted line
    # ============================================================================================
    def apply(self, line_no: int, env: Envelope, prepared: Any) -> None:
        d = env.data
        t = env.type
        if t == "executor.listed":
            listing = Listing(
                d["executor_id"], d["hotkey"], d["coldkey"], d["gpu_model"], d["gpu_count"],
                d["price_per_gpu_usd"],
            )
            self.latest_listing[d["executor_id"]] = listing
            self.ever_listed.add(d["executor_id"])
            self.listed_now.add(d["executor_id"])
            self.hotkey_coldkey[d["hotkey"]] = d["coldkey"]
            self.update_scores(line_no)
        elif t == "executor.delisted":
            self.listed_now.discard(d["executor_id"])
        elif t == "benchmark.completed":
            ex = d["executor_id"]
            self.latest_bench[ex] = Bench(d["gpu_count"], d["vram_mb_per_gpu"], d["matmul_passed"], d["sysbox"])
            # "ema ← ema + (x − ema) / 2, exact, the first value as is"
            x = d["download_mbps"]
            if ex not in self.download_ema:
                self.download_ema[ex] = x
            else:
                ema = self.download_ema[ex]
                self.download_ema[ex] = ema + (x - ema) / 2
            self.update_scores(line_no)
        elif t == "params.updated":
            self.params, self.models, self.portions = prepared
            self.update_scores(line_no)
        elif t == "revenue.reported":
            self.apply_revenue(line_no, d["revenue_usd_by_model"])
        elif t == "rental.started":
            self.apply_rental_started(d)
            self.book_late_changes()
        elif t == "rental.stopped":
            self.apply_rental_stopped(d)
            self.book_late_changes()
        elif t == "rental.incident":
            assert d["at"] is not None
            self.incidents.add((d["executor_id"], d["at"].date()))
            self.book_late_changes()
        elif t == "epoch.closed":
            self.apply_epoch_closed(line_no, d)
        else:  # pragma: no cover
            raise AssertionError(t)

    # ============================================================================================
    # 3.1 Scores
    # ============================================================================================
    def compute_score(self, ex: str) -> tuple[int, list[str]]:
        listing = self.latest_listing[ex]
        bench = self.latest_bench.get(ex)
        # "`not_benchmarked` (no benchmark yet) stands alone"
        if bench is None:
            return 0, ["not_benchmarked"]
        # "then `unknown_gpu_model` stands alone"
        model = self.models.get(listing.gpu_model)
        if model is None:
            return 0, ["unknown_gpu_model"]
        reasons: list[str] = []
        # "`matmul_failed`"
        if not bench.matmul_passed:
            reasons.append("matmul_failed")
        # "`vram_mismatch`: vram_mb_per_gpu outside vram_window × nominal"
        lo, hi = self.params["vram_window"]
        if not (lo * model.vram_mib <= bench.vram <= hi * model.vram_mib):
            reasons.append("vram_mismatch")
        # "`gpu_count_mismatch`: the benchmark's gpu_count differs from the listing's"
        if bench.gpu_count != listing.gpu_count:
            reasons.append("gpu_count_mismatch")
        # "`network_too_slow`: the download EMA below min_download_mbps"
        if self.download_ema[ex] < self.params["min_download_mbps"]:
            reasons.append("network_too_slow")
        # "`price_above_limit`: listed price above max_price_rate × model price (only for a model price > 0)"
        if model.price > 0 and listing.price > self.params["max_price_rate"] * model.price:
            reasons.append("price_above_limit")
        # "`sysbox_missing`"
        if not bench.sysbox:
            reasons.append("sysbox_missing")
        # "Score is 1 with no reason, else 0."
        return (1 if not reasons else 0), reasons

    def update_scores(self, line_no: int) -> None:
        # "Emit `score.updated` when score or reasons change." (first computation counts as a change)
        for ex in sorted(self.ever_listed):
            new = self.compute_score(ex)
            if self.current_scores.get(ex) != new:
                self.current_scores[ex] = new
                self.out_scores.append([line_no, ex, new[0], list(new[1])])

    # ============================================================================================
    # 3.2 gpu_portion
    # ============================================================================================
    def apply_revenue(self, line_no: int, revenue: dict[str, Fraction]) -> None:
        # "Portions are kept for every model of the table, added by `models`, or named in any report so far."
        for model in revenue:
            self.portions.setdefault(model, Fraction(0))
        total = sum(revenue.values(), Fraction(0))
        # "On `revenue.reported` with total T > 0"
        if total <= 0:
            return
        alpha = self.params["gpu_portion_alpha"]
        for model in sorted(self.portions):
            # "share = revenue/T (0 if absent), portion ← portion + gpu_portion_alpha × (share − portion),
            #  then round to 18 decimal places, half to even"
            share = revenue.get(model, Fraction(0)) / total
            p = self.portions[model]
            self.portions[model] = round_to_places_half_even(p + alpha * (share - p), 18)
        # "Emit `gpu_portion.updated` with all portions."
        self.out_portions.append([line_no, {m: fmt_decimal(p) for m, p in sorted(self.portions.items())}])

    # ============================================================================================
    # Rentals
    # ============================================================================================
    def apply_rental_started(self, d: dict[str, Any]) -> None:
        rid = d["rental_id"]
        # "A second `rental.started` for a known rental_id is ignored."
        if rid in self.rentals:
            return
        # "A rental uses the gpu_count and hotkey of the latest `executor.listed` of its executor processed
        #  before its `rental.started`, even if since delisted."
        listing = self.latest_listing[d["executor_id"]]
        rental = Rental(
            rental_id=rid, executor_id=d["executor_id"], hotkey=listing.hotkey, gpu_count=listing.gpu_count,
            price=d["price_per_gpu_usd"], started_at=d["started_at"], stopped_at=None, stop_processed=False,
        )
        # "A stop that arrives before its start is held and applied when the start arrives."
        if rid in self.held_stops:
            rental.stopped_at = self.held_stops.pop(rid)
            rental.stop_processed = True
        self.rentals[rid] = rental

    def apply_rental_stopped(self, d: dict[str, Any]) -> None:
        rid = d["rental_id"]
        if rid in self.rentals:
            # "a second `rental.stopped` replaces the stop time"
            self.rentals[rid].stopped_at = d["stopped_at"]
            self.rentals[rid].stop_processed = True
        else:
            # "`rental.stopped` may arrive before its `rental.started`; hold it"
            self.held_stops[rid] = d["stopped_at"]

    # ============================================================================================
    # 3.3 The epoch split
    # ============================================================================================
    def is_rented(self, ex: str) -> bool:
        # "It is rented if, at this point in the log, it has a rental whose start was processed and whose
        #  stop was not, with price_per_gpu_usd ≥ min_rented_price_rate × model price (a cheaper rental does
        #  not make it rented)."
        model = self.models[self.latest_listing[ex].gpu_model]
        floor = self.params["min_rented_price_rate"] * model.price
        return any(
            r.executor_id == ex and not r.stop_processed and r.price >= floor for r in self.rentals.values()
        )

    def epoch_split(self, E: int, tao_usd: Fraction, alpha_tao: Fraction) -> dict[str, Any]:
        p = self.params
        # "An executor takes part if listed and score = 1."
        taking_part = [ex for ex in sorted(self.listed_now) if self.compute_score(ex)[0] == 1]
        listing = {ex: self.latest_listing[ex] for ex in taking_part}
        model_of = {ex: self.models[listing[ex].gpu_model] for ex in taking_part}
        rented = {ex for ex in taking_part if self.is_rented(ex)}
        incentive: dict[str, Fraction] = {ex: Fraction(0) for ex in taking_part}
        reason: dict[str, str | None] = {}

        # ---- Rented pool, share R = 1 − total_burn_emission
        R = 1 - p["total_burn_emission"]
        rented_gpus_by_model: dict[str, int] = {}
        for ex in rented:
            rented_gpus_by_model[listing[ex].gpu_model] = (
                rented_gpus_by_model.get(listing[ex].gpu_model, 0) + listing[ex].gpu_count
            )
        # "m = gpu_portion[model] × gpu_count / (total rented GPUs of that model taking part)"
        m = {
            ex: self.portions.get(listing[ex].gpu_model, Fraction(0))
            * listing[ex].gpu_count
            / rented_gpus_by_model[listing[ex].gpu_model]
            for ex in rented
        }
        if p["rented_normalization"] == "rented":
            N = sum(m.values(), Fraction(0))  # "N = Σm over rented executors"
        else:
            # "N = Σ gpu_portion over all models of the table"
            N = sum((self.portions.get(name, Fraction(0)) for name in self.models), Fraction(0))
        # "incentive = R × m / N ... If N ≤ 0 the share goes to burn."
        if N > 0:
            for ex in rented:
                incentive[ex] = R * m[ex] / N
        R_paid = sum((incentive[ex] for ex in rented), Fraction(0))

        # ---- Unrented pool
        eligible: list[str] = []
        for ex in taking_part:
            if ex in rented:
                continue
            model = model_of[ex]
            lst = listing[ex]
            if not model.price > 0:
                reason[ex] = "model_not_priced"
            elif not lst.price <= p["max_unrented_price_rate"] * model.price:
                reason[ex] = "price_above_unrented_limit"
            elif not model.caps.get(lst.gpu_count, 0) > 0:
                reason[ex] = "gpu_count_not_priced"
            else:
                eligible.append(ex)
        # "per bucket (model, gpu_count) count = Σ gpu_count, weighted = Σ gpu_count × price,
        #  cap_mult = min(count, cap) / count"
        buckets: dict[tuple[str, int], dict[str, Any]] = {}
        for ex in eligible:
            key = (listing[ex].gpu_model, listing[ex].gpu_count)
            b = buckets.setdefault(key, {"count": 0, "weighted": Fraction(0)})
            b["count"] += listing[ex].gpu_count
            b["weighted"] += listing[ex].gpu_count * model_of[ex].price
        cap_mult: dict[tuple[str, int], Fraction] = {}
        for (model_name, gpu_count), b in buckets.items():
            cap = self.models[model_name].caps[gpu_count]
            cap_mult[(model_name, gpu_count)] = Fraction(min(b["count"], cap), b["count"])
        # "C = Σ cap_mult × weighted (USD/h)"
        C = sum((cap_mult[k] * b["weighted"] for k, b in buckets.items()), Fraction(0))
        U = Fraction(0)
        if C > 0 and E > 0:
            # "raw = unrented_pay_ratio × C × tempo × seconds_per_block / 3600 / (E / 10⁹ × tao_usd × alpha_tao)"
            raw = (
                p["unrented_pay_ratio"] * C * p["tempo"] * p["seconds_per_block"] / 3600
                / (Fraction(E, 10**9) * tao_usd * alpha_tao)
            )
            # "U = min(raw, total_burn_emission)"
            U = min(raw, p["total_burn_emission"])
            for ex in eligible:
                k = (listing[ex].gpu_model, listing[ex].gpu_count)
                # "incentive = U × gpu_count × price × cap_mult / C"
                incentive[ex] = U * listing[ex].gpu_count * model_of[ex].price * cap_mult[k] / C
        # "Burn share = 1 − R' − U"
        burn_share = 1 - R_paid - U

        # "alpha_rao = floor(incentive × E) per executor; burn_rao = E − Σ alpha_rao"
        alpha_rao = {ex: math.floor(incentive[ex] * E) for ex in taking_part}
        burn_rao = E - sum(alpha_rao.values())

        nodes: dict[str, Any] = {}
        for ex in taking_part:
            r: str | None = None
            if incentive[ex] == 0:
                r = "no_rented_portion" if ex in rented else reason.get(ex, "no_unrented_share")
            nodes[ex] = {
                "hotkey": listing[ex].hotkey,
                "pool": "rented" if ex in rented else "unrented",
                "incentive": fmt_fraction(incentive[ex]),
                "alpha_rao": alpha_rao[ex],
                "reason": r,
            }
        return {
            "burn_rao": burn_rao,
            "shares": {"rented": fmt_fraction(R_paid), "unrented": fmt_fraction(U), "burn": fmt_fraction(burn_share)},
            "nodes": nodes,
        }

    def apply_epoch_closed(self, line_no: int, d: dict[str, Any]) -> None:
        closed_at: datetime = d["closed_at"]
        E: int = d["miner_emission_rao"]
        self.accepted_epochs.add((d["netuid"], d["epoch"]))
        # ---- scoring: "State as of that point in the log."
        split = self.epoch_split(E, d["tao_usd"], d["alpha_tao"])
        self.out_epochs[str(d["epoch"])] = split
        self.epoch_log.append((closed_at, line_no, d["tao_usd"], d["alpha_tao"]))
        # ---- billing, epoch.scored (right after its cause):
        # "each node of `epoch.scored` with alpha_rao > 0 accrues to the node's hotkey on the day of
        #  closed_at, or on the oldest open day if that day is already closed"
        assert self.oldest_open is not None
        accrual_day = max(closed_at.date(), self.oldest_open)
        for ex, node in split["nodes"].items():
            if node["alpha_rao"] > 0:
                bucket = self.accruals.setdefault(accrual_day, {})
                key = (node["hotkey"], ex)
                bucket[key] = bucket.get(key, 0) + node["alpha_rao"]
        # ---- billing, epoch.closed:
        # "Day D closes at the first `epoch.closed` with closed_at ≥ D+1 00:00 UTC + day_close_grace_seconds
        #  (days close in order, several at once if needed)."
        grace = timedelta(seconds=self.params["day_close_grace_seconds"])
        while closed_at >= day_start(self.oldest_open + ONE_DAY) + grace:
            self.close_day(self.oldest_open, line_no)
            self.oldest_open = self.oldest_open + ONE_DAY
        # ---- settlement, epoch.closed
        self.run_payouts(closed_at)

    # ============================================================================================
    # 3.4 Billing
    # ============================================================================================
    def fee_provider_part(self, r: Rental, D: date, rate: Fraction) -> int:
        """Provider part of rental r's fee for day D."""
        assert self.day_origin is not None
        # "rental time before it [the first day] is not billed"
        start = max(r.started_at, day_start(D), day_start(self.day_origin))
        end = day_start(D + ONE_DAY)
        if r.stopped_at is not None:
            end = min(end, r.stopped_at)
        if end <= start:
            return 0
        seconds = seconds_between(start, end)
        # "charge = seconds inside D × price_per_gpu_usd (the rental's) × gpu_count / 3600, in micro-dollars
        #  rounded half to even"
        charge = round_half_even(seconds * r.price * r.gpu_count / 3600 * 1_000_000)
        # "provider part = floor(charge × rental_fees_rate in force when D closes)"
        return math.floor(charge * rate)

    def day_figures(self, D: date, rate: Fraction) -> dict[str, DayFigures]:
        """What day D pays each provider (hotkey), as known now, with the given rate."""
        figs: dict[str, DayFigures] = {}
        d_start, d_end = day_start(D), day_start(D + ONE_DAY)
        for r in self.rentals.values():
            if r.started_at >= d_end or (r.stopped_at is not None and r.stopped_at <= d_start):
                continue  # does not overlap D
            part = self.fee_provider_part(r, D, rate)
            f = figs.setdefault(r.hotkey, DayFigures())
            f.fee += part
            # "an executor with a `rental.incident` whose `at` falls in D earns nothing of D"
            if (r.executor_id, D) in self.incidents:
                f.forfeited_usd += part
        for (hotkey, ex), amount in self.accruals.get(D, {}).items():
            f = figs.setdefault(hotkey, DayFigures())
            f.emission += amount
            if (ex, D) in self.incidents:
                f.forfeited_rao += amount
        return figs

    @staticmethod
    def after_forfeits(figs: dict[str, DayFigures]) -> dict[str, tuple[int, int]]:
        return {hk: (f.fee - f.forfeited_usd, f.emission - f.forfeited_rao) for hk, f in figs.items()}

    def day_prices(self, D: date, closing_line: int) -> tuple[Fraction, Fraction]:
        # "Prices: the `epoch.closed` with the greatest closed_at before D+1 00:00 (on a tie, the later in
        #  the log), else the one that closes D."
        limit = day_start(D + ONE_DAY)
        best: tuple[datetime, int, Fraction, Fraction] | None = None
        for entry in self.epoch_log:
            if entry[0] < limit and (best is None or (entry[0], entry[1]) > (best[0], best[1])):
                best = entry
        if best is None:
            best = next(e for e in self.epoch_log if e[1] == closing_line)
        return best[2], best[3]

    def close_day(self, D: date, line_no: int) -> None:
        rate = self.params["rental_fees_rate"]
        figs = self.day_figures(D, rate)
        adjustments = self.adjustments.pop(D, {})
        tao_usd, alpha_tao = self.day_prices(D, line_no)
        statement: dict[str, dict[str, Any]] = {}
        hotkeys = set(figs) | set(adjustments) | {hk for hk, c in self.carried.items() if c != 0}
        for hk in sorted(hotkeys):
            f = figs.get(hk, DayFigures())
            adj_usd, adj_rao = adjustments.get(hk, [0, 0])
            carried_in = self.carried.get(hk, 0)
            # "usd = rental_fee − forfeited_usd + adjustment_usd (micro-USD)"
            usd = f.fee - f.forfeited_usd + adj_usd
            # "rao = emission − forfeited_rao + adjustment_rao + carried_in + ⌊usd × 1000 / (tao_usd × alpha_tao)⌋"
            rao = (
                f.emission - f.forfeited_rao + adj_rao + carried_in
                + math.floor(Fraction(usd * 1000) / (tao_usd * alpha_tao))
            )
            payable = max(rao, 0)
            carried = min(rao, 0)
            self.carried[hk] = carried
            row = {
                "coldkey": self.hotkey_coldkey[hk],
                "emission_rao": f.emission,
                "rental_fee_usd_micros": f.fee,
                "forfeited_rao": f.forfeited_rao,
                "forfeited_usd_micros": f.forfeited_usd,
                "adjustment_rao": adj_rao,
                "adjustment_usd_micros": adj_usd,
                "payable_rao": payable,
                "carried_rao": carried,
            }
            # "`day.closed` lists every provider with a non-zero figure or a carried rest that day"
            if any(v != 0 for k, v in row.items() if k != "coldkey"):
                statement[hk] = row
        self.closed_days[D] = ClosedDay(
            day=D, line=line_no, rate=rate, prices=(tao_usd, alpha_tao),
            booked=self.after_forfeits(figs), statement=statement,
        )
        self.unpaid_days.append(D)
        self.out_days[D.isoformat()] = {
            "closed_by_line": line_no,
            "prices": {"tao_usd": fmt_fraction(tao_usd), "alpha_tao": fmt_fraction(alpha_tao)},
            "providers": statement,
        }

    def book_late_changes(self) -> None:
        """'A closed day never changes. When an event changes what a closed day D should have paid a provider
        (a late stop, start or stop correction, a late incident), the change in what D pays after forfeits,
        computed with D's rate, is booked on the oldest open day as adjustment_usd_micros (fees) and
        adjustment_rao (a late incident's emission). A change to a forfeited executor-day is 0.'"""
        assert self.oldest_open is not None
        for D in sorted(self.closed_days):
            cd = self.closed_days[D]
            now = self.after_forfeits(self.day_figures(D, cd.rate))
            for hk in sorted(set(now) | set(cd.booked)):
                new_usd, new_rao = now.get(hk, (0, 0))
                old_usd, old_rao = cd.booked.get(hk, (0, 0))
                if (new_usd, new_rao) != (old_usd, old_rao):
                    adj = self.adjustments.setdefault(self.oldest_open, {}).setdefault(hk, [0, 0])
                    adj[0] += new_usd - old_usd
                    adj[1] += new_rao - old_rao
            cd.booked = now

    # ============================================================================================
    # 3.5 Payouts (planning only)
    # ============================================================================================
    def run_payouts(self, closed_at: datetime) -> None:
        # "At the first `epoch.closed` at or after payout_hour_utc of each UTC day T"
        assert self.next_run_day is not None
        while closed_at >= day_start(self.next_run_day) + timedelta(hours=self.params["payout_hour_utc"]):
            self.payout_run(self.next_run_day)
            self.next_run_day = self.next_run_day + ONE_DAY

    def payout_run(self, T: date) -> None:
        # "pay every closed day D ≤ T − payout_delay_days not yet paid, summed per coldkey (plus what was
        #  carried forward). A sum under min_payout_rao carries forward (`payout.deferred`)."
        last = T - timedelta(days=self.params["payout_delay_days"])
        days = [day for day in self.unpaid_days if day <= last]
        self.unpaid_days = [day for day in self.unpaid_days if day > last]
        sums: dict[str, int] = dict(self.carry_forward)
        had_carry = any(v != 0 for v in self.carry_forward.values())
        self.carry_forward = {}
        for D in days:
            for row in self.closed_days[D].statement.values():
                sums[row["coldkey"]] = sums.get(row["coldkey"], 0) + row["payable_rao"]
        paid: dict[str, int] = {}
        deferred: dict[str, int] = {}
        for ck in sorted(sums):
            amount = sums[ck]
            if amount == 0:
                continue
            if amount < self.params["min_payout_rao"]:
                deferred[ck] = amount
                self.carry_forward[ck] = amount
            else:
                paid[ck] = amount
        if days or had_carry:
            self.out_payouts[T.isoformat()] = {
                "billing_days": [D.isoformat() for D in days],
                "paid": paid,
                "deferred": deferred,
            }

    # ============================================================================================
    def result(self) -> dict[str, Any]:
        return {
            "refused": self.refused,
            "epochs": self.out_epochs,
            "scores": self.out_scores,
            "portions": self.out_portions,
            "days": self.out_days,
            "payouts": self.out_payouts,
        }


def split_lines(blob: bytes) -> list[bytes]:
    """File bytes -> lines (1-based numbering is the index + 1). A final newline does not add a line."""
    parts = blob.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


def run(lines: list[bytes]) -> dict[str, Any]:
    """Fold the input lines (file order) and return the oracle's figures (JSON-serialisable)."""
    oracle = Oracle()
    for i, raw in enumerate(lines, start=1):
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        oracle.feed(i, raw)
    return oracle.result()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Reference oracle for SPEC.md money rules")
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    args = ap.parse_args(argv)
    with open(args.input, "rb") as fh:
        lines = split_lines(fh.read())
    result = run(lines)
    text = json.dumps(result, sort_keys=True, indent=1)
    if args.output == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
