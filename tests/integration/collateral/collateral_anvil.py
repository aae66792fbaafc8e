"""Helpers for the collateral tests: start a real anvil node, mine blocks, deploy the contract, anvil's dev
keys, run a watcher until it has caught up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from services.collateral import chain
from services.collateral.watcher import Watcher

ROOT = Path(__file__).resolve().parents[3]
ANVIL = ROOT / "contracts" / "node_modules" / ".bin" / "anvil"
MNEMONIC = "test test test test test test test test test test test junk"  # anvil's default dev accounts
CHAIN_ID = 31337
BURN = "0x000000000000000000000000000000000000dEaD"
DECISION_TIMEOUT = 3600
MIN_INCREASE = 10**15

Account.enable_unaudited_hdwallet_features()


def dev_key(i: int) -> str:
    acct = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
    return str(acct.key.to_0x_hex())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AnvilNode:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pause(self) -> None:
        """An RPC outage that keeps the chain: the process stops answering until `resume`."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


def start_anvil() -> AnvilNode:
    port = free_port()
    proc = subprocess.Popen(
        [str(ANVIL), "--port", str(port), "--host", "127.0.0.1", "--chain-id", str(CHAIN_ID), "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return AnvilNode(port, proc)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("anvil did not start")



def deploy(w3: Web3, trustee: str, burn: str = BURN) -> Any:
    """Deploy a fresh Collateral from the committed build files; returns the web3 contract."""
    factory = w3.eth.contract(abi=chain.ABI, bytecode=chain.BYTECODE)
    tx = factory.constructor(51, trustee, burn, MIN_INCREASE, DECISION_TIMEOUT).transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    return w3.eth.contract(address=receipt["contractAddress"], abi=chain.ABI)


def mine(w3: Web3, n: int) -> None:
    w3.provider.make_request("anvil_mine", [n])  # type: ignore[arg-type]


async def drain(watcher: Watcher) -> None:
    try:
        while await watcher.step():
            pass
    finally:
        await watcher.close()
