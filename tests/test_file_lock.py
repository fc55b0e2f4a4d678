"""The per-app lock: exclusive across processes and threads, re-entrant within a thread, released when its
holder dies, and never taken through a link."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from network_plugin.error_handler import PluginError
from network_plugin.file_lock import AppLock, LockOrderError, WaitingAtMost, host_lock
from tests.host import REPO_ROOT, DokkuHost

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


def test_a_thread_waiting_at_most_some_seconds_gives_up_then_and_others_wait_their_own(holder):
    """The watcher's writes for triggers wait less than the trigger waits for their answer."""
    with pytest.raises(PluginError) as refused, WaitingAtMost(0.2), AppLock("node-js-app", timeout=5.0):
        pass
    assert refused.value.message == "Timed out after 0.2s waiting for the lock of node-js-app"
    # Outside the block, the lock's own timeout holds again.
    with pytest.raises(PluginError) as again, AppLock("node-js-app", timeout=0.3):
        pass
    assert again.value.message == "Timed out after 0.3s waiting for the lock of node-js-app"


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


def test_a_second_thread_waits_for_the_lock_a_first_thread_holds(host_paths):
    """Re-entrance is per thread: the watcher's jobs on one app exclude each other like processes do."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with AppLock("node-js-app"):
            held.set()
            release.wait(30)

    holder_thread = threading.Thread(target=hold)
    holder_thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(PluginError) as refused, AppLock("node-js-app", timeout=0.2):
            pass
        assert refused.value.message == "Timed out after 0.2s waiting for the lock of node-js-app"
    finally:
        release.set()
        holder_thread.join()
    with AppLock("node-js-app", timeout=30):
        pass


def test_the_host_lock_taken_after_an_app_s_lock_fails_loudly(host_paths):
    """Two writers taking the host lock and an app's in opposite orders would wait for each other
    until the timeout: the wrong order fails at once, in the thread that took it."""
    with AppLock("node-js-app"), pytest.raises(LockOrderError) as refused, host_lock(timeout=0):
        pass
    assert (
        str(refused.value) == "The host lock is taken after the lock of node-js-app: take host_lock() first"
    )
    lock_file = host_paths[1] / "config" / "network" / "--global" / ".lock"
    assert not lock_file.exists()  # refused before the lock was asked for
    with host_lock(timeout=0), AppLock("node-js-app", timeout=0), host_lock(timeout=0):
        pass  # the order every writer keeps, and the host lock again inside it: re-entrant


@pytest.fixture
def outside_file() -> Iterator[Path]:
    """A root-owned file outside the test's folders, as /etc/... would be: content and mode to keep."""
    descriptor, name = tempfile.mkstemp(dir="/var/tmp", prefix="dokku-network-lock-target-")
    os.write(descriptor, b"keep me\n")
    os.close(descriptor)
    path = Path(name)
    path.chmod(0o644)
    yield path
    path.unlink(missing_ok=True)


def refusal(dokku: DokkuHost, app: str, what: str) -> str:
    folder = dokku.properties_root / app
    return f" !     Refusing to lock {app}: {folder}{what}\n"


# Each writer; neither says anything before it has written (network:set says `Setting` after).
WRITERS = {
    "network-write-ipaddr": lambda dokku, app: dokku.trigger(
        "network-write-ipaddr", app, "web", "1", "10.1.2.3"
    ),
    "network:set": lambda dokku, app: dokku.command("set", app, "tld", "internal"),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_lock_file_linked_to_another_file_is_refused_and_the_file_kept(dokku, app, outside_file, writer):
    lock = dokku.properties_root / app / ".lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(outside_file)

    result = WRITERS[writer](dokku, app)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        refusal(dokku, app, "/.lock is not a regular file"),
    )
    assert outside_file.read_bytes() == b"keep me\n"
    assert oct(outside_file.stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(lock.parent)) == [".lock"]
    assert sorted(os.listdir(dokku.dokku_root / app)) == []


def test_a_dangling_lock_link_creates_nothing(dokku, app, tmp_path):
    lock = dokku.properties_root / app / ".lock"
    lock.parent.mkdir(parents=True)
    target = tmp_path / "created-through-the-link"
    lock.symlink_to(target)

    result = dokku.command("set", app, "tld", "internal")

    assert (result.returncode, result.stderr) == (1, refusal(dokku, app, "/.lock is not a regular file"))
    assert not target.exists()
    assert lock.is_symlink()


def test_a_lock_file_hard_linked_to_another_file_is_refused(dokku, app):
    folder = dokku.properties_root / app
    folder.mkdir(parents=True)
    other = dokku.lib_root / "other-file"
    other.write_text("keep me\n")
    os.link(other, folder / ".lock")

    result = dokku.trigger("network-write-ipaddr", app, "web", "1", "10.1.2.3")

    assert (result.returncode, result.stderr) == (1, refusal(dokku, app, "/.lock is not a regular file"))
    assert other.read_text() == "keep me\n"


@pytest.mark.root
def test_a_property_folder_linked_elsewhere_by_the_dokku_user_gets_nothing_written(dokku, app, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a link of another user is made by root")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dokku.properties_root.mkdir(parents=True, exist_ok=True)
    link = dokku.properties_root / app
    link.symlink_to(elsewhere)
    os.lchown(link, 12345, 12345)

    result = dokku.command("set", app, "tld", "internal")

    assert (result.returncode, result.stderr) == (
        1,
        f" !     Refusing to follow {link}: a link owned by uid 12345, not by root\n",
    )
    assert os.listdir(elsewhere) == []


def test_a_file_in_place_of_the_property_folder_is_refused(dokku, app):
    dokku.properties_root.mkdir(parents=True, exist_ok=True)
    (dokku.properties_root / app).write_text("keep me\n")

    result = dokku.command("set", app, "tld", "internal")

    assert (result.returncode, result.stderr) == (1, refusal(dokku, app, " is not a folder"))
    assert (dokku.properties_root / app).read_text() == "keep me\n"
