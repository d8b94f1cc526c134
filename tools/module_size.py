"""``python -m tools.module_size``: no module of the daemon over 400 lines (bench/ and lab/,
which drive real Janus servers and peers, are left out). Exit 1 naming each one over."""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 400
CHECKED = ("monitor", "tests", "tools")


def oversized(root: Path) -> list[tuple[Path, int]]:
    found = []
    for folder in CHECKED:
        for path in sorted((root / folder).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > LIMIT:
                found.append((path.relative_to(root), lines))
    return found


def main() -> int:
    found = oversized(Path(__file__).resolve().parent.parent)
    for path, lines in found:
        print(f"{path}: {lines} lines, over {LIMIT}: split it by concern", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
