"""What every benchmark script does with its result: write it as JSON and print it."""

from __future__ import annotations

import json
from pathlib import Path


def save_result(result: dict, path: str | Path) -> None:
    """Write ``result`` to ``path`` (parents created) as indented JSON and echo it to stdout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    path.write_text(text + "\n")
    print(text)
