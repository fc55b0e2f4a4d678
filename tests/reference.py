"""What docs/reference.md documents, read from it, for the tests that hold the code to it."""

from __future__ import annotations

import re
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def documented_subcommands() -> list[str]:
    """The `network:<name>` commands with a heading of their own, in name order."""
    return sorted(set(re.findall(r"^### `network:([a-z]+)[ `]", REFERENCE.read_text(), re.MULTILINE)))


def documented_triggers() -> set[str]:
    """The first column of the trigger table (Triggers)."""
    table = REFERENCE.read_text().split("\n| trigger | arguments |", 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()[2:]  # after the rest of the header line and the |---| line
    return {re.findall(r"`([a-z-]+)`", row.split("|")[1])[0] for row in rows}
