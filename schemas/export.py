"""JSON Schema of the envelope and of every event type, generated into `schemas/json/`.

`python -m schemas.export` rewrites the files; a test fails when they are stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.envelope import Envelope
from schemas.events import CURRENT_VERSION, EVENT_MODELS

OUT = Path(__file__).parent / "json"


def schema_files() -> dict[str, str]:
    files: dict[str, Any] = {"envelope.json": Envelope.model_json_schema()}
    for type_, model in sorted(EVENT_MODELS.items()):
        schema = model.model_json_schema()
        schema["title"] = type_
        schema["x-schema-version"] = CURRENT_VERSION[type_]
        files[f"{type_}.json"] = schema
    return {name: json.dumps(s, indent=2, sort_keys=True) + "\n" for name, s in files.items()}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    wanted = schema_files()
    for stale in OUT.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (OUT / name).write_text(text)


if __name__ == "__main__":
    main()
