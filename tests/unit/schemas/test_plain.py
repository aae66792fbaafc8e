"""`schemas.plain`: an event written from the fields its plain data model was validated from is the event
`derive` builds from the model, byte for byte; a model that is not plain is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, StrictInt, StrictStr, ValidationError, field_serializer, field_validator

from schemas.envelope import Event, Written, derive
from schemas.events import EVENT_MODELS, Data, EarningsAccrued, ExecutorListed
from schemas.plain import PlainDeriver, not_plain

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)  # any code point a key can carry
amounts = st.integers(min_value=-(2**80), max_value=2**80)  # beyond 64 bits too: the standard library writes those
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


class Cause:
    def __init__(self, id_: str, time: datetime) -> None:
        self.id, self.time = id_, time


@st.composite
def accrued_fields(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "hotkey": draw(texts), "executor_id": draw(texts),
        "billing_day": draw(st.dates()).isoformat().rjust(10, "0"),
        "kind": draw(st.sampled_from(["emission", "rental_fee", "adjustment"])), "cause_id": draw(texts),
    }
    unit = draw(st.sampled_from(["amount_rao", "amount_usd_micros"]))
    fields[unit] = draw(amounts)
    return dict(draw(st.permutations(list(fields.items()))))  # any key order


@settings(max_examples=400)
@given(accrued_fields(), texts, times, texts, texts, texts)
def test_written_from_the_fields_is_what_derive_writes(fields: dict[str, Any], cause_id: str, time: datetime,
                                                       source: str, key: str, discriminator: str) -> None:
    cause = Cause(cause_id, time)
    written = PlainDeriver("earnings.accrued").derive(fields, cause, source, key, discriminator)
    derived = derive("earnings.accrued", EarningsAccrued(**fields), cause, source=source, key=key,
                     discriminator=discriminator)
    assert written.to_bytes() == derived.to_bytes() == Event.to_bytes(written)
    assert isinstance(written, Written)
    for name in Event.__struct_fields__:
        assert getattr(written, name) == getattr(derived, name), name


def test_a_microsecond_time_and_a_listing_are_written_alike() -> None:
    cause = Cause("c", datetime(2026, 11, 1, 23, 59, 59, 999_999, tzinfo=UTC))
    fields: dict[str, Any] = {"executor_id": "e", "hotkey": "h", "coldkey": "c", "gpu_model": "NVIDIA H200",
                              "gpu_count": 8, "price_per_gpu_usd": "2.85", "sysbox": True}
    written = PlainDeriver("executor.listed").derive(fields, cause, "s", "e")
    assert written.to_bytes() == derive("executor.listed", ExecutorListed(**fields), cause, source="s",
                                        key="e").to_bytes()


def test_fields_are_validated_by_the_model() -> None:
    accrued = PlainDeriver("earnings.accrued")
    good = {"hotkey": "h", "executor_id": "e", "billing_day": "2026-11-01", "kind": "emission", "cause_id": "c",
            "amount_rao": 1}
    for bad in ({**good, "amount_rao": "1"}, {**good, "kind": "bonus"}, {**good, "billing_day": "1 Nov"},
                {**good, "extra": 1}, {k: v for k, v in good.items() if k != "hotkey"}):
        with pytest.raises(ValidationError):
            accrued.derive(bad, Cause("c", datetime(2026, 11, 1, tzinfo=UTC)), "s", "h")


def test_an_absent_field_given_as_none_is_refused() -> None:
    """The model leaves a None amount out of its JSON: given as None, the dict would write it as null."""
    fields = {"hotkey": "h", "executor_id": "e", "billing_day": "2026-11-01", "kind": "emission", "cause_id": "c",
              "amount_rao": 1, "amount_usd_micros": None}
    with pytest.raises(ValueError, match="leave amount_usd_micros out"):
        PlainDeriver("earnings.accrued").derive(fields, Cause("c", datetime(2026, 11, 1, tzinfo=UTC)), "s", "h")


def test_which_event_models_are_plain() -> None:
    plain = {t for t, m in EVENT_MODELS.items() if not not_plain(m)}
    assert plain == {"earnings.accrued", "executor.listed", "executor.delisted"}
    with pytest.raises(TypeError, match="RentalStarted is not plain: field started_at"):
        PlainDeriver("rental.started")


class StrictByItsField(Data):
    n: int | None = Field(default=None, strict=True, exclude_if=lambda v: v is None)  # types.UnionType


def test_a_model_made_strict_by_its_fields_options_is_plain() -> None:
    assert not_plain(StrictByItsField) == []


class Lax(Data):
    n: int  # not strict: "5" would be validated as 5


class Aliased(Data):
    n: StrictInt = Field(alias="m")


class Nullable(Data):
    s: StrictStr | None  # written as null when None, not left out


class NumberLiteral(Data):
    n: Literal[0, 1]


class LeftOutWhenEmpty(Data):
    s: StrictStr = Field(exclude_if=lambda v: v == "")  # "" would be written, then left out


class LeftOutWhenZero(Data):
    n: StrictInt | None = Field(default=None, exclude_if=lambda v: not v)  # 0 left out too


class Serialized(Data):
    s: StrictStr

    @field_serializer("s")
    def _upper(self, value: str) -> str:
        return value.upper()


class Validated(Data):
    s: StrictStr

    @field_validator("s")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


@pytest.mark.parametrize(("model", "why"), [
    (Lax, ["field n"]), (Aliased, ["field n"]), (Nullable, ["field s"]), (NumberLiteral, ["field n"]),
    (LeftOutWhenEmpty, ["field s"]), (LeftOutWhenZero, ["field n"]), (Serialized, ["field_serializers"]),
    (Validated, ["field_validators"]),
])
def test_models_whose_json_may_differ_from_their_input_are_not_plain(model: type[Data], why: list[str]) -> None:
    assert not_plain(model) == why
