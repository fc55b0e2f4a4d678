"""One lock per app, serialising every write to its properties and IP/PORT files.

A `filelock` lock on `<property dir>/.lock` (an exclusive flock(2) on Unix): the kernel
drops it when its holder dies, even by SIGKILL, so a killed writer never blocks the next
one. `filelock` is imported when a lock is first taken, never by a trigger that only reads.

The Dokku user owns the property folders, and `install` takes these locks as root: a
`.lock` (or a folder on the way) replaced by a link must never make us create, truncate or
chmod the file it points to. So the folder is walked as `files` walks every path, the lock
file opened in it without following a link (whoever owns it) and checked to be a plain file,
and filelock is handed `/proc/self/fd/<n>`: that names the very file opened, whatever the
path shows later.
"""

from __future__ import annotations

import os
import stat
from _thread import _local  # threading.local, without importing threading (a reader's ~3 ms)

from network_plugin import use_site_packages
from network_plugin.error_handler import PluginError
from network_plugin.files import FILE_MODE, dokku_owner, open_folder
from network_plugin.paths import GLOBAL_APP, property_dir

LOCK_NAME = ".lock"
# A writer holds the lock for milliseconds; minutes mean a hung process, which must not
# stall every deploy of the app forever.
LOCK_TIMEOUT_SECONDS = 120.0
OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# The apps whose lock the current thread holds: re-entrance is per thread, so two threads
# of one process (the watcher's jobs) wait for each other like two processes do.
_held = _local()

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from filelock import BaseFileLock


def _held_apps() -> set[str]:
    apps: set[str] | None = getattr(_held, "apps", None)
    if apps is None:
        apps = _held.apps = set()
    return apps


def holds_a_lock() -> bool:
    """Does the current thread hold an app's lock (or the host's)?"""
    return bool(_held_apps())


class NotLockable(Exception):
    """A lock's folder is not a folder, or its file not a plain file: the message names which."""


def open_lock_in(folder: str, name: str) -> int:
    """A descriptor of the plain file `name` in `folder`, created when missing (the folder too,
    walked as every folder of the plugin is: a link root does not own is refused); NotLockable
    when `folder` is no folder, or `name` anything but a file with one name (a link, a FIFO:
    never followed, never waited on)."""
    try:
        folder_descriptor = open_folder(folder, create=True)
    except OSError:
        raise NotLockable(f"{folder} is not a folder") from None
    try:
        descriptor = os.open(name, OPEN_FLAGS, FILE_MODE, dir_fd=folder_descriptor)
    except OSError:
        raise NotLockable(f"{folder}/{name} is not a regular file") from None
    finally:
        os.close(folder_descriptor)
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(descriptor)
        raise NotLockable(f"{folder}/{name} is not a regular file")
    return descriptor


def open_lock_file(app: str) -> int:
    """A descriptor of the app's `.lock`, created when missing; PluginError when it is not ours to lock."""
    try:
        return open_lock_in(property_dir(app), LOCK_NAME)
    except NotLockable as error:
        raise PluginError(f"Refusing to lock {app}: {error}") from None


class LockOrderError(RuntimeError):
    """The host lock taken while the thread holds an app's: two writers taking them in the
    opposite orders would wait for each other until the timeout. A bug, never the user's."""


class WaitingAtMost:
    """Within its block, the current thread's lock waits are cut to `seconds` (when shorter)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.before: float | None = None

    def __enter__(self) -> None:
        self.before = getattr(_held, "cap", None)
        _held.cap = self.seconds

    def __exit__(self, *exc_info: object) -> None:
        _held.cap = self.before


class AppLock:
    """Hold the app's lock for a `with` block; re-entrant in one thread.

    Re-entrance lets one operation (e.g. a rebuild) hold the lock around many
    single writes that each take it too, without deadlocking on itself. A plain
    class rather than contextlib keeps the import cheap for triggers that only read.
    """

    def __init__(self, app: str, timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.timeout = timeout
        self.lock: BaseFileLock | None = None
        self.descriptor = -1

    def __enter__(self) -> None:
        held = _held_apps()
        if self.app in held:
            return
        if self.app == GLOBAL_APP and held:
            raise LockOrderError(
                f"The host lock is taken after the lock of {min(held)}: take host_lock() first"
            )
        use_site_packages()
        from filelock import FileLock, Timeout

        descriptor = open_lock_file(self.app)
        cap = getattr(_held, "cap", None)
        timeout = self.timeout if cap is None else min(self.timeout, cap)
        lock = FileLock(f"/proc/self/fd/{descriptor}", timeout=timeout, mode=FILE_MODE)
        try:
            lock.acquire()
        except Timeout:
            os.close(descriptor)
            message = f"Timed out after {timeout:g}s waiting for the lock of {self.app}"
            raise PluginError(message) from None
        owner = dokku_owner()
        if owner:
            # So that a later trigger running as the Dokku user can take it too.
            os.fchown(descriptor, *owner)
        self.lock = lock
        self.descriptor = descriptor
        held.add(self.app)

    def __exit__(self, *exc_info: object) -> None:
        if self.lock is None:
            return
        _held_apps().discard(self.app)
        self.lock.release()
        os.close(self.descriptor)
        self.lock = None
        self.descriptor = -1


def host_lock(timeout: float = LOCK_TIMEOUT_SECONDS) -> AppLock:
    """The host-wide lock (the `--global` properties' own): held by every change of an attach
    list (a global one reads every app's), by writes of network records, by a recreate and
    an import. Always taken before any app's lock: AppLock refuses the other order."""
    return AppLock(GLOBAL_APP, timeout)
