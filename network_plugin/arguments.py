"""Positional arguments of triggers, which plugn passes without any parsing."""

from __future__ import annotations


def arg(args: list[str], position: int) -> str:
    """The argument at `position`, or '' when the caller passed fewer."""
    return args[position] if len(args) > position else ""
