"""One lock per app, serialising every write to its properties and IP/PORT files."""

from __future__ import annotations

import os

from network_plugin.files import FILE_MODE, dokku_owner, ensure_dir
from network_plugin.paths import property_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from filelock import FileLock

LOCK_NAME = ".lock"
_held: set[str] = set()


class AppLock:
    """Hold the app's lock (`<property dir>/.lock`) for a `with` block; re-entrant in one process.

    Re-entrance lets one operation (e.g. a rebuild) hold the lock around many
    single writes that each take it too, without deadlocking on itself. A plain
    class rather than contextlib keeps the import cheap for triggers that only read.
    """

    def __init__(self, app: str) -> None:
        self.app = app
        self.lock: FileLock | None = None

    def __enter__(self) -> None:
        if self.app in _held:
            return
        from filelock import FileLock  # writers only; readers never pay for the import

        path = os.path.join(ensure_dir(property_dir(self.app)), LOCK_NAME)
        lock = FileLock(path, mode=FILE_MODE)
        lock.acquire()
        self.lock = lock
        _held.add(self.app)
        owner = dokku_owner()
        if owner and os.path.exists(path):
            # So that a later trigger running as the Dokku user can take it too.
            os.chown(path, *owner)

    def __exit__(self, *exc_info: object) -> None:
        if self.lock is None:
            return
        _held.discard(self.app)
        self.lock.release()
        self.lock = None
