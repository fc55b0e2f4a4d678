"""The plugin's own Python environment: built beside the live one, checked, switched in one step.

`install` runs `main` with the system interpreter it picked (`-I`: root runs it from wherever the
operator stands, whose folder must never be on sys.path; the plugin folder is put there by name),
before anything else is installed: standard library only. Every interpreter started here ignores
the working directory and the user's site too: `-I`, or a script run by its path (its own folder
first on sys.path, then the plugin folder in its place).

Layout: `.venvs/<id>/` holds environments, `.venv` is a link to the live one (the entry
points run `$PLUGIN/.venv/bin/python3`). `<id>` hashes the applicable lock and the
interpreter: a new lock or another interpreter is a new environment, nothing else is.
An environment rebuilt for the same `<id>` (the live one was broken) is `.venvs/<id>.<n>`.

- An environment is complete once its CHECKED file exists, written after pip and after
  its own triggers answered; only a complete one is ever linked. A failed build prints one
  line and leaves `.venv` as it was; a killed one leaves an incomplete folder, which the
  next install removes (one killed after its check is switched to, not built again).
- Every install checks the live environment too: CHECKED records a digest of its files as
  its last check saw them, so the usual run costs a walk of its folder; when a file was
  added, removed or rewritten since, the full check runs again. A live environment that is
  missing or fails it is built again beside it and switched to, as a new one is: a run of
  `install` is the repair.
- `.venv` is replaced by rename(2) of a new link over it: a trigger starting at any moment
  finds the old environment or the new one.
- The environment that was live before the last switch is kept (`.venvs/previous` names
  it) until the next switch: a trigger, or the watcher until `update` restarts it, may
  still run on it (network_plugin/__init__.py keeps a process on the environment it
  started in). Older ones are removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

from network_plugin.error_handler import PluginError, describe, run
from network_plugin.file_lock import NotLockable, open_lock_in
from network_plugin.files import fsync_dir, holds, replace_link, write_atomic
from network_plugin.output import info, warn
from network_plugin.package_locks import lock_for

LIVE = ".venv"
ENVIRONMENTS = ".venvs"
PREVIOUS = "previous"  # link in ENVIRONMENTS to the environment that was live before
LOCK_FILE = ".lock"  # held by one install at a time
CHECKED = "CHECKED"  # in an environment: it is complete and its triggers answered
CHECKED_MODE = 0o644
NEXT_LINK = ".venv.next"
# What the triggers import that the standard library does not have.
PACKAGES = ("docker", "typer", "filelock")
CHECK_APP = "check-app"
CHECK_TLD = "check.local"
# The throw-away host of a check, in ENVIRONMENTS: one left by a killed install is a leftover there.
CHECK_HOST_PREFIX = "check-"


class BuildFailed(Exception):
    """An environment could not be built, did not answer, or could not be locked: one line for
    the operator."""


def environment_id(lock: str) -> str:
    """The lock's content, this interpreter's real path and minor version, hashed."""
    digest = hashlib.sha256()
    with open(lock, "rb") as handle:
        digest.update(handle.read())
    interpreter = f"\n{os.path.realpath(sys.executable)} {sys.version_info[0]}.{sys.version_info[1]}"
    digest.update(interpreter.encode())
    return digest.hexdigest()[:16]


def _id_of(name: str) -> str:
    """The `<id>` of an environment's folder name (`<id>` or `<id>.<n>`)."""
    return name.partition(".")[0]


def _names(wanted: str) -> Iterator[str]:
    """Folder names for an environment of `wanted`: `<id>`, then `<id>.1`, `<id>.2`, ..."""
    yield wanted
    for number in itertools.count(1):
        yield f"{wanted}.{number}"


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def live_name(plugin_dir: str) -> str:
    """The folder in ENVIRONMENTS that `.venv` links to ("" when `.venv` is not such a link)."""
    folder, _, name = _link_target(os.path.join(plugin_dir, LIVE)).rpartition("/")
    return name if folder == ENVIRONMENTS else ""


def is_complete(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, CHECKED))


def fingerprint(folder: str) -> str:
    """A digest of every path in `folder` but CHECKED, with its mode, size and modification time (a
    link: its target): a file added, removed or rewritten changes it. Relative, so a copy made
    with its times (cp -a) keeps it. scandir, not os.walk: this runs at every install."""
    lines = []
    folders = [(folder, ".")]
    while folders:
        path, relative = folders.pop()
        with os.scandir(path) as entries:
            for entry in sorted(entries, key=lambda entry: entry.name):
                name = f"{relative}/{entry.name}"
                if entry.is_symlink():
                    lines.append(f"{name} -> {os.readlink(entry.path)}")
                elif entry.is_dir():
                    lines.append(f"{name}/")
                    folders.append((entry.path, name))
                elif not name.startswith((f"./{CHECKED}", f"./.{CHECKED}.")):  # its own temp file too
                    status = entry.stat(follow_symlinks=False)
                    lines.append(f"{name} {status.st_mode:o} {status.st_size} {status.st_mtime_ns}")
    return hashlib.sha256("\n".join(lines).encode(errors="surrogateescape")).hexdigest()


def _checked_content(plugin_dir: str, folder: str, lock: str) -> str:
    """What CHECKED holds: the lock the environment was built from, and its files' digest."""
    return f"{os.path.relpath(lock, plugin_dir)}\n{fingerprint(folder)}\n"


def record_check(plugin_dir: str, folder: str, lock: str) -> None:
    """Write CHECKED (in one step): `folder` answered its check as its files are now."""
    content = _checked_content(plugin_dir, folder, lock)
    write_atomic(os.path.join(folder, CHECKED), content, mode=CHECKED_MODE, dokku_owned=False)


def as_checked(plugin_dir: str, folder: str, lock: str) -> bool:
    """`folder` is complete, and its files are the ones its last check saw."""
    content = _checked_content(plugin_dir, folder, lock)
    return is_complete(folder) and holds(os.path.join(folder, CHECKED), content)


def live_fault(plugin_dir: str, name: str, lock: str) -> str:
    """Why the live environment `.venvs/<name>` must be built again, "" when it is sound.

    Its files as its last check saw them are sound without running anything; otherwise it
    is checked again as a new one is (and recorded when it answers)."""
    folder = os.path.join(plugin_dir, ENVIRONMENTS, name)
    subject = f"The live environment {ENVIRONMENTS}/{name}"
    if not os.path.isdir(folder):
        return f"{subject} is missing"
    if not is_complete(folder):
        return f"{subject} is incomplete"
    if as_checked(plugin_dir, folder, lock):
        return ""
    try:
        check(plugin_dir, os.path.join(folder, "bin", "python3"), subject)
    except BuildFailed as error:
        return str(error)
    record_check(plugin_dir, folder, lock)
    return ""


def remove_leftovers(plugin_dir: str, keep: set[str]) -> None:
    """Everything under ENVIRONMENTS but `keep`, and a link a killed switch left."""
    environments = os.path.join(plugin_dir, ENVIRONMENTS)
    for entry in os.scandir(environments):
        if entry.name not in keep | {LOCK_FILE, PREVIOUS}:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    next_link = os.path.join(plugin_dir, NEXT_LINK)
    if os.path.lexists(next_link):
        os.unlink(next_link)


def _run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # In /, whoever runs this: a child the interpreter starts without -I (Debian 11's ensurepip
    # runs pip so) must find no module in the caller's folder.
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd="/")


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    """What a failed program said last, on stderr (pip's error) before stdout."""
    for output in (result.stderr, result.stdout):
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"exit status {result.returncode}"


def build(plugin_dir: str, folder: str, lock: str) -> None:
    """A virtualenv in `folder` with exactly what `lock` pins, checked; raise BuildFailed."""
    created = _run([sys.executable, "-I", "-m", "venv", folder])
    if created.returncode != 0:
        raise BuildFailed(f"Unable to create a virtualenv in {folder}: {_last_line(created)}")
    python = os.path.join(folder, "bin", "python3")
    pip = [python, "-I", "-m", "pip", "--disable-pip-version-check", "--no-input"]
    installed = _run([*pip, "install", "--require-hashes", "--no-deps", "--requirement", lock])
    if installed.returncode != 0:
        name = os.path.relpath(lock, plugin_dir)
        raise BuildFailed(f"Unable to install the packages of {name}: {_last_line(installed)}")
    # setuptools' .pth hook (ensurepip before 3.12) would run at every trigger's start-up.
    _run([*pip, "uninstall", "--yes", "setuptools"])
    check(plugin_dir, python)
    record_check(plugin_dir, folder, lock)


def check(plugin_dir: str, python: str, subject: str = "The new environment") -> None:
    """The packages import, and a command, a reader and an engine trigger of this plugin's code
    answer on a throw-away host (with no engine there: the engine trigger warns and exits 0)."""
    imported = _run([python, "-I", "-c", f"import {', '.join(PACKAGES)}"])
    if imported.returncode != 0:
        raise BuildFailed(f"{subject} cannot import {', '.join(PACKAGES)}: {_last_line(imported)}")
    with tempfile.TemporaryDirectory(
        prefix=CHECK_HOST_PREFIX, dir=os.path.join(plugin_dir, ENVIRONMENTS)
    ) as host:
        os.makedirs(os.path.join(host, "home", CHECK_APP))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "DOKKU_ROOT": os.path.join(host, "home"),
            "DOKKU_LIB_ROOT": os.path.join(host, "lib"),
            "DOCKER_HOST": f"unix://{host}/no-engine.sock",
        }
        triggers = os.path.join(plugin_dir, "triggers")
        runs = (
            (["commands", "network:set", CHECK_APP, "tld", CHECK_TLD], None),
            (["network-get-property", CHECK_APP, "tld"], f"{CHECK_TLD}\n"),
            (["network-build-config", CHECK_APP], None),
        )
        for (trigger, *args), expected in runs:
            # By its path, as plugn runs it: the script's folder (triggers/) is first on sys.path.
            result = _run([python, "-E", "-s", os.path.join(triggers, trigger), *args], env=env)
            if result.returncode != 0 or (expected is not None and result.stdout != expected):
                raise BuildFailed(f"{subject} failed its check ({trigger}): {_last_line(result)}")


def switch(plugin_dir: str, name: str) -> None:
    """Make `.venv` link to ENVIRONMENTS/<name> in one step; remember what was live before."""
    before = live_name(plugin_dir)
    if before:
        # Recorded first: a kill right after the switch must not leave it unprotected.
        replace_link(os.path.join(plugin_dir, ENVIRONMENTS, PREVIOUS), before)
    next_link = os.path.join(plugin_dir, NEXT_LINK)
    os.symlink(f"{ENVIRONMENTS}/{name}", next_link)
    os.replace(next_link, os.path.join(plugin_dir, LIVE))
    fsync_dir(plugin_dir)


def _open_install_lock(environments: str) -> int:
    """A descriptor of ENVIRONMENTS/LOCK_FILE, checked as an app's `.lock` is (a FIFO there
    must not hang every install); ENVIRONMENTS may be a link of root's (the plugin folder is)."""
    try:
        return open_lock_in(environments, LOCK_FILE)
    except NotLockable as error:
        raise BuildFailed(f"Refusing to install: {error}") from None
    except PluginError as error:  # a link root does not own
        raise BuildFailed(f"Refusing to install: {error.message}") from None


def ensure(plugin_dir: str) -> None:
    """Build, check and switch to the environment the applicable lock asks for, unless the live
    one is that environment and sound."""
    environments = os.path.join(plugin_dir, ENVIRONMENTS)
    os.makedirs(environments, exist_ok=True)
    with open(_open_install_lock(environments), "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a second install waits for the first
        lock = lock_for(plugin_dir, sys.version_info[:2])
        wanted = environment_id(lock)
        live = live_name(plugin_dir)
        previous = _link_target(os.path.join(environments, PREVIOUS))
        if _id_of(live) == wanted:
            fault = live_fault(plugin_dir, live, lock)
            if not fault:
                remove_leftovers(plugin_dir, keep={live, previous})
                return
            warn(f"{fault}; building it again")
        # One killed after its check, before the switch, or the previous one (a lock changed
        # back): switched to, not built again; unless a file changed since its check (the
        # previous one may be the broken one a repair replaced).
        name = next(
            (
                entry
                for entry in sorted(os.listdir(environments))
                if _id_of(entry) == wanted
                and entry != live
                and as_checked(plugin_dir, os.path.join(environments, entry), lock)
            ),
            "",
        )
        remove_leftovers(plugin_dir, keep={live, previous, name})
        if not name:
            # Never the folder `.venv` names, even a missing one: a trigger would run a partial build.
            name = next(candidate for candidate in _names(wanted) if candidate not in {live, previous})
            folder = os.path.join(environments, name)
            info(f"Building the network plugin's Python environment ({os.path.relpath(lock, plugin_dir)})")
            try:
                build(plugin_dir, folder, lock)
            except BuildFailed:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        switch(plugin_dir, name)
        remove_leftovers(plugin_dir, keep={name, live})


def install_step(argv: list[str]) -> int:
    """Bring the environment of the plugin folder `argv[1]` (default: the current folder) to its lock."""
    plugin_dir = os.path.abspath(argv[1] if len(argv) > 1 else ".")
    try:
        ensure(plugin_dir)
    except (BuildFailed, LookupError) as error:
        raise PluginError(f"{error}; the plugin's environment is unchanged") from None
    except OSError as error:
        raise PluginError(f"Unable to switch the plugin's environment: {describe(error)}") from None
    return 0


def main(argv: list[str]) -> int:
    """`install`'s step (and `python3 -m network_plugin.environment [<plugin folder>]`): the exit
    code, through the plugin's one error path."""
    return run(install_step, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
