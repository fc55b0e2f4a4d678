"""The per-app lock: exclusive across processes, re-entrant within one, released when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from network_plugin.error_handler import PluginError
from network_plugin.file_lock import AppLock
from tests.host import REPO_ROOT

HOLDER = """
import sys, time
from network_plugin.file_lock import AppLock
with AppLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(host_paths):
    """Another process holding the lock of node-js-app."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "node-js-app"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "held\n"
    yield process
    process.kill()
    process.wait()


def test_a_held_lock_makes_the_next_writer_wait_then_time_out(holder):
    start = time.monotonic()
    with pytest.raises(PluginError) as refused, AppLock("node-js-app", timeout=0.3):
        pass
    assert time.monotonic() - start >= 0.3
    assert refused.value.message == "Timed out after 0.3s waiting for the lock of node-js-app"


def test_other_apps_are_not_blocked(holder):
    with AppLock("other-app", timeout=0.3):
        pass


def test_a_holder_killed_with_sigkill_releases_the_lock(holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with AppLock("node-js-app", timeout=1):
        pass


def test_the_lock_is_reentrant_in_one_process_and_released_on_exit(host_paths):
    with AppLock("node-js-app"), AppLock("node-js-app", timeout=0):
        pass
    probe = subprocess.run(
        [sys.executable, "-c", HOLDER.replace("time.sleep(60)", "pass"), "node-js-app"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert (probe.returncode, probe.stdout) == (0, "held\n")
    lock_file = host_paths[1] / "config" / "network" / "node-js-app" / ".lock"
    assert oct(lock_file.stat().st_mode & 0o777) == "0o600"
