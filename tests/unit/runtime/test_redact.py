"""No secret in a log or on a terminal: URLs reduced or masked, the database URL checked before asyncpg reads
it, every rendered log line redacted, libraries kept out of DEBUG, and a stopped service's one line."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
import typer
from typer.testing import CliRunner

from services.runtime import logging as rlog
from services.runtime.db import check_database_url
from services.runtime.redact import mask_password, redact_text, redact_url
from sn51.service import register

SECRETS = ("s3cret", "TOKEN", "APIKEY", "RPCPASS", "hunter2")


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://postgres@127.0.0.1:5432/sn51", "postgresql://127.0.0.1:5432"),
    ("wss://user:TOKEN@node.example:443/ws?apikey=APIKEY", "wss://node.example:443"),
    ("http://rpc:RPCPASS@127.0.0.1:8545/v3/APIKEY", "http://127.0.0.1:8545"),
    ("ws://[::1]:9944", "ws://[::1]:9944"),
    ("postgresql://u:p@h1:5432,h2:5433/db", "postgresql://h1:5432,h2:5433"),
    # a '#', '/' or '?' left unencoded in the password: what follows the scheme cannot be told apart from it
    ("postgresql://user:s3cret#PW@127.0.0.1:5432/db", "postgresql://***"),
    ("postgresql://user:1234/s3cret@127.0.0.1:5432/db", "postgresql://***"),
    ("postgresql://user:s3cret?x@h/db", "postgresql://***"),
])
def test_a_url_is_reduced_to_where_it_points(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://postgres@127.0.0.1:5432/sn51", "postgresql://postgres@127.0.0.1:5432/sn51"),
    ("postgresql://app:hunter2@db:5432/sn51?sslpassword=s3cret&x=1", "postgresql://app:***@db:5432/sn51?sslpassword=***&x=1"),
    ("postgresql://user:s3cret#PW@127.0.0.1:5432/db", "postgresql://***"),
    ("127.0.0.1:9092", "127.0.0.1:9092"),
])
def test_a_url_for_a_person_keeps_all_but_its_password(url: str, shown: str) -> None:
    assert mask_password(url) == shown


def test_text_is_redacted_wherever_a_url_or_a_secret_pair_stands() -> None:
    text = ('{"event": "Successfully disconnected from: http://rpc:RPCPASS@127.0.0.1:8545/v3/APIKEY", '
            '"detail": "GET /ws?apikey=APIKEY&page=2 token=TOKEN db_password=hunter2"}')
    out = redact_text(text)
    assert not any(s in out for s in SECRETS), out
    assert "http://127.0.0.1:8545" in out and "page=2" in out
    assert redact_text("nothing to hide: 3 = 3") == "nothing to hide: 3 = 3"


@pytest.mark.parametrize("url", [
    "postgresql://user:s3cret#PW@127.0.0.1:5432/db",  # asyncpg: "invalid literal for int() ...: 's3cret'"
    "postgresql://user:s3cret@127.0.0.1:99999/db",
    "mysql://user:s3cret@127.0.0.1/db",
])
def test_a_database_url_that_does_not_parse_is_refused_without_its_text(url: str) -> None:
    with pytest.raises(ValueError) as info:
        check_database_url(url)
    assert "s3cret" not in str(info.value) and "DATABASE_URL" in str(info.value)


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:5432/sn51", "postgres://u:pa%23ss@h:5432/d", "postgresql://u@h1:1,h2:2/d",
    "postgresql:///sn51?host=/var/run/postgresql",
])
def test_a_database_url_that_parses_is_taken(url: str) -> None:
    assert check_database_url(url) == url


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_log_line_is_redacted_and_libraries_stay_out_of_debug(capsys: pytest.CaptureFixture[str]) -> None:
    rlog.configure("DEBUG")
    try:
        logging.getLogger("web3.providers").debug("Making request HTTP. URI: http://rpc:RPCPASS@h:8545/APIKEY")
        logging.getLogger("web3.providers").info("Successfully disconnected from: http://rpc:RPCPASS@h:8545/APIKEY")
        structlog.get_logger("settlement.wallet").info("settlement.live", endpoint="wss://u:TOKEN@node:443/ws")
        rlog.get_logger("billing").debug("a project debug line")
        try:
            raise ConnectionError("cannot reach postgresql://app:hunter2@db:5432/sn51")
        except ConnectionError:
            rlog.get_logger("billing").exception("failed")
    finally:
        rlog.configure("INFO")
    out = capsys.readouterr().out
    assert not any(s in out for s in SECRETS), out
    lines = _lines(out)
    assert [line["event"] for line in lines] == [
        "Successfully disconnected from: http://h:8545", "settlement.live", "a project debug line", "failed"]
    assert lines[1]["endpoint"] == "wss://node:443"
    assert "postgresql://db:5432" in str(lines[3]["exception"])


def test_a_service_that_stops_says_why_in_one_json_line_and_one_stderr_line(monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    monkeypatch.setenv("DATABASE_URL", "postgresql://user:s3cret#PW@127.0.0.1:5432/db")
    result = CliRunner().invoke(app, ["service", "billing"])
    rlog.configure("INFO")
    assert result.exit_code == 1
    assert "s3cret" not in result.output and "Traceback (most recent call last)" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "sn51 service billing: stopped: ValueError: DATABASE_URL does not parse: a bad port, or a '#', '/', '?' or "
        "'@' in its user name or password that is not percent-encoded"]
    (line,) = _lines(result.stdout)
    assert line["event"] == "service stopped" and line["service"] == "billing" and line["level"] == "error"
    assert "ValueError" in str(line["exception"])
