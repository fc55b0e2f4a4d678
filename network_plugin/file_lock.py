"""One lock per app, serialising every write to its properties and IP/PORT files.

A `filelock` lock on `<property dir>/.lock` (an exclusive flock(2) on Unix): the kernel
drops it when its holder dies, even by SIGKILL, so a killed writer never blocks the next
one. `filelock` is imported when a lock is first taken, never by a trigger that only reads.
"""

from __future__ import annotations

import os

from network_plugin.error_handler import PluginError
from network_plugin.files import FILE_MODE, dokku_owner, ensure_dir
from network_plugin.paths import property_dir

LOCK_NAME = ".lock"
# A writer holds the lock for milliseconds; minutes mean a hung process, which must not
# stall every deploy of the app forever.
LOCK_TIMEOUT_SECONDS = 120.0
_held: set[str] = set()

TYPE_CHECKING = False  # typing itself costs milliseconds at start-up
if TYPE_CHECKING:
    from filelock import BaseFileLock


class AppLock:
    """Hold the app's lock for a `with` block; re-entrant in one process.

    Re-entrance lets one operation (e.g. a rebuild) hold the lock around many
    single writes that each take it too, without deadlocking on itself. A plain
    class rather than contextlib keeps the import cheap for triggers that only read.
    """

    def __init__(self, app: str, timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.timeout = timeout
        self.lock: BaseFileLock | None = None

    def __enter__(self) -> None:
        if self.app in _held:
            return
        from filelock import FileLock, Timeout

        path = os.path.join(ensure_dir(property_dir(self.app)), LOCK_NAME)
        lock = FileLock(path, timeout=self.timeout, mode=FILE_MODE)
        try:
            lock.acquire()
        except Timeout:
            message = f"Timed out after {self.timeout:g}s waiting for the lock of {self.app}"
            raise PluginError(message) from None
        owner = dokku_owner()
        if owner:
            # So that a later trigger running as the Dokku user can take it too.
            os.chown(path, *owner, follow_symlinks=False)
        self.lock = lock
        _held.add(self.app)

    def __exit__(self, *exc_info: object) -> None:
        if self.lock is None:
            return
        _held.discard(self.app)
        self.lock.release()
        self.lock = None
