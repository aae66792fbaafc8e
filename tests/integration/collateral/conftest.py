"""A real anvil node (npm `@foundry-rs/anvil-linux-amd64`) per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from collateral_anvil import AnvilNode, start_anvil
from web3 import Web3


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    node = start_anvil()
    try:
        yield node
    finally:
        node.resume()
        node.proc.terminate()
        node.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def w3(anvil: AnvilNode) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))
