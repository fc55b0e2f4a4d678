"""One `network:watch` per host: the lock its process holds while it runs (docs/reference.md:
network:watch).

A `filelock` lock on `watcher.lock` in the watcher's folder (an exclusive flock(2)), taken
before the watcher listens on the triggers' socket: a second watcher, started by hand beside
the service, stops there with one line naming the first one's pid (kept in `watcher.pid`)
instead of taking the socket and rebuilding every app twice. The kernel drops the lock when
its holder dies, even by SIGKILL, so readers can tell from it alone whether what a watcher
wrote is still kept true by a running one (`held`): no pid that may have been reused, no engine.
"""

from __future__ import annotations

import os

from network_plugin import use_site_packages
from network_plugin.error_handler import PluginError
from network_plugin.files import READ_FLAGS, open_folder, read_first_line, write_atomic
from network_plugin.paths import warm_root

TYPE_CHECKING = False  # typing itself costs a reader milliseconds at start-up
if TYPE_CHECKING:
    from filelock import BaseFileLock

LOCK_NAME = "watcher.lock"
PID_NAME = "watcher.pid"
# A reader's check holds the lock shared for microseconds: a watcher starting meanwhile waits
# that out, where one that is running holds it for good.
TAKE_SECONDS = 1.0


def hold() -> BaseFileLock | None:
    """Take the host's watcher lock for the rest of the process; PluginError naming the watcher
    that holds it. A folder that cannot hold it gives None: the watcher goes on without
    following the containers' health (the readers could not trust what it wrote there), and
    says why in the one line of its socket, which that folder cannot hold either."""
    from network_plugin.file_lock import NotLockable, open_lock_in
    from network_plugin.watch_folder import open_watch_folder

    folder = warm_root()
    try:
        os.close(open_watch_folder())  # made (0700, the Dokku user's) as the socket's folder is
        descriptor = open_lock_in(folder, LOCK_NAME)
    except (OSError, PluginError, NotLockable):
        return None
    use_site_packages()
    from filelock import FileLock, Timeout

    lock = FileLock(f"/proc/self/fd/{descriptor}", timeout=TAKE_SECONDS)
    try:
        lock.acquire()
    except Timeout:
        os.close(descriptor)
        pid = read_first_line(os.path.join(folder, PID_NAME)) or "unknown"
        raise PluginError(
            f"Another network:watch is running on this host (pid {pid}): one watcher per host;"
            " stop it first (systemctl stop dokku-network-watch, when it is the service)"
        ) from None
    write_atomic(os.path.join(folder, PID_NAME), f"{os.getpid()}\n")
    return lock


def held() -> bool:
    """Does a running watcher hold the lock? (A flock tried shared, never waited on.)"""
    try:
        folder = open_folder(warm_root())
    except (OSError, PluginError):  # no folder (no watcher ever ran), or one that is not ours
        return False
    try:
        descriptor = os.open(LOCK_NAME, READ_FLAGS, dir_fd=folder)
    except OSError:
        return False
    finally:
        os.close(folder)
    try:
        import fcntl

        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False  # nobody held it; closing the descriptor lets ours go
    finally:
        os.close(descriptor)
