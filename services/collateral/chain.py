"""The collateral contract as the services see it: the committed ABI and bytecode, its log topics, and the
pure conversions between chain values and event values (bytes16 executor ids, addresses, md5 tags).

Nothing here does I/O beyond reading the two committed build files once at import.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any, Final

from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address

BUILD = Path(__file__).resolve().parents[2] / "contracts" / "build"
ABI: Final[list[dict[str, Any]]] = json.loads((BUILD / "Collateral.abi.json").read_text())
BYTECODE: Final[str] = "0x" + (BUILD / "Collateral.bin").read_text().strip()

# Contract event name -> the collateral.* event type it becomes.
EVENT_TYPES: Final[dict[str, str]] = {
    "Deposit": "collateral.deposited",
    "ReclaimProcessStarted": "collateral.reclaim_started",
    "Reclaimed": "collateral.reclaimed",
    "Denied": "collateral.reclaim_denied",
    "Slashed": "collateral.slashed",
}

EVENT_ABIS: Final[dict[str, dict[str, Any]]] = {
    e["name"]: e for e in ABI if e.get("type") == "event" and e["name"] in EVENT_TYPES
}
TOPICS: Final[dict[str, str]] = {
    "0x" + event_abi_to_log_topic(abi).hex(): name for name, abi in EVENT_ABIS.items()  # type: ignore[arg-type]
}
TOPIC_OF: Final[dict[str, str]] = {name: topic for topic, name in TOPICS.items()}


def executor_bytes(executor_id: str) -> bytes:
    """A UUID string as the contract's bytes16."""
    return uuid.UUID(executor_id).bytes


def executor_uuid(raw: bytes) -> str:
    """The contract's bytes16 as a canonical UUID string."""
    return str(uuid.UUID(bytes=bytes(raw)))


def checksum(address: str) -> str:
    return str(to_checksum_address(address))


def slash_tag(request_id: str) -> tuple[str, bytes]:
    """The (url, urlContentMd5Checksum) the trustee writes into `slashCollateral`: the Slashed log it produces
    names the slash request, so the chain itself answers "did this request land?"."""
    url = f"sn51:slash:{request_id}"
    return url, hashlib.md5(url.encode()).digest()


def hex0x(value: bytes | str) -> str:
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()
