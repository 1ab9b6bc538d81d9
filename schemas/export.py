"""Write the JSON Schemas of the contracts into schemas/json/.

python -m schemas.export          # regenerate
python -m schemas.export --check  # exit 1 when the files drifted
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.conversation import ConversationEvent
from schemas.dead_letter import DeadLetterHeaders
from schemas.hashbank import HashBankEntry
from schemas.review import ReviewRequest
from schemas.verdict import VerdictEvent

JSON_DIR = Path(__file__).parent / "json"

CONTRACTS: dict[str, type[BaseModel]] = {
    "conversation_event.v1.json": ConversationEvent,
    "verdict_event.v1.json": VerdictEvent,
    "dead_letter_headers.v1.json": DeadLetterHeaders,
    "review_request.v1.json": ReviewRequest,
    "hash_bank_entry.v1.json": HashBankEntry,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for filename, model in CONTRACTS.items():
        path = JSON_DIR / filename
        text = render(model)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(filename)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(
            f"stale JSON Schemas: {', '.join(stale)}; run python -m schemas.export", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
