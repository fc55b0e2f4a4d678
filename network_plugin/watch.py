"""`dokku network:watch`: keep every app's IP files true while its containers move
(docs/reference.md: network:watch).

Dokku writes `IP.<proc>.<n>` at deploy time only; a container that restarts can
come back with another address and the proxy keeps routing to the old one. The
watcher reconciles every app when it (re)connects to the engine, then follows
the engine's events: a container of an app starting, restarting, unpausing or
changing networks makes one rebuild of that app (the code of `network:rebuild`),
and the proxy of an app whose IP files changed is refreshed. A network created (again)
reattaches the running containers of the apps naming it (`reattach`).

The parts: `engine_events` (a thread reading the engine, reconnecting with backoff),
`watch_schedule` (which job is due when), `watch_jobs` (the pools running them). Here the
main thread joins them: it starts the due jobs and sleeps until an event, a job's end,
the next due moment or the stop wakes it. It never runs or waits on a job itself.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

from network_plugin import container_health, proxy, reattach, watcher_lock
from network_plugin.docker_engine import ContainerState
from network_plugin.engine_events import (
    EngineEvents,
    EventStream,
    Listing,
    connect,
    list_everything,
    list_local_networks,
)
from network_plugin.error_handler import PluginError, describe
from network_plugin.network_config import BuildResult, build_config
from network_plugin.network_view import NetworkView
from network_plugin.output import info, warn
from network_plugin.watch_jobs import HEALTH, REATTACH, REBUILD, REFRESH, JobRunner
from network_plugin.watch_schedule import Schedule

POOL_SIZES = {REBUILD: 4, REATTACH: 2, REFRESH: 2, HEALTH: 2}
# On SIGTERM/SIGINT the jobs running may end for this long (a proxy build is never cut off by
# our own exit); below the service's TimeoutStopSec (60 s), after which systemd kills.
STOP_WAIT_SECONDS = 45.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
IN_SYNC = "Every app is in sync; following the engine's events"


def _free_workers(kind: str, busy: set[str]) -> int:
    return POOL_SIZES[kind] - len(busy)


class HealthFiles(Protocol):
    """Where the readers find the unhealthy containers (`container_health`; tests give a fake)."""

    def write(self, app: str, ids: frozenset[str]) -> bool: ...

    def set_following(self, following: bool) -> None: ...

    def apps_with_files(self) -> list[str]: ...


class _NoHealthFiles:
    """A watcher without its lock (its folder unusable): the readers would trust nothing it wrote."""

    def write(self, app: str, ids: frozenset[str]) -> bool:
        return False

    def set_following(self, following: bool) -> None:
        pass

    def apps_with_files(self) -> list[str]:
        return []


NO_HEALTH = _NoHealthFiles()


class Watcher:
    """The engine's events in, rebuild and refresh jobs out, until `stop()`.

    `build` and `refresh` are the plugin's rebuild and proxy refresh, `naming`, `reattach`
    and `missing` those of `network_plugin.reattach`; `connect`, `listing`, `list_networks`,
    `pause`, `wall_clock` (see `EngineEvents`), `clock` (see `Schedule`) and `heartbeat_clock`
    (see `NetworkView`) the engine's and the clock's. `networks` is its view of the engine's
    networks, which the triggers' agent reads; `health` keeps the unhealthy containers of each app
    (`unhealthy`) where the readers find them.
    """

    def __init__(
        self,
        *,
        build: Callable[[list[str], dict[str, ContainerState] | None], BuildResult] = build_config,
        refresh: Callable[[str], object] = proxy.refresh,
        naming: Callable[[str], list[str]] = reattach.apps_naming,
        reattach: Callable[[str, list[str]], bool] = reattach.reattach,
        missing: Callable[[str, dict[str, ContainerState]], list[str]] = reattach.missing,
        connect: Callable[[], EventStream] = connect,
        listing: Callable[[], Listing] = list_everything,
        list_networks: Callable[[], list[dict]] = list_local_networks,
        pause: Callable[[float], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        heartbeat_clock: Callable[[], float] = time.monotonic,
        stop_wait: float = STOP_WAIT_SECONDS,
        health: HealthFiles = container_health,  # type: ignore[assignment] - a module of those functions
    ) -> None:
        self.build = build
        self.refresh = refresh
        self.naming = naming
        self.reattach = reattach
        self.missing = missing
        self.health = health
        self.unhealthy: dict[str, frozenset[str]] = {}  # app -> its unhealthy containers, as last told
        self.stop_wait = stop_wait
        self.stopping = threading.Event()
        self.wake = threading.Condition()  # guards what follows; notified whenever a job may be due
        self.schedule = Schedule(clock)
        self.listing: dict[str, ContainerState] = {}  # the last reconcile's, for its rebuilds
        self.left_running: list[str] = []  # apps whose jobs outlived the stop's wait
        self.jobs = JobRunner(self.stopping, POOL_SIZES)
        self.networks = NetworkView(heartbeat_clock)
        self.events = EngineEvents(
            self.stopping,
            self._on_sync,
            self._on_app_moved,
            self._on_network_created,
            on_died=self._on_died,
            on_health=self._on_health,
            on_lost=self._on_lost,
            connect=connect,
            listing=listing,
            pause=pause,
            view=self.networks,
            list_networks=list_networks,
            wall_clock=wall_clock,
        )

    def run(self) -> int:
        info("Watching the Docker engine for container changes")
        self._on_lost()  # what an earlier watcher wrote is trusted once this one wrote it anew
        threading.Thread(target=self.events.run, name="events", daemon=True).start()
        threading.Thread(target=self.events.heartbeat, name="heartbeat", daemon=True).start()
        with self.wake:
            while not self.stopping.is_set():
                self._start_due_jobs()
                if self.schedule.following_due():
                    self._say_following(True)
                if self.schedule.in_sync():
                    info(IN_SYNC)
                self.wake.wait(self._seconds_to_next_job())
        self.events.close()
        self._on_lost()
        self._wait_for_jobs()
        self.jobs.shutdown()
        info("Stopped watching the Docker engine")
        return 0

    def stop(self) -> None:
        """No job starts any more; `run` returns once the running ones end (or `stop_wait` passed)."""
        self.stopping.set()
        self.wake_up()

    def wake_up(self) -> None:
        with self.wake:
            self.wake.notify_all()

    def _on_sync(self, apps: list[str], states: dict[str, ContainerState]) -> None:
        with self.wake:
            self.listing = states
            self.schedule.reconcile(apps)
            self.wake.notify_all()

    def _on_app_moved(self, app: str, returning: bool, network_of: str) -> None:
        with self.wake:
            self.schedule.app_moved(app, returning, network_of)
            self.wake.notify_all()

    def _on_died(self, app: str, container_id: str) -> None:
        with self.wake:
            self.schedule.container_died(app, container_id)

    def _on_network_created(self, network: str) -> None:
        apps = self.naming(network)  # the apps' property files, read on the events' thread
        with self.wake:
            self.schedule.network_created(apps, network)
            self.wake.notify_all()

    def _on_health(self, unhealthy: dict[str, frozenset[str]], listed: bool) -> None:
        """The unhealthy containers of the apps in `unhealthy`; `listed`: of every app (a listing)."""
        with self.wake:
            if listed:
                apps = set(unhealthy) | set(self._apps_with_health_files())
                self.unhealthy = dict(unhealthy)
                self.schedule.health_listed(apps)
            else:
                self.unhealthy.update(unhealthy)
                for app in unhealthy:
                    self.schedule.health_changed(app)
            self.wake.notify_all()

    def _apps_with_health_files(self) -> list[str]:
        try:
            return self.health.apps_with_files()
        except (OSError, PluginError) as error:
            warn(f"Unable to list the health files: {describe(error)}")
            return []

    def _on_lost(self) -> None:
        """No one hears the engine now: the readers stop trusting the health files at once."""
        with self.wake:
            self.schedule.health_lost()
        self._say_following(False)

    def _say_following(self, following: bool) -> None:
        try:
            self.health.set_following(following)
        except (OSError, PluginError) as error:
            warn(f"Unable to tell the readers whether to trust the health files: {describe(error)}")

    def _write_health(self, app: str) -> bool:
        with self.wake:
            ids = self.unhealthy.get(app, frozenset())
        return self.health.write(app, ids)

    def _start_due_jobs(self) -> None:
        schedule = self.schedule
        for app in schedule.health_due(_free_workers(HEALTH, schedule.writing_health)):
            self.jobs.start(HEALTH, app, partial(self._write_health, app), partial(self._health_written, app))
        for app, from_listing in schedule.rebuilds_due(_free_workers(REBUILD, schedule.rebuilding)):
            job = (
                partial(self._reconcile, app, self.listing)
                if from_listing
                else partial(self.build, [app], None)
            )
            self.jobs.start(REBUILD, app, job, partial(self._rebuilt, app))
        for app, networks in schedule.reattaches_due(_free_workers(REATTACH, schedule.reattaching)):
            self.jobs.start(
                REATTACH, app, partial(self.reattach, app, networks), partial(self._reattached, app)
            )
        for app in schedule.refreshes_due(_free_workers(REFRESH, schedule.refreshing)):
            self.jobs.start(REFRESH, app, partial(self.refresh, app), partial(self._refreshed, app))

    def _reconcile(self, app: str, states: dict[str, ContainerState]) -> BuildResult:
        """A reconcile's job for one app: rebuild from the listing; the containers the listing
        shows missing from the app's attach networks get a reattach job after it."""
        missing = self.missing(app, states)
        result = self.build([app], states)
        if missing:
            with self.wake:
                for network in missing:
                    self.schedule.network_created([app], network)
        return result

    def _seconds_to_next_job(self) -> float | None:
        """None: nothing is due until an event or a job's end wakes the loop."""
        schedule = self.schedule
        moment = schedule.next_due(
            _free_workers(REBUILD, schedule.rebuilding) > 0,
            _free_workers(REFRESH, schedule.refreshing) > 0,
            _free_workers(REATTACH, schedule.reattaching) > 0,
            _free_workers(HEALTH, schedule.writing_health) > 0,
        )
        return None if moment is None else max(moment - schedule.clock(), 0.0)

    def _rebuilt(self, app: str, result: object) -> None:
        with self.wake:
            if isinstance(result, BuildResult):
                settled = app in result.built and app not in result.unsettled
                self.schedule.rebuilt(app, app in result.changed, settled)
            else:  # it failed (one line said why): the next event or reconcile tries again
                self.schedule.rebuilt(app, changed=False, settled=False)
            self.wake.notify_all()

    def _health_written(self, app: str, result: object) -> None:
        with self.wake:
            self.schedule.health_written(app, result if isinstance(result, bool) else None)
            self.wake.notify_all()

    def _reattached(self, app: str, result: object) -> None:
        with self.wake:
            self.schedule.reattached(app, moved=result is True)
            self.wake.notify_all()

    def _refreshed(self, app: str, result: object) -> None:
        with self.wake:
            self.schedule.refreshed(app)
            self.wake.notify_all()

    def _wait_for_jobs(self) -> None:
        deadline = time.monotonic() + self.stop_wait
        with self.wake:
            if self.schedule.busy():
                apps = ", ".join(sorted(self.schedule.busy()))
                info(f"Stopping once the jobs running end (at most {self.stop_wait:g} s): {apps}")
            while self.schedule.busy():
                left = deadline - time.monotonic()
                if left <= 0:
                    self.left_running = sorted(self.schedule.busy())
                    apps = ", ".join(self.left_running)
                    warn(f"Stopping without waiting longer than {self.stop_wait:g} s for the jobs of {apps}")
                    return
                self.wake.wait(left)


def _ignore(signum: int, frame: object) -> None:
    """A handler, so that the signal neither kills nor raises: `stop_on_signals` acts on it."""


def stop_on_signals(stop: Callable[[], None]) -> None:
    """Call `stop` on SIGTERM or SIGINT, from a thread of its own.

    A Python signal handler runs between two bytecodes of the main thread, maybe while it
    holds a lock that `stop` takes; so the handler does nothing, and the signal's number,
    which the interpreter writes to a pipe (`signal.set_wakeup_fd`), wakes a thread that stops.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _ignore)

    def wait() -> None:
        os.read(read_end, 1)
        stop()

    threading.Thread(target=wait, name="signals", daemon=True).start()


def watch() -> int:
    """Run until SIGTERM or SIGINT, answering the engine triggers meanwhile; exit 0."""
    from network_plugin.agent import Agent

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined] - a journal reads it live
    lock = watcher_lock.hold()  # before the socket: a second watcher must not take it
    watcher = Watcher(health=container_health if lock is not None else NO_HEALTH)
    stop_on_signals(watcher.stop)
    agent = Agent(watcher.networks)
    agent.start()
    try:
        status = watcher.run()
    finally:
        agent.stop()
    for signum in STOP_SIGNALS:  # another one while the interpreter exits must not kill it
        signal.signal(signum, signal.SIG_IGN)
    if watcher.left_running:
        # Their threads would hold up the interpreter's exit: leave them, and their proxy
        # builds, to the service manager.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    if lock is not None:
        lock.release()
    return status
