"""Waiting for a condition in tests and benchmarks: poll it, with a generous bound (a slow
machine must make a test slower, never make it fail)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

WAIT_SECONDS = 60.0
POLL_SECONDS = 0.05


def wait_for(
    condition: Callable[[], object], what: str, timeout: float = WAIT_SECONDS, poll: float = POLL_SECONDS
) -> object:
    """Poll `condition` until it is truthy; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, and SIGKILL when it has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
