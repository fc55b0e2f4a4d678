"""One lock per app, serialising every write to its properties and IP/PORT files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from network_plugin.files import FILE_MODE, dokku_owner, ensure_dir
from network_plugin.paths import property_dir

LOCK_NAME = ".lock"
_held: set[str] = set()


@contextmanager
def app_lock(app: str) -> Iterator[None]:
    """Hold the app's lock (`<property dir>/.lock`) for the block; re-entrant in one process.

    Re-entrance lets one operation (e.g. a rebuild) hold the lock around many
    single writes that each take it too, without deadlocking on itself.
    """
    if app in _held:
        yield
        return
    from filelock import FileLock  # writers only; readers never pay for the import

    path = os.path.join(ensure_dir(property_dir(app)), LOCK_NAME)
    with FileLock(path, mode=FILE_MODE):
        owner = dokku_owner()
        if owner and os.path.exists(path):
            # So that a later trigger running as the Dokku user can take it too.
            os.chown(path, *owner)
        _held.add(app)
        try:
            yield
        finally:
            _held.discard(app)
