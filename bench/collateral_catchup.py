"""Collateral watcher catch-up over 100,000 blocks holding a few thousand logs, on a real anvil node.

Starts anvil on a free port, deploys Collateral, writes `--logs` deposits in `--log-blocks` blocks spread over
`--blocks` blocks (empty blocks made with `anvil_mine`), then times one watcher catching up from the deployment
block to the head (confirmations on top), with the in-memory store or PostgreSQL (`--store postgres`, the
`DATABASE_URL` server, a throwaway schema). Prints one JSON object. Target: under 60 s.

    .venv/bin/python bench/collateral_catchup.py [--blocks 100000] [--logs 3000] [--store memory|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from services.collateral import chain  # noqa: E402
from services.collateral.memory import MemoryStore  # noqa: E402
from services.collateral.watcher import Watcher, WatcherConfig  # noqa: E402

ANVIL = ROOT / "contracts" / "node_modules" / ".bin" / "anvil"
CHAIN_ID = 31337


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rpc:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=300)
        self.next_id = 0

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        body = []
        for method, params in calls:
            self.next_id += 1
            body.append({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        replies = sorted(self.client.post("/", json=body).json(), key=lambda r: r["id"])
        for r in replies:
            if "error" in r:
                raise RuntimeError(r["error"])
        return [r["result"] for r in replies]


def wait_receipt(rpc: Rpc, tx: str) -> dict[str, Any]:
    for _ in range(200):
        receipt = rpc.call("eth_getTransactionReceipt", tx)
        if receipt is not None:
            return dict(receipt)
        time.sleep(0.02)
    raise RuntimeError(f"no receipt for {tx}")


def setup_chain(rpc: Rpc, blocks: int, logs: int, log_blocks: int) -> tuple[str, int]:
    accounts = rpc.call("eth_accounts")
    deployer, trustee, miners = accounts[0], accounts[1], accounts[2:]
    from eth_abi import encode

    args = encode(["uint16", "address", "address", "uint256", "uint64"],
                  [51, trustee, "0x000000000000000000000000000000000000dEaD", 10**12, 3600])
    tx = rpc.call("eth_sendTransaction", {"from": deployer, "data": chain.BYTECODE + args.hex(), "gas": hex(3_000_000)})
    receipt = wait_receipt(rpc, tx)
    address, start = receipt["contractAddress"], int(receipt["blockNumber"], 16)
    selector = "0x" + __import__("eth_utils").keccak(text="deposit(bytes16)")[:4].hex()
    rpc.call("evm_setAutomine", False)
    per_block = -(-logs // log_blocks)
    gap = max((blocks - log_blocks) // log_blocks, 0)
    sent = 0
    for _ in range(log_blocks):
        calls = []
        for i in range(min(per_block, logs - sent)):
            miner = miners[(sent + i) % len(miners)]
            executor = uuid.UUID(int=(sent + i) % len(miners) + 1).bytes  # one executor per miner
            data = selector + executor.hex().ljust(64, "0")
            calls.append(("eth_sendTransaction", [{"from": miner, "to": address, "data": data,
                                                   "value": hex(10**15), "gas": hex(100_000)}]))
        sent += len(calls)
        if calls:
            rpc.batch(calls)
        rpc.call("evm_mine")
        if gap:
            rpc.call("anvil_mine", hex(gap))
    rpc.call("evm_setAutomine", True)
    head = int(rpc.call("eth_blockNumber"), 16)
    if head - start < blocks:
        rpc.call("anvil_mine", hex(blocks - (head - start)))
    return address, start


async def catch_up(url: str, address: str, start: int, confirmations: int, batch_blocks: int,
                   store_kind: str) -> dict[str, Any]:
    pool = None
    store: Any
    if store_kind == "postgres":
        from services.collateral.store import MIGRATIONS, PgStore
        from services.runtime.db import create_pool, migrate

        service = f"collateral_bench_{secrets.token_hex(4)}"
        dsn = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        pool = await create_pool(dsn, service)
        async with pool.acquire() as conn:
            await migrate(conn, service, MIGRATIONS)
        store = PgStore(pool, CHAIN_ID, address)
    else:
        store = MemoryStore()
    cfg = WatcherConfig(rpc_url=url, contract_address=address, chain_id=CHAIN_ID, confirmations=confirmations,
                        start_block=start, batch_blocks=batch_blocks)
    watcher = Watcher(cfg, store)
    t0 = time.perf_counter()
    steps = 0
    while await watcher.step():
        steps += 1
    seconds = time.perf_counter() - t0
    await watcher.close()
    cp = await store.checkpoint()
    if store_kind == "postgres":
        assert pool is not None
        async with pool.acquire() as conn:
            published = int(await conn.fetchval("SELECT count(*) FROM collateral_logs"))
            schema = await conn.fetchval("SELECT current_schema()")
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
    else:
        published = len(store.published)
    return {"seconds": round(seconds, 3), "batches": steps, "events": published,
            "checkpoint": None if cp is None else cp.block_number}


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up only
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=100_000)
    ap.add_argument("--logs", type=int, default=3_000)
    ap.add_argument("--log-blocks", type=int, default=300, help="blocks that hold the logs")
    ap.add_argument("--batch-blocks", type=int, default=2_000)
    ap.add_argument("--confirmations", type=int, default=12)
    ap.add_argument("--store", choices=("memory", "postgres"), default="memory")
    opts = ap.parse_args()
    port = free_port()
    proc = subprocess.Popen([str(ANVIL), "--port", str(port), "--host", "127.0.0.1", "--chain-id", str(CHAIN_ID),
                             "--silent", "--accounts", "20",
                             # london + no state history: anvil 1.7.1 mines empty blocks in O(1) this way
                             # (with the default hardfork and history, each block costs O(height))
                             "--hardfork", "london", "--prune-history"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        rpc = Rpc(url)
        for _ in range(100):
            try:
                rpc.call("eth_chainId")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        t0 = time.perf_counter()
        address, start = setup_chain(rpc, opts.blocks, opts.logs, opts.log_blocks)
        setup_seconds = time.perf_counter() - t0
        head = int(rpc.call("eth_blockNumber"), 16)
        result = asyncio.run(catch_up(url, address, start, opts.confirmations, opts.batch_blocks, opts.store))
        blocks = (result["checkpoint"] or start) - start + 1
        out = {
            "bench": "collateral_catchup", "store": opts.store, "blocks": blocks, "head": head,
            "logs_on_chain": opts.logs, "events": result["events"], "batch_blocks": opts.batch_blocks,
            "batches": result["batches"], "confirmations": opts.confirmations,
            "catchup_seconds": result["seconds"], "blocks_per_second": round(blocks / result["seconds"]),
            "events_per_second": round(result["events"] / result["seconds"]),
            "setup_seconds": round(setup_seconds, 3), "target_seconds": 60,
            "ok": result["seconds"] < 60 and result["events"] == opts.logs,
        }
        print(json.dumps(out))
        return 0 if out["ok"] else 1
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
