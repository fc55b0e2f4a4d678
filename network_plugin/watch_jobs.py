"""`network:watch`'s jobs: rebuilds and proxy refreshes, off the watcher's main loop.

Small bounded pools, so a rebuild (milliseconds) never queues behind slow proxy
refreshes (seconds each) of other apps. The watcher starts a job only when a worker of
its pool is free and the app has no other job, so nothing ever waits in a pool's queue.
A job never raises out of its worker: a failure is one warning line, and `done` is always
called. A job whose turn comes after the stop does not run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from network_plugin.error_handler import describe
from network_plugin.output import warn

REBUILD = "rebuild"
REATTACH = "reattach"
REFRESH = "refresh"
HEALTH = "health"
FAILURE = {
    HEALTH: "Unable to write the unhealthy containers of {app}",
    REBUILD: "Unable to rebuild the network configuration of {app}",
    REATTACH: "Unable to attach {app} to its networks again",
    REFRESH: "Unable to refresh the proxy of {app}",
}


class JobRunner:
    def __init__(self, stopping: threading.Event, sizes: dict[str, int]) -> None:
        self.stopping = stopping
        self.pools = {kind: ThreadPoolExecutor(size, thread_name_prefix=kind) for kind, size in sizes.items()}

    def start(self, kind: str, app: str, job: Callable[[], object], done: Callable[[object], None]) -> None:
        """Run `job()` on the pool of `kind`; then `done(what it returned)` (None when it failed)."""
        self.pools[kind].submit(self._run, kind, app, job, done)

    def _run(self, kind: str, app: str, job: Callable[[], object], done: Callable[[object], None]) -> None:
        outcome = None
        try:
            if not self.stopping.is_set():
                outcome = job()
        except Exception as error:  # noqa: BLE001 - one app's failure must not end the watcher
            warn(f"{FAILURE[kind].format(app=app)}: {describe(error)}")
        finally:
            done(outcome)

    def shutdown(self) -> None:
        """Let the pools' threads end once idle; never waits (the watcher waited as long as it may)."""
        for pool in self.pools.values():
            pool.shutdown(wait=False)
