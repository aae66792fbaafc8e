"""Compile Collateral.sol with solcjs (npm `solc`, offline) into build/Collateral.abi.json and build/Collateral.bin.

Run from anywhere: `python contracts/compile.py`. The services load the build files; they never compile.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOLCJS = HERE / "node_modules" / ".bin" / "solcjs"
EVM_VERSION = "london"  # no PUSH0: safe on Frontier-based chains such as the Bittensor EVM


def main() -> int:
    source = (HERE / "Collateral.sol").read_text()
    request = {
        "language": "Solidity",
        "sources": {"Collateral.sol": {"content": source}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": EVM_VERSION,
            "outputSelection": {"Collateral.sol": {"Collateral": ["abi", "evm.bytecode.object"]}},
        },
    }
    proc = subprocess.run([str(SOLCJS), "--standard-json"], input=json.dumps(request),
                          capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    errors = [e for e in out.get("errors", []) if e["severity"] == "error"]
    for e in out.get("errors", []):
        print(e["formattedMessage"], file=sys.stderr)
    if errors:
        return 1
    contract = out["contracts"]["Collateral.sol"]["Collateral"]
    build = HERE / "build"
    build.mkdir(exist_ok=True)
    (build / "Collateral.abi.json").write_text(json.dumps(contract["abi"], indent=1) + "\n")
    (build / "Collateral.bin").write_text(contract["evm"]["bytecode"]["object"] + "\n")
    print(json.dumps({"abi": str(build / "Collateral.abi.json"), "bin": str(build / "Collateral.bin"),
                      "bytes": len(contract["evm"]["bytecode"]["object"]) // 2}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
