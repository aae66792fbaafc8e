"""The trustee: sends `slashCollateral` for each planned slash request, never twice for one incident.

A `collateral.slash_requested` becomes a `SlashPlan` stored before anything is sent (by the projection, in the
same transaction as the event). Each pass over an open plan first reads the chain:

1. a Slashed log of the executor whose (url, md5) is this request's tag (`chain.slash_tag`), with
   `confirmations` blocks on top: the plan has landed, done;
2. a transaction already signed for the plan that is still pending, or whose log is not yet confirmed: wait;
   one the node no longer knows (dropped, or removed by a reorg): send the very same signed transaction
   again (same nonce: it can land at most once); if its nonce was used by something else meanwhile, sign it
   anew (step 1 just showed it has not landed);
3. never sent: read the executor's collateral; nothing there: `nothing_to_slash`; else sign, store the signed
   transaction and its hash, then send it. A first incident slashes the requested amount, a repeat incident
   the whole balance read just before signing (the contract caps both at the balance).

The key comes from a file (`SN51_TRUSTEE_KEY_FILE`) or the environment (`SN51_TRUSTEE_KEY`), set by the
operator; it is never logged. Without it the trustee is off and says so; plans stay stored, unsent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast

import structlog
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import AsyncWeb3
from web3.types import FilterParams

from schemas.envelope import Event
from schemas.events import CollateralSlashRequested
from services.collateral import chain

log = structlog.get_logger("collateral.trustee")
REQUEST_TYPE = "collateral.slash_requested"  # the event a `SlashPlan` carries out (its `request_id`)

KEY_FILE_ENV = "SN51_TRUSTEE_KEY_FILE"
KEY_ENV = "SN51_TRUSTEE_KEY"
FINAL = frozenset({"landed", "nothing_to_slash", "failed"})


@dataclass(frozen=True, slots=True)
class SlashPlan:
    request_id: str
    executor_id: str
    amount_wei: int
    reason: str
    status: str = "planned"  # planned | sent | landed | nothing_to_slash | failed
    from_block: int | None = None  # the chain head before anything was signed: where to look for the log
    tx_hash: str | None = None
    raw_tx: str | None = None
    slashed_wei: int | None = None
    landed_tx_hash: str | None = None
    attempts: int = 0
    detail: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @staticmethod
    def of(request: Event) -> SlashPlan:
        d = request.data
        assert isinstance(d, CollateralSlashRequested)
        return SlashPlan(request.id, d.executor_id, d.amount_wei, d.reason)


def about(plan: SlashPlan) -> dict[str, str]:
    """The log fields naming the event a plan carries out."""
    return {"event_id": plan.request_id, "event_type": REQUEST_TYPE}


class PlanStore(Protocol):
    async def plan(self, plan: SlashPlan) -> SlashPlan:
        """Store a new plan (or return the one already stored under its request id)."""
        ...

    async def update(self, plan: SlashPlan) -> None: ...

    async def open_plans(self) -> list[SlashPlan]: ...


def load_key(environ: dict[str, str] | None = None) -> LocalAccount | None:
    env = os.environ if environ is None else environ
    path = env.get(KEY_FILE_ENV)
    secret = Path(path).read_text().strip() if path else env.get(KEY_ENV, "").strip()
    return Account.from_key(secret) if secret else None


class Trustee:
    def __init__(self, w3: AsyncWeb3[Any], contract_address: str, chain_id: int, account: LocalAccount | None,
                 store: PlanStore, confirmations: int = 12, poll_seconds: float = 2.0) -> None:
        self.w3 = w3
        self.contract = w3.eth.contract(address=chain.checksum(contract_address), abi=chain.ABI)  # type: ignore[call-overload]
        self.chain_id = chain_id
        self.account = account
        self.store = store
        self.confirmations = confirmations
        self.poll_seconds = poll_seconds

    @property
    def enabled(self) -> bool:
        return self.account is not None

    async def run(self, stop: asyncio.Event) -> None:
        if not self.enabled:
            log.warning("collateral.trustee.off", reason=f"no key: set {KEY_FILE_ENV} or {KEY_ENV}")
            return
        log.info("collateral.trustee.on", address=self.account.address)  # type: ignore[union-attr]
        backoff = self.poll_seconds
        while not stop.is_set():
            failed = False
            try:
                for plan in await self.store.open_plans():
                    try:  # one plan's trouble (a revert, the node away) does not hold up the others
                        await self.settle(plan)
                    except Exception as exc:
                        failed = True
                        log.warning("collateral.trustee.retry", **about(plan),
                                    error=type(exc).__name__, detail=str(exc)[:200])
            except Exception as exc:  # the store is away
                failed = True
                log.warning("collateral.trustee.retry", error=type(exc).__name__, detail=str(exc)[:200])
            backoff = min(backoff * 2, 60.0) if failed else self.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)

    async def settle(self, plan: SlashPlan) -> SlashPlan:
        """One pass over one plan: read the chain, then send at most one transaction."""
        if plan.final or self.account is None:
            return plan
        head = await self.w3.eth.block_number
        if plan.from_block is None:
            plan = replace(plan, from_block=head)
            await self.store.update(plan)
        landed = await self._landed_log(plan)
        if landed is not None:
            if head - int(landed["blockNumber"]) >= self.confirmations:
                plan = replace(plan, status="landed", slashed_wei=int(landed["args"]["amount"]),
                               landed_tx_hash=chain.hex0x(landed["transactionHash"]).lower())
                await self.store.update(plan)
                log.info("collateral.slash.landed", **about(plan), tx_hash=plan.landed_tx_hash,
                         slashed_wei=plan.slashed_wei)
            return plan
        if plan.tx_hash is not None:
            return await self._follow_up(plan)
        return await self._first_send(plan)

    async def _landed_log(self, plan: SlashPlan) -> Any | None:
        url, md5 = chain.slash_tag(plan.request_id)
        executor_topic = "0x" + chain.executor_bytes(plan.executor_id).ljust(32, b"\0").hex()
        raw_logs = await self.w3.eth.get_logs(cast(FilterParams, {
            "address": self.contract.address, "fromBlock": plan.from_block, "toBlock": "latest",
            "topics": [chain.TOPIC_OF["Slashed"], executor_topic],
        }))
        for raw in raw_logs:
            decoded = self.contract.events.Slashed().process_log(raw)
            if decoded["args"]["url"] == url and bytes(decoded["args"]["urlContentMd5Checksum"]) == md5:
                return decoded
        return None

    async def _first_send(self, plan: SlashPlan) -> SlashPlan:
        balance = int(await self.contract.functions.collaterals(chain.executor_bytes(plan.executor_id)).call())
        amount = balance if plan.reason == "repeat_incident" else min(plan.amount_wei, balance)
        if amount <= 0:
            plan = replace(plan, status="nothing_to_slash", detail=f"collateral {balance} wei")
            await self.store.update(plan)
            log.info("collateral.slash.nothing", **about(plan), balance_wei=balance)
            return plan
        return await self._sign_and_send(plan, amount)

    async def _sign_and_send(self, plan: SlashPlan, amount: int) -> SlashPlan:
        assert self.account is not None
        url, md5 = chain.slash_tag(plan.request_id)
        nonce = await self.w3.eth.get_transaction_count(self.account.address, "pending")
        tx = await self.contract.functions.slashCollateral(
            chain.executor_bytes(plan.executor_id), amount, url, md5,
        ).build_transaction({"from": self.account.address, "nonce": nonce, "chainId": self.chain_id})
        signed = self.account.sign_transaction(tx)
        plan = replace(plan, status="sent", tx_hash=chain.hex0x(signed.hash).lower(),
                       raw_tx=chain.hex0x(signed.raw_transaction), attempts=plan.attempts + 1)
        await self.store.update(plan)  # stored before it is sent: a crash after this resends the same tx
        await self._send_raw(plan)
        log.info("collateral.slash.sent", **about(plan), tx_hash=plan.tx_hash, amount_wei=amount)
        return plan

    async def _send_raw(self, plan: SlashPlan) -> None:
        assert plan.raw_tx is not None
        try:
            await self.w3.eth.send_raw_transaction(HexStr(plan.raw_tx))
        except Exception as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text:
                return
            raise

    async def _follow_up(self, plan: SlashPlan) -> SlashPlan:
        assert plan.tx_hash is not None
        receipt = await self._maybe(self.w3.eth.get_transaction_receipt(plan.tx_hash))  # type: ignore[arg-type]
        if receipt is not None:
            if int(receipt["status"]) == 0:
                plan = replace(plan, status="failed", detail=f"reverted in block {receipt['blockNumber']}")
                await self.store.update(plan)
                log.error("collateral.slash.reverted", **about(plan), tx_hash=plan.tx_hash)
            return plan  # mined: its log is waiting for its confirmations
        if await self._maybe(self.w3.eth.get_transaction(plan.tx_hash)) is not None:  # type: ignore[arg-type]
            return plan  # pending
        try:
            await self._send_raw(plan)  # the very same transaction: it can land only once
            log.warning("collateral.slash.resent", **about(plan), tx_hash=plan.tx_hash)
            return plan
        except Exception as exc:
            if "nonce" not in str(exc).lower():
                raise
        # Its nonce went to another transaction, and the chain shows no Slashed log for this plan: sign anew.
        balance = int(await self.contract.functions.collaterals(chain.executor_bytes(plan.executor_id)).call())
        amount = balance if plan.reason == "repeat_incident" else min(plan.amount_wei, balance)
        if amount <= 0:
            plan = replace(plan, status="nothing_to_slash", detail=f"collateral {balance} wei")
            await self.store.update(plan)
            return plan
        return await self._sign_and_send(plan, amount)

    @staticmethod
    async def _maybe(call: Any) -> Any | None:
        try:
            return await call
        except Exception as exc:
            if "not found" in str(exc).lower() or type(exc).__name__ in ("TransactionNotFound",):
                return None
            raise
