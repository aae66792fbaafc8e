"""anvil, the local EVM node, from contracts/node_modules (installed by `npm ci` in contracts/)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from sn51.localinfra.procs import HOST, repo_root

DEFAULT_PORT = 18545


def anvil_bin() -> Path:
    return repo_root() / "contracts" / "node_modules" / ".bin" / "anvil"


def anvil_installed() -> bool:
    return anvil_bin().exists()


def anvil_argv(port: int, binary: Path | None = None) -> Sequence[str]:
    return [str(binary or anvil_bin()), "--host", HOST, "--port", str(port), "--quiet"]


def anvil_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def anvil_answers(url: str, timeout: float = 1.0) -> bool:
    """True when url answers eth_chainId."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError):
        return False
