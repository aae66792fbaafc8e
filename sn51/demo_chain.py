"""The demo's EVM side: deploy a fresh collateral contract on the local anvil and deposit collateral for the
simulated executors, so the collateral service watches real logs and, as trustee, slashes on incidents.

anvil's default dev accounts (the well-known test mnemonic) play the roles: account 0 deploys and is the
trustee, provider i deposits from account 1 + i mod 9. Nothing here is a secret: these keys exist on every
anvil.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

MNEMONIC = "test test test test test test test test test test test junk"
BURN = "0x000000000000000000000000000000000000dEaD"
MIN_INCREASE_WEI = 10**15
DECISION_TIMEOUT_S = 3600
DEPOSIT_WEI = 10 * 10**18  # 10 TAO per executor: several days of fees of the largest simulated node


@dataclass(frozen=True)
class Collateral:
    rpc_url: str
    chain_id: int
    contract: str
    start_block: int
    trustee_key: str
    deposits: int


def dev_key(index: int) -> str:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return str(account.key.to_0x_hex())


def deploy_and_deposit(rpc_url: str, executors: list[tuple[str, int]], timeout: float = 20.0) -> Collateral:
    """Deploy Collateral (trustee: dev account 0) and deposit for each (executor_id, provider index)."""
    from eth_account import Account
    from web3 import Web3

    from services.collateral import chain

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    trustee = Account.from_key(dev_key(0))
    factory = w3.eth.contract(abi=chain.ABI, bytecode=chain.BYTECODE)
    tx = factory.constructor(51, trustee.address, BURN, MIN_INCREASE_WEI, DECISION_TIMEOUT_S).transact(
        {"from": trustee.address})
    receipt: Any = w3.eth.wait_for_transaction_receipt(tx, timeout=timeout)
    address = receipt["contractAddress"]
    contract = w3.eth.contract(address=address, abi=chain.ABI)
    accounts = list(w3.eth.accounts)
    hashes = []
    for executor_id, provider in executors:
        sender = accounts[1 + provider % (len(accounts) - 1)]
        hashes.append(contract.functions.deposit(uuid.UUID(executor_id).bytes).transact(
            {"from": sender, "value": DEPOSIT_WEI}))
    for h in hashes:
        w3.eth.wait_for_transaction_receipt(h, timeout=timeout)
    return Collateral(rpc_url, int(w3.eth.chain_id), str(address), int(receipt["blockNumber"]), dev_key(0),
                      len(hashes))


def mine(rpc_url: str, blocks: int = 1) -> None:
    """Mine blocks so the watcher's confirmations advance (anvil mines only on transactions)."""
    from web3 import Web3

    Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 5})).provider.make_request(
        "anvil_mine", [hex(blocks)])  # type: ignore[arg-type]
