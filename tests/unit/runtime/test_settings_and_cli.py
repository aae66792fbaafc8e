"""Settings from the environment, schema names, the API without a database, and `sn51 service NAME`."""

from __future__ import annotations

import asyncio
import sys
import types

import httpx
import pytest
import typer
from typer.testing import CliRunner

from services.runtime.api import create_app
from services.runtime.db import schema_name
from services.runtime.settings import Settings
from sn51.service import load_spec, register, run_loop


def test_settings_read_the_plain_and_prefixed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "10.0.0.1:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/x")
    monkeypatch.setenv("SN51_API_PORT", "9001")
    monkeypatch.setenv("SN51_TOPIC_PREFIX", "dev.")
    s = Settings(service="billing")
    assert (s.kafka_bootstrap, s.database_url, s.api_port) == ("10.0.0.1:9092", "postgresql://u@db/x", 9001)
    assert s.group == "sn51-billing"
    assert s.topic("sn51.input") == "dev.sn51.input"


def test_schema_names_are_safe_identifiers() -> None:
    assert schema_name("billing") == "billing"
    assert schema_name("rt-test") == "rt_test"
    with pytest.raises(ValueError):
        schema_name('x"; drop table inbox; --')


async def test_health_is_unavailable_without_a_database_and_metrics_are_served() -> None:
    app = create_app("scoring")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["service"] == "scoring"
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "sn51_events_processed" in metrics.text


def test_unknown_service_is_a_one_line_error() -> None:
    with pytest.raises(LookupError, match="unknown service 'nosuch'"):
        load_spec("nosuch")
    with pytest.raises(LookupError, match="unknown service"):
        load_spec("../etc")
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A command group, as `sn51` is."""

    register(app)
    result = CliRunner().invoke(app, ["service", "nosuch"])
    assert result.exit_code == 2
    assert "unknown service 'nosuch'" in result.output


def test_load_spec_finds_the_module_level_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.runtime.service import ServiceSpec
    from tests.unit.runtime.cores import CountingCore

    good, bad = types.ModuleType("services.fake.app"), types.ModuleType("services.other.app")
    good.SPEC = ServiceSpec(name="fake", core_factory=CountingCore)  # type: ignore[attr-defined]
    bad.SPEC = "not a spec"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "services.fake.app", good)
    monkeypatch.setitem(sys.modules, "services.other.app", bad)
    assert load_spec("fake").name == "fake"
    with pytest.raises(LookupError, match="defines no SPEC"):
        load_spec("other")


@pytest.mark.parametrize(("setting", "loop_module"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_a_service_runs_on_uvloop_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, loop_module: str
) -> None:
    if setting is None:
        monkeypatch.delenv("SN51_EVENT_LOOP", raising=False)
    else:
        monkeypatch.setenv("SN51_EVENT_LOOP", setting)
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__.split(".")[0])

    run_loop(main())
    assert seen == [loop_module]
