"""`sn51.output.whole_file`: an output written whole or not at all, never over an input, links and streams kept."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sn51.output import OutputError, whole_file


def test_a_failed_write_leaves_the_earlier_output_and_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"earlier\n")
    with pytest.raises(RuntimeError), whole_file(out) as f:
        f.write(b"half of a new output")
        raise RuntimeError("the disk is full")
    assert out.read_bytes() == b"earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_a_completed_write_replaces_the_output_with_ordinary_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"earlier\n")
    with whole_file(out) as f:
        f.write(b"new\n")
    assert out.read_bytes() == b"new\n"
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_the_output_may_not_be_an_input_a_directory_or_in_a_missing_folder(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"the input\n")
    (tmp_path / "link.jsonl").symlink_to(log)
    for target, message in ((log, "is the input"), (tmp_path / "link.jsonl", "is the input"),
                            (tmp_path, "is a directory"), (tmp_path / "no" / "x", "does not exist")):
        with pytest.raises(OutputError, match=message), whole_file(target, [log]):
            pass
    assert log.read_bytes() == b"the input\n"


def test_a_link_keeps_pointing_at_its_target_which_gets_the_output(tmp_path: Path) -> None:
    target, link = tmp_path / "target.jsonl", tmp_path / "link.jsonl"
    target.write_bytes(b"earlier\n")
    link.symlink_to(target)
    with whole_file(link) as f:
        f.write(b"new\n")
    assert link.is_symlink() and target.read_bytes() == b"new\n"


def test_a_fifo_is_written_as_a_stream_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with whole_file(fifo) as f:
        f.write(b"streamed\n")
    reader.join(10)
    assert got == [b"streamed\n"] and fifo.is_fifo()
