"""Upcasters: old versions of an event type stay readable.

An upcaster is keyed by (type, schema_version) and turns the `data` of that version into the data of the
next version; `upcast` applies them in a chain up to the current version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.events import CURRENT_VERSION

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(type_: str, version: int) -> Callable[[Upcaster], Upcaster]:
    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(type_, version)] = fn
        return fn

    return register


class UnknownVersion(ValueError):
    pass


def upcast(type_: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    current = CURRENT_VERSION[type_]
    if version > current or version < 0:
        raise UnknownVersion(f"{type_} has no schema_version {version} (current {current})")
    while version < current:
        fn = UPCASTERS.get((type_, version))
        if fn is None:
            raise UnknownVersion(f"no upcaster for {type_} v{version}")
        data = fn(data)
        version += 1
    return data


@upcaster("executor.listed", 0)
def _executor_listed_v0(data: dict[str, Any]) -> dict[str, Any]:
    """v0 (the pre-sysbox backend) named the price `price_usd` and had no `sysbox` flag; such executors
    predate sysbox, so they are listed without it."""
    out = {k: v for k, v in data.items() if k != "price_usd"}
    if "price_usd" in data:
        out["price_per_gpu_usd"] = data["price_usd"]
    out.setdefault("sysbox", False)
    return out
