"""Where a command writes its output file: whole or not at all, never over its own input.

`whole_file(path)` writes into a temporary file beside the target and moves it into place once the command
has written everything (`os.replace`, atomic on one file system): a command that fails (a refused argument,
a full disk, an unreachable database) leaves an earlier output as it was and no partial file behind. A
symbolic link keeps pointing where it did (its target is replaced); a path that is not a regular file (a
FIFO, a device such as /dev/stdout) is written in place, as a stream. `OutputError` carries the one line a
command prints: the target is a directory, its folder does not exist, or it is one of the command's inputs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO


class OutputError(Exception):
    """The output cannot be written: the message is one line for the command to print."""


def check_output(path: Path, inputs: Sequence[Path] = ()) -> Path:
    """The file to write for `path` (a link's target), or `OutputError`."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise OutputError(f"{path} is a directory")
    if not target.parent.is_dir():
        raise OutputError(f"the folder of {path} does not exist")
    for given in inputs:
        with contextlib.suppress(OSError):
            if target.exists() and os.path.samefile(target, given):
                raise OutputError(f"{path} is the input {given}: writing it would destroy what is read")
    return target


@contextlib.contextmanager
def whole_file(path: Path, inputs: Sequence[Path] = ()) -> Iterator[BinaryIO]:
    """A binary file to write `path` through (see the module docstring)."""
    target = check_output(path, inputs)
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        with target.open("wb") as stream:  # a FIFO or a device: a stream, not a file to replace
            yield stream
        return
    temp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the mode open() gives, less the umask
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise

