"""A run of `install` repairs what it finds broken, and fails in one line when it cannot
(docs/reference.md: Install and update, The environment).

A broken live environment is built again (issue 22, item 4), a full disk while bytecode compiles
is one line (5), a check's throw-away host left by a kill is removed (13), a FIFO as the install
lock is refused (14). Each test but the fingerprint's gets its own copy of the plugin, installed
the way the session's is (tests/test_environment.py's `plugin_host`: its environment is a copy of
the session's, so only a repair builds one, from the session's wheelhouse).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from network_plugin import environment
from network_plugin.package_locks import lock_for
from tests.host import DokkuHost, made_by_install
from tests.polling import wait_for
from tests.test_environment import APP, change_lock, environments, live, plugin_host
from tests.test_install import tree

pytestmark = pytest.mark.usefixtures("wheelhouse")


def site_packages(folder: Path) -> Path:
    (found,) = folder.glob("lib/python3.*/site-packages")
    return found


def lock_name(plugin: Path) -> str:
    return os.path.relpath(lock_for(str(plugin), sys.version_info[:2]), plugin)


def reads_a_property(dokku: DokkuHost) -> list[tuple[int, str, str]]:
    """A command and a reader, as a deploy runs them: (exit, stdout, stderr) of each."""
    runs = [
        dokku.command("set", APP, "tld", "svc.local"),
        dokku.trigger("network-get-property", APP, "tld"),
        dokku.command("report", APP, "--network-tld"),
    ]
    return [(run.returncode, run.stdout, run.stderr) for run in runs]


WORKING = [(0, "=====> Setting tld to svc.local\n", ""), (0, "svc.local\n", ""), (0, "svc.local\n", "")]


def move_away(folder: Path, aside: Path) -> str:
    folder.rename(aside)
    return "is missing"


def remove_typer(folder: Path, aside: Path) -> str:
    shutil.rmtree(site_packages(folder) / "typer")
    return "cannot import docker, typer, filelock: ModuleNotFoundError: No module named 'typer'"


@pytest.mark.parametrize("breakage", [move_away, remove_typer], ids=["moved-away", "typer-removed"])
def test_install_builds_a_broken_live_environment_again_beside_it_and_switches(
    tmp_path: Path, plugin_dir: Path, breakage
):
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    name = live(plugin).rpartition("/")[2]
    fault = breakage(plugin / ".venvs" / name, tmp_path / "aside")

    result = dokku.run(plugin / "install")

    assert result.returncode == 0
    assert result.stderr == f" !     The live environment .venvs/{name} {fault}; building it again\n"
    assert result.stdout == f"-----> Building the network plugin's Python environment ({lock_name(plugin)})\n"
    assert live(plugin) == f".venvs/{name}.1"
    assert os.readlink(plugin / ".venvs" / environment.PREVIOUS) == name  # a trigger may still run there
    assert reads_a_property(dokku) == WORKING
    again = dokku.run(plugin / "install")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert live(plugin) == f".venvs/{name}.1"


def test_a_live_environment_changed_but_working_is_checked_again_and_kept(tmp_path: Path, plugin_dir: Path):
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    before = live(plugin)
    folder = plugin / before
    checked = (folder / environment.CHECKED).read_text()
    (site_packages(folder) / "added-by-hand.txt").write_text("harmless\n")

    result = dokku.run(plugin / "install")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert live(plugin) == before
    # Recorded as checked with that file: the next install runs no check again.
    recorded = (folder / environment.CHECKED).read_text()
    assert recorded != checked
    assert recorded == f"{lock_name(plugin)}\n{environment.fingerprint(str(folder))}\n"
    assert reads_a_property(dokku) == WORKING


@pytest.fixture
def full_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A mount point for a small tmpfs (root only); unmounted after the test."""
    point = tmp_path / "full"
    point.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)]
    mounted = subprocess.run(mount, capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"no tmpfs to fill here: {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def fill(folder: Path) -> None:
    """Write zeros to `folder` until its file system has no block left."""
    descriptor = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(descriptor, bytes(4096))
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)


def test_a_full_disk_while_bytecode_compiles_is_one_line_and_changes_nothing(
    tmp_path: Path, plugin_dir: Path, full_filesystem: Path
):
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    # The plugin's bytecode on a file system that is full: its folder mounted there, as it was.
    bytecode = plugin / "network_plugin" / "__pycache__"
    shutil.copytree(bytecode, full_filesystem, dirs_exist_ok=True)
    shutil.rmtree(bytecode)
    bytecode.symlink_to(full_filesystem)
    fill(full_filesystem)
    source = plugin / "network_plugin" / "output.py"
    changed = source.stat().st_mtime_ns + 1_000_000_000  # a .py newer than its bytecode
    os.utime(source, ns=(changed, changed))
    (plugin / "network-get-property").unlink()  # what the install trigger would make again
    before = tree(plugin)

    result = dokku.run(plugin / "install")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        " !     Unable to compile the plugin's bytecode: OSError: [Errno 28] No space left on device;"
        " the plugin is unchanged\n"
    )
    assert tree(plugin) == before
    (full_filesystem / "filler").unlink()
    again = dokku.run(plugin / "install")
    assert (again.returncode, again.stderr) == (0, "")
    assert made_by_install(plugin, "network-get-property")


def hold_the_check(folder: Path) -> Path:
    """Make the environment's interpreter stop (until killed) at the check's first trigger,
    once the check made its throw-away host; return the file it touches then."""
    python = folder / "bin" / "python3"
    held = folder / "bin" / "held"
    (folder / "bin" / "python3-real").symlink_to(os.readlink(python))
    python.unlink()
    python.write_text(
        f'#!/bin/sh\ncase "$*" in */triggers/*) touch {held}; exec sleep 600;; esac\nexec "$0-real" "$@"\n'
    )
    python.chmod(0o755)
    return held


def test_an_install_killed_during_its_check_leaves_nothing_the_next_one_does_not_remove(
    tmp_path: Path, plugin_dir: Path
):
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    name = live(plugin).rpartition("/")[2]
    folder = plugin / ".venvs" / name
    target = os.readlink(folder / "bin" / "python3")
    held = hold_the_check(folder)  # a changed environment: install checks it again
    temp = tmp_path / "temp"
    temp.mkdir()
    env = dokku.env | {"TMPDIR": str(temp)}
    running = subprocess.Popen(
        [str(plugin / "install")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the kill takes the check's triggers with it
    )
    try:
        wait_for(held.exists, "the install's check to run a trigger")
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait(timeout=60)
    (folder / "bin" / "python3").unlink()
    (folder / "bin" / "python3-real").unlink()
    (folder / "bin" / "python3").symlink_to(target)
    held.unlink()

    result = subprocess.run(
        [str(plugin / "install")], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert environments(plugin) == sorted([environment.LOCK_FILE, name])
    assert list(temp.iterdir()) == []


def test_install_refuses_a_lock_that_is_not_a_regular_file_instead_of_hanging(
    tmp_path: Path, plugin_dir: Path
):
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    lock = plugin / ".venvs" / environment.LOCK_FILE
    lock.unlink()
    os.mkfifo(lock)
    before = tree(plugin)

    running = subprocess.Popen(
        [str(plugin / "install")],
        env=dokku.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a hung install is killed with every process it started
    )
    try:
        stdout, stderr = running.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(running.pid, signal.SIGKILL)
        running.communicate()
        pytest.fail("install hung on a FIFO as .venvs/.lock")

    assert (running.returncode, stdout) == (1, "")
    assert stderr == (
        f" !     Refusing to install: {plugin}/.venvs/.lock is not a regular file;"
        " the plugin's environment is unchanged\n"
    )
    assert tree(plugin) == before


def test_the_fingerprint_changes_with_any_file_added_removed_or_rewritten_but_not_with_checked(
    tmp_path: Path,
):
    (tmp_path / "lib" / "site-packages" / "typer").mkdir(parents=True)
    module = tmp_path / "lib" / "site-packages" / "typer" / "__init__.py"
    module.write_text("x = 1\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").symlink_to("/usr/bin/python3")
    first = environment.fingerprint(str(tmp_path))

    (tmp_path / environment.CHECKED).write_text("locks/python3.11.txt\n")
    (tmp_path / f".{environment.CHECKED}.123.tmp").write_text("")  # a write of it killed
    assert environment.fingerprint(str(tmp_path)) == first

    def relink() -> None:
        (tmp_path / "bin" / "python3").unlink()
        (tmp_path / "bin" / "python3").symlink_to("python")

    changes = [
        lambda: os.utime(module, ns=(0, 0)),
        lambda: module.write_text("x = 2\n"),
        lambda: module.chmod(0o600),
        lambda: (tmp_path / "lib" / "site-packages" / "added.pth").write_text(""),
        relink,
        lambda: shutil.rmtree(tmp_path / "lib" / "site-packages" / "typer"),
    ]
    seen = {first}
    for change in changes:
        change()
        seen.add(environment.fingerprint(str(tmp_path)))
    assert len(seen) == len(changes) + 1


def test_a_lock_changed_back_switches_to_the_previous_environment_without_building_it(
    tmp_path: Path, plugin_dir: Path
):
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    first = live(plugin)
    lock = Path(lock_for(str(plugin), sys.version_info[:2]))
    pinned = lock.read_text()
    change_lock(plugin, "a new pin")
    assert dokku.run(plugin / "install").returncode == 0
    second = live(plugin)
    lock.write_text(pinned)  # the change reverted

    result = dokku.run(plugin / "install")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert live(plugin) == first
    assert os.readlink(plugin / ".venvs" / environment.PREVIOUS) == second.rpartition("/")[2]
    assert reads_a_property(dokku) == WORKING
