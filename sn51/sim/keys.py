"""Identifiers of the simulated world, all drawn from a seeded `random.Random` (never the global one)."""

from __future__ import annotations

import hashlib
import random

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_SS58_PREFIX = 42  # the generic Substrate prefix Bittensor uses: addresses start with "5"


_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string from `rng` (the same string as `uuid.UUID(int=..., version=4)`, faster)."""
    h = f"{rng.getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _base58(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def ss58(rng: random.Random) -> str:
    """A well-formed SS58 address (prefix 42, blake2b checksum) over a random 32-byte public key."""
    body = bytes([_SS58_PREFIX]) + rng.getrandbits(256).to_bytes(32, "big")
    checksum = hashlib.blake2b(b"SS58PRE" + body, digest_size=64).digest()[:2]
    return _base58(body + checksum)
