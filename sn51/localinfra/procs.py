"""Detached processes with pid files, port probes and the state folder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import psutil

HOST = "127.0.0.1"


class InfraError(Exception):
    """A problem an operator can act on; the CLI prints it as one line."""


def repo_root() -> Path:
    """The checkout this package runs from (editable install), else the working directory."""
    candidate = Path(__file__).resolve().parents[2]
    return candidate if (candidate / "pyproject.toml").is_file() else Path.cwd()


def state_dir() -> Path:
    configured = os.environ.get("SN51_STATE_DIR")
    path = Path(configured).resolve() if configured else repo_root() / ".sn51"
    (path / "logs").mkdir(parents=True, exist_ok=True)
    return path


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise InfraError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise InfraError(f"{name}={port} is outside 1-65535")
    return port


def port_open(port: int, host: str = HOST, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


def _pid_file(name: str) -> Path:
    return state_dir() / f"{name}.pid"


def log_file(name: str) -> Path:
    return state_dir() / "logs" / f"{name}.log"


def spawn_detached(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    log_name: str | None = None,
    cwd: str | None = None,
) -> int:
    """Start argv in its own session (it outlives this process), log to logs/<log_name>.log, record its pid."""
    log_path = log_file(log_name or name)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
            cwd=cwd,
        )
    record = {"pid": proc.pid, "created": psutil.Process(proc.pid).create_time(), "argv": list(argv)}
    _pid_file(name).write_text(json.dumps(record))
    return proc.pid


def running_pid(name: str) -> int | None:
    """The pid recorded for name if that very process is still alive (not a reused pid, not a zombie)."""
    path = _pid_file(name)
    try:
        record = json.loads(path.read_text())
        proc = psutil.Process(int(record["pid"]))
        if abs(proc.create_time() - float(record["created"])) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return int(proc.pid)
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None


def stop(name: str, timeout: float = 5.0) -> bool:
    """Stop the process recorded under name (and its session); True if one was running."""
    pid = running_pid(name)
    _pid_file(name).unlink(missing_ok=True)
    if pid is None:
        return False
    terminate(pid, timeout)
    return True


def terminate(pid: int, timeout: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: _gone(pid), timeout, interval=0.01):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: _gone(pid), 2.0, interval=0.01)


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie its (possibly foreign) parent has not reaped yet."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return True


def read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """One `up`/`down` at a time per state folder (two shells, a test session and a developer)."""
    with open(state_dir() / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
