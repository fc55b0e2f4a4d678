"""One lock per app, serialising every write to its properties and IP/PORT files.

An exclusive flock(2) on `<property dir>/.lock`, the same lock the `filelock`
package takes on Unix, taken with the standard library: filelock's import alone
(45 ms for 4.x: inspect, logging, secrets, decimal) made every writing trigger
five times the interpreter's start-up. The kernel drops the lock when its holder
dies, even by SIGKILL, so a killed writer never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
import time

from network_plugin.error_handler import PluginError
from network_plugin.files import FILE_MODE, dokku_owner, ensure_dir
from network_plugin.paths import property_dir

LOCK_NAME = ".lock"
# A writer holds the lock for milliseconds; minutes mean a hung process, which must not
# stall every deploy of the app forever.
LOCK_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.005
_held: set[str] = set()


class AppLock:
    """Hold the app's lock for a `with` block; re-entrant in one process.

    Re-entrance lets one operation (e.g. a rebuild) hold the lock around many
    single writes that each take it too, without deadlocking on itself. A plain
    class rather than contextlib keeps the import cheap for triggers that only read.
    """

    def __init__(self, app: str, timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.timeout = timeout
        self.fd: int | None = None

    def __enter__(self) -> None:
        if self.app in _held:
            return
        path = os.path.join(ensure_dir(property_dir(self.app)), LOCK_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        try:
            self._acquire(fd)
            owner = dokku_owner()
            if owner:
                # So that a later trigger running as the Dokku user can take it too.
                os.fchown(fd, *owner)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        _held.add(self.app)

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PluginError(
                        f"Timed out after {self.timeout:g}s waiting for the lock of {self.app}"
                    ) from None
                time.sleep(POLL_SECONDS)

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is None:
            return
        _held.discard(self.app)
        os.close(self.fd)  # closing the last descriptor releases the flock
        self.fd = None
