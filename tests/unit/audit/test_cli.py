"""`sn51 statement` and `sn51 audit verify|export` on bad input: one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from sn51.audit.cli import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _one_line(result: Result, *needles: str) -> None:
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    assert all(n in output for n in needles), output


@pytest.mark.parametrize(("record", "message"), [
    ({"kind": "published", "service": "billing", "seq": 1, "event": "a string"}, "not a JSON object"),
    ({"kind": "published", "service": "billing", "seq": 1}, "not a JSON object"),
    ({"kind": "published", "service": "billing", "seq": 1, "event": {"id": "x", "type": "day.closed", "data": {}}},
     "its event is not valid"),
    ({"kind": 3, "service": "billing"}, "must be strings"),
    ([1, 2], "not an audit record"),
])
def test_a_bad_export_line_is_named_in_one_line(record: object, message: str, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps(record) + "\n")
    _one_line(CliRunner().invoke(_app(), ["statement", "--hotkey", "hk", "--export", str(export)]),
              "export line 1", message)
    _one_line(CliRunner().invoke(_app(), ["audit", "verify", "--input", str(export)]), "export line 1", message)


@pytest.mark.parametrize(("args", "message"), [
    (["--day", "notaday"], "--day must be a day"),
    (["--day", "2026-13-45"], "--day must be a day"),
    (["--from", "2026-11-05", "--to", "2026-11-01"], "is after --to"),
])
def test_statement_days_are_checked(args: list[str], message: str, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("")
    _one_line(CliRunner().invoke(_app(), ["statement", "--hotkey", "hk", "--input", str(log), *args]), message)


def test_export_keeps_an_earlier_export_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    earlier = tmp_path / "export.jsonl"
    earlier.write_text("an earlier export\n")
    result = CliRunner().invoke(_app(), ["audit", "export", "--output", str(earlier),
                                         "--database-url", "postgresql://postgres@127.0.0.1:1/none"])
    _one_line(result, "cannot reach the database")
    assert earlier.read_text() == "an earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl"]


def test_verify_of_an_empty_export_does_not_pass(tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text("\n")
    _one_line(CliRunner().invoke(_app(), ["audit", "verify", "--input", str(export)]), "nothing to verify")
