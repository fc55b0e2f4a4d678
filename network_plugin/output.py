"""Dokku's output conventions: `----->` info, `=====>` sections, `!` on stderr."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from typing import TextIO

INFO_PREFIX = "-----> "
SECTION_PREFIX = "=====> "
DETAIL_PREFIX = "       "
WARN_PREFIX = " !     "


def is_quiet() -> bool:
    return bool(os.environ.get("DOKKU_QUIET_OUTPUT"))


def _line(stream: TextIO, text: str) -> None:
    # One write per line: lines of `network:watch`'s threads never interleave. Escaped: a value
    # from a label, an option or a hand-edited file can never add lines or terminal sequences.
    stream.write(f"{one_line(text)}\n")


def info(message: str) -> None:
    """An info line; hidden under --quiet."""
    if not is_quiet():
        _line(sys.stdout, f"{INFO_PREFIX}{message}")


def section(message: str) -> None:
    """A section header; hidden under --quiet."""
    if not is_quiet():
        _line(sys.stdout, f"{SECTION_PREFIX}{message}")


def detail(message: str) -> None:
    _line(sys.stdout, f"{DETAIL_PREFIX}{message}")


def detail_unless_quiet(message: str) -> None:
    if not is_quiet():
        detail(message)


def one_line(text: str) -> str:
    """Escape control characters so user input can never add lines to our output."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def clip(value: str, limit: int = 100) -> str:
    """`value` cut to about `limit` characters for a log line: a 10k-character label must not
    make a 10k-character warning for every event."""
    return value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"


def listed(names: list[str], limit: int = 10) -> str:
    """`a, b, c` with at most `limit` names, each clipped, then `…`: one warning about 300k apps
    stays a short line."""
    shown = ", ".join(clip(name) for name in names[:limit])
    return shown if len(names) <= limit else f"{shown}, …"


def print_json(document: object) -> None:
    """One JSON document on one line, keys sorted, as Dokku's `--format json` prints."""
    import json  # only the json formats pay for it

    print(json.dumps(document, sort_keys=True))


def warn(message: str) -> None:
    sys.stdout.flush()
    _line(sys.stderr, f"{WARN_PREFIX}{message}")
