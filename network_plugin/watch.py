"""`dokku network:watch`: keep every app's IP files true while its containers move
(docs/reference.md: network:watch).

Dokku writes `IP.<proc>.<n>` at deploy time only; a container that restarts can
come back with another address and the proxy keeps routing to the old one. The
watcher reconciles every app when it (re)connects to the engine, then follows
the engine's events: a container of an app starting, restarting, unpausing or
changing networks makes one rebuild of that app (the code of `network:rebuild`),
and the proxy of an app whose IP files changed is refreshed.

Threads: one reads the event stream, one short-lived thread per app rebuild (at
most one per app, so the app lock is never shared between threads), and the
main thread debounces, dispatches, reconnects and watches for SIGTERM/SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable

from network_plugin import docker_engine, proxy
from network_plugin.apps import list_apps
from network_plugin.docker_engine import APP_LABEL, is_deploy_container
from network_plugin.error_handler import describe
from network_plugin.network_config import BuildResult, build_config
from network_plugin.output import info, warn
from network_plugin.validation import is_app_name

# Events of one app closer together than this make one rebuild (a deploy, a restart storm)...
QUIET_SECONDS = 0.15
# ...but an app whose events never pause is still rebuilt this long after the first one.
MAX_DELAY_SECONDS = 1.0
# The proxy is refreshed once every container of the app runs again: a storm spread over
# seconds may take several rebuilds, each fixing files early, but reloads the proxy once.
# An app that never settles (a container crash-looping) still gets its refresh this late.
PROXY_MAX_DELAY_SECONDS = 10.0
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# How often an idle main thread looks at the stop flag: SIGTERM is answered well within a second.
TICK_SECONDS = 0.2
MAX_PARALLEL_JOBS = 4
# While an app is in motion (its last rebuild found containers not running yet), it is
# rebuilt at most this often, however long its storm lasts; a settled app answers at once.
MIN_INTERVAL_SECONDS = 2.0
CONTAINER_ACTIONS = ("start", "restart", "unpause")
NETWORK_ACTIONS = ("connect", "disconnect")
STOP_ACTION = "die"
FORGET_ACTION = "destroy"
EVENT_FILTERS = {
    "type": ["container", "network"],
    "event": [*CONTAINER_ACTIONS, *NETWORK_ACTIONS, STOP_ACTION, FORGET_ACTION],
}


class Debouncer:
    """Apps with work waiting, and when each becomes due: `quiet` after its last event, at most
    `max_delay` after its first, and never sooner than `min_interval` after its last turn."""

    def __init__(self, quiet: float, max_delay: float, min_interval: float = 0.0) -> None:
        self.quiet = quiet
        self.max_delay = max_delay
        self.min_interval = min_interval
        self.pending: dict[str, tuple[float, float]] = {}  # app -> (first event, last event)
        self.last_turn: dict[str, float] = {}

    def add(self, app: str, now: float) -> None:
        first, _ = self.pending.get(app, (now, now))
        self.pending[app] = (first, now)

    def _due_at(self, app: str) -> float:
        first, last = self.pending[app]
        settled = min(last + self.quiet, first + self.max_delay)
        turn = self.last_turn.get(app)
        return settled if turn is None else max(settled, turn + self.min_interval)

    def take_due(self, now: float, busy: set[str], limit: int) -> list[str]:
        """Remove and return up to `limit` due apps, leaving alone the ones being rebuilt."""
        due = sorted(app for app in self.pending if app not in busy and self._due_at(app) <= now)[:limit]
        for app in due:
            del self.pending[app]
            if self.min_interval:
                self.last_turn[app] = now
        return due

    def next_due(self, busy: set[str]) -> float | None:
        times = [self._due_at(app) for app in self.pending if app not in busy]
        return min(times) if times else None

    def release(self, app: str) -> None:
        """The app settled: its next event needs no `min_interval` wait."""
        self.last_turn.pop(app, None)

    def forget_before(self, moment: float) -> None:
        """Drop apps whose every event came before `moment` (a reconcile after it covered them)."""
        self.pending = {app: times for app, times in self.pending.items() if times[1] >= moment}


class Containers:
    """The engine's Dokku deploy containers as the events tell them: id -> app, and which run.

    Network events carry only the container's id. A container connects to its
    networks before it starts and leaves them after it dies: those events change
    no address a proxy could use, and its start event follows anyway.
    """

    def __init__(self, states: Iterable[docker_engine.ContainerState] = ()) -> None:
        self.apps: dict[str, str] = {}
        self.running: set[str] = set()
        for state in states:
            if is_app_name(state.app) and is_deploy_container(state.labels):
                self.apps[state.id] = state.app
                if state.running:
                    self.running.add(state.id)

    def app_of_event(self, event: object) -> str | None:
        """The app an engine event asks to rebuild, or None; ValueError for a malformed event."""
        if not isinstance(event, dict):
            raise ValueError(f"not an object: {str(event)[:80]}")
        kind, action, actor = event.get("Type"), event.get("Action"), event.get("Actor")
        if not isinstance(kind, str) or not isinstance(action, str) or not isinstance(actor, dict):
            raise ValueError(f"no Type, Action or Actor: {str(event)[:80]}")
        attributes = actor.get("Attributes") or {}
        if not isinstance(attributes, dict):
            raise ValueError(f"Attributes is not an object: {str(event)[:80]}")
        if kind == "network":
            container_id = attributes.get("container", "")
            running = action in NETWORK_ACTIONS and container_id in self.running
            return self.apps.get(container_id) if running else None
        if kind != "container":
            return None
        return self._container_event(action, actor.get("ID", ""), attributes)

    def _container_event(self, action: str, container_id: str, labels: dict[str, str]) -> str | None:
        if action == FORGET_ACTION:
            self.apps.pop(container_id, None)
        if action in (FORGET_ACTION, STOP_ACTION):
            self.running.discard(container_id)
            return None
        app = labels.get(APP_LABEL, "")  # a container event's attributes hold its labels
        # Anyone may label a container: a name that is no app's must never become a path.
        if not is_app_name(app) or not is_deploy_container(labels) or action not in CONTAINER_ACTIONS:
            return None
        self.apps[container_id] = app
        self.running.add(container_id)
        return app


class Watcher:
    def __init__(self) -> None:
        self.stopping = False
        self.changed = threading.Condition()  # guards everything below; notified on events and ends
        self.rebuilds = Debouncer(QUIET_SECONDS, MAX_DELAY_SECONDS, MIN_INTERVAL_SECONDS)
        self.owed: dict[str, float] = {}  # app -> when its files first changed without a refresh
        self.busy: set[str] = set()
        self.containers = Containers()
        self.stream: object | None = None
        self.stream_lost = False
        self.stream_error = ""

    def stop(self, signum: int = 0, frame: object = None) -> None:
        self.stopping = True  # signal handler: only a flag, the loops look at it every tick

    def run(self) -> int:
        info("Watching the Docker engine for container changes")
        backoff = FIRST_BACKOFF_SECONDS
        while not self.stopping:
            try:
                self._connect()
                self._reconcile()
            except Exception as error:  # noqa: BLE001 - an engine going away fails in many ways
                self._close_stream()
                warn(f"{describe(error)}; trying again in {backoff:g} s")
                if not self._sleep(backoff):
                    break
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = FIRST_BACKOFF_SECONDS
            info("Every app is in sync; following the engine's events")
            self._dispatch()
            if self.stopping:
                break
            warn(
                f"Lost the Docker engine's event stream ({self.stream_error}); reconnecting in {backoff:g} s"
            )
            self._close_stream()
            if not self._sleep(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        self._close_stream()
        info("Stopped watching the Docker engine")
        return 0

    def _sleep(self, seconds: float) -> bool:
        """Wait `seconds` unless asked to stop; False when stopping."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(TICK_SECONDS, max(deadline - time.monotonic(), 0)))
        return not self.stopping

    def _connect(self) -> None:
        """Open the event stream before reconciling, so no change between the two goes unseen."""
        client = docker_engine.api()
        client.ping()  # fails fast (the SDK's timeout) where the stream, which has none, could hang
        stream = client.events(decode=True, filters=EVENT_FILTERS)
        with self.changed:
            self.stream, self.stream_lost = stream, False
        threading.Thread(target=self._read, args=(stream,), name="events", daemon=True).start()

    def _read(self, stream: object) -> None:
        error_text = "the engine closed it"
        try:
            for event in stream:  # type: ignore[attr-defined]
                self._on_event(event)
        except Exception as error:  # noqa: BLE001 - a broken stream means reconnecting, whatever broke it
            error_text = describe(error)
        with self.changed:
            if stream is self.stream:
                self.stream_lost, self.stream_error = True, error_text
            self.changed.notify_all()

    def _on_event(self, event: object) -> None:
        with self.changed:
            try:
                app = self.containers.app_of_event(event)
            except ValueError as error:
                warn(f"Ignoring an unexpected engine event: {error}")
                return
            if app:
                now = time.monotonic()
                self.rebuilds.add(app, now)
                self.changed.notify_all()

    def _close_stream(self) -> None:
        with self.changed:
            stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.close()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - closing a dead socket may fail; it is gone either way
                pass

    def _wait_until_idle(self) -> None:
        """Let running rebuilds end: a reconcile covers every app, and one app is rebuilt by one thread."""
        with self.changed:
            while self.busy and not self.stopping:
                self.changed.wait(TICK_SECONDS)

    def _reconcile(self) -> None:
        """Every app, from one listing of all of Dokku's containers (the work of `rebuildall`)."""
        self._wait_until_idle()
        started = time.monotonic()
        states = docker_engine.dokku_containers()
        with self.changed:
            self.containers = Containers(states.values())
        apps = list_apps()
        if apps:
            self._refresh_settled(apps, build_config(apps, states))
        with self.changed:
            self.rebuilds.forget_before(started)

    def _dispatch(self) -> None:
        """Start the due rebuilds and overdue refreshes until the stream is lost or a stop is asked."""
        with self.changed:
            while not self.stopping and not self.stream_lost:
                now = time.monotonic()
                for app in self.rebuilds.take_due(now, self.busy, MAX_PARALLEL_JOBS - len(self.busy)):
                    self._start(app, self._rebuild)
                # A refresh waits for the app's rebuilds, and for none of them to be running.
                waiting = self.busy | set(self.rebuilds.pending)
                overdue = {
                    app: since + PROXY_MAX_DELAY_SECONDS
                    for app, since in self.owed.items()
                    if app not in waiting
                }
                for app in sorted(app for app, due in overdue.items() if due <= now):
                    self._start(app, self._refresh)
                    del overdue[app]
                self.changed.wait(self._next_wait(now, list(overdue.values())))

    def _next_wait(self, now: float, moments: list[float]) -> float:
        """Seconds until the next due work (a job ending or an event notifies sooner), at most a tick."""
        next_rebuild = self.rebuilds.next_due(self.busy)
        if next_rebuild is not None and len(self.busy) < MAX_PARALLEL_JOBS:
            moments.append(next_rebuild)
        return min([TICK_SECONDS, *(max(moment - now, 0.0) for moment in moments)])

    def _start(self, app: str, job: Callable[[str], object]) -> None:
        """Run `job(app)` in its own thread; the app is busy until it ends."""
        self.busy.add(app)
        threading.Thread(target=self._run_job, args=(app, job), name=app, daemon=True).start()

    def _run_job(self, app: str, job: Callable[[str], object]) -> None:
        try:
            job(app)
        except Exception as error:  # noqa: BLE001 - one app's failure must not end the watcher
            warn(f"Unable to rebuild the network configuration of {app}: {describe(error)}")
        finally:
            with self.changed:
                self.busy.discard(app)
                self.changed.notify_all()

    def _rebuild(self, app: str) -> None:
        result = build_config([app])
        if app not in result.unsettled:
            with self.changed:
                self.rebuilds.release(app)
        self._refresh_settled([app], result)

    def _refresh_settled(self, apps: list[str], result: BuildResult) -> None:
        """Refresh the proxy of the apps among `apps` whose files changed and all of whose containers run.

        An app still in motion (containers not started yet) owes its refresh to a later rebuild.
        """
        now = time.monotonic()
        with self.changed:
            for app in result.changed:
                self.owed.setdefault(app, now)
            ready = sorted(app for app in apps if app in self.owed and app not in result.unsettled)
            for app in ready:
                del self.owed[app]
        for app in ready:
            proxy.refresh(app)

    def _refresh(self, app: str) -> None:
        with self.changed:
            self.owed.pop(app, None)
        proxy.refresh(app)


def watch() -> int:
    """Run until SIGTERM or SIGINT; exit 0."""
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined] - a journal reads it live
    watcher = Watcher()
    signal.signal(signal.SIGTERM, watcher.stop)
    signal.signal(signal.SIGINT, watcher.stop)
    return watcher.run()
