"""Stand-ins for what `network:watch` drives, so its loop runs without an engine: a clock the
test moves, event streams the test feeds, and rebuild/refresh functions that record their
calls and wait at a gate when told to."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pytest

from network_plugin.docker_engine import ContainerState
from network_plugin.network_config import BuildResult
from network_plugin.watch import Watcher
from network_plugin.watch_schedule import QUIET_SECONDS
from tests.polling import wait_for

END = object()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def container_event(action: str, labels: dict[str, str], container_id: str = "c1") -> dict:
    return {"Type": "container", "Action": action, "Actor": {"ID": container_id, "Attributes": labels}}


def deploy_labels(app: str) -> dict[str, str]:
    return {"com.dokku.app-name": app, "com.dokku.container-type": "deploy", "name": f"{app}.web.1"}


def network_created(name: str, network_id: str = "n1") -> dict:
    """The engine's event of a network created: its name in the attributes, its id as the actor's."""
    return {"Type": "network", "Action": "create", "Actor": {"ID": network_id, "Attributes": {"name": name}}}


def health_status(app: str, status: str) -> dict:
    """The engine's event of the health of `app`'s deploy container becoming `status`."""
    return container_event(f"health_status: {status}", deploy_labels(app), f"{app}-web-1")


def moved(app: str, container_id: str = "") -> dict:
    """The `start` event of a deploy container of `app`."""
    return container_event("start", deploy_labels(app), container_id or f"{app}-web-1")


class FakeStream:
    """An event stream the test feeds; it ends (`end()`), breaks (`end(error)`) or is closed."""

    def __init__(self) -> None:
        self.items: queue.Queue[object] = queue.Queue()
        self.closed = False

    def put(self, *events: object) -> None:
        for event in events:
            self.items.put(event)

    def end(self, error: Exception | None = None) -> None:
        self.items.put(END if error is None else error)

    def __iter__(self) -> Iterator[object]:
        while True:
            item = self.items.get()
            if item is END:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        self.closed = True
        self.items.put(END)


class FakeEngine:
    """`connect` and `listing` of the watcher: each connect opens a new stream, unless a
    failure is queued; each listing names `apps`, each with one running deploy container."""

    def __init__(self, apps: list[str]) -> None:
        self.apps = apps
        self.failures: list[Exception] = []
        self.streams: list[FakeStream] = []
        self.listings = 0
        self.unhealthy: set[str] = set()  # apps whose container a listing shows unhealthy

    def connect(self) -> FakeStream:
        if self.failures:
            raise self.failures.pop(0)
        stream = FakeStream()
        self.streams.append(stream)
        return stream

    def listing(self) -> tuple[list[str], dict[str, ContainerState]]:
        self.listings += 1
        states = {
            f"{app}-web-1": ContainerState(
                id=f"{app}-web-1",
                name=f"{app}.web.1",
                running=True,
                network_mode="bridge",
                labels=deploy_labels(app),
                networks={"bridge": "10.0.0.2"},
                health="unhealthy" if app in self.unhealthy else "healthy",
            )
            for app in self.apps
        }
        return list(self.apps), states

    def stream(self) -> FakeStream:
        """The stream opened last (waiting for the watcher to open it)."""
        return wait_for(lambda: self.streams and self.streams[-1], "a connect")  # type: ignore[return-value]


class Jobs:
    """Rebuild, refresh and reattach functions that record their calls. A rebuild of an app in
    `changed` rewrites files, one in `unsettled` finds containers not running; `failing` rebuilds
    and reattaches and `failing_refreshes` raise; the refresh of an app in `slow` waits until
    `release()`. `naming` says which apps name a network, `initial` which is each app's initial
    network, `missing` which networks a reconcile finds an app's containers lack."""

    def __init__(self) -> None:
        self.changed: set[str] = set()
        self.unsettled: set[str] = set()
        self.failing: dict[str, Exception] = {}
        self.failing_refreshes: dict[str, Exception] = {}
        self.slow: set[str] = set()
        self.gate = threading.Event()
        self.rebuilds: list[tuple[str, bool]] = []  # (app, from the reconcile's listing)
        self.refreshes: list[str] = []
        self.naming: dict[str, list[str]] = {}  # network -> apps naming it
        self.initial: dict[str, str] = {}
        self.missing: dict[str, list[str]] = {}
        self.reattaches: list[tuple[str, list[str]]] = []
        self.guard = threading.Lock()

    def apps_naming(self, network: str) -> list[str]:
        return self.naming.get(network, [])

    def reattach(self, app: str, networks: list[str]) -> bool:
        with self.guard:
            self.reattaches.append((app, networks))
        if app in self.failing:
            raise self.failing[app]
        return self.initial.get(app) in networks

    def missing_networks(self, app: str, states: dict[str, ContainerState]) -> list[str]:
        return self.missing.get(app, [])

    def build(self, apps: list[str], states: dict[str, ContainerState] | None) -> BuildResult:
        (app,) = apps
        with self.guard:
            self.rebuilds.append((app, states is not None))
        if app in self.failing:
            raise self.failing[app]
        result = BuildResult()
        result.built.add(app)  # every app has deployed containers on the fake host
        if app in self.changed:
            result.changed[app] = ["IP.web.1"]
        if app in self.unsettled:
            result.unsettled.add(app)
        return result

    def refresh(self, app: str) -> bool:
        with self.guard:
            self.refreshes.append(app)
        if app in self.slow:
            assert self.gate.wait(60), f"the refresh of {app} was never released"
        if app in self.failing_refreshes:
            raise self.failing_refreshes[app]
        return True

    def release(self) -> None:
        self.gate.set()

    def rebuilt(self, app: str) -> int:
        with self.guard:
            return sum(1 for name, _ in self.rebuilds if name == app)


class FakeHealthFiles:
    """The watcher's health files in memory: app -> ids written, and whether readers trust them
    (`following`, with every change of it in `said`)."""

    def __init__(self) -> None:
        self.files: dict[str, frozenset[str]] = {}
        self.said: list[bool] = []
        self.writes: list[tuple[str, frozenset[str]]] = []
        self.guard = threading.Lock()

    @property
    def following(self) -> bool:
        return bool(self.said) and self.said[-1]

    def write(self, app: str, ids: frozenset[str]) -> bool:
        with self.guard:
            self.writes.append((app, ids))
            before = self.files.pop(app, frozenset())
            if ids:
                self.files[app] = ids
            return before != ids

    def set_following(self, following: bool) -> None:
        with self.guard:
            self.said.append(following)

    def apps_with_files(self) -> list[str]:
        with self.guard:
            return sorted(self.files)


class LoopUnderTest:
    """A `Watcher` on fakes, its loop in a thread; `stop()` stops it and returns its status.

    Three fake clocks: `clock` the schedule's, `wall_clock` the time of day the events' times
    are compared with, `heartbeat_clock` the view's heartbeat's (standing still, no beat finds
    a stall until the test moves it)."""

    def __init__(self, apps: list[str], stop_wait: float = 60.0) -> None:
        self.clock = FakeClock()
        self.wall_clock = FakeClock()
        self.heartbeat_clock = FakeClock()
        self.engine = FakeEngine(apps)
        self.jobs = Jobs()
        self.health = FakeHealthFiles()
        self.pauses: list[float] = []
        self.watcher = Watcher(
            build=self.jobs.build,
            refresh=self.jobs.refresh,
            naming=self.jobs.apps_naming,
            reattach=self.jobs.reattach,
            missing=self.jobs.missing_networks,
            connect=self.engine.connect,
            listing=self.engine.listing,
            list_networks=list,
            pause=self._pause,
            clock=self.clock,
            wall_clock=self.wall_clock,
            heartbeat_clock=self.heartbeat_clock,
            stop_wait=stop_wait,
            health=self.health,
        )
        self.status: list[int] = []
        self.thread = threading.Thread(target=lambda: self.status.append(self.watcher.run()), daemon=True)

    def _pause(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        return self.watcher.stopping.is_set()

    def start(self) -> LoopUnderTest:
        self.thread.start()
        return self

    def containers_moved(self, *apps: str) -> None:
        """Their start events, read; then the clock moves on so that their rebuilds are due."""
        self.engine.stream().put(*(moved(app) for app in apps))
        pending = self.watcher.schedule.moved.pending
        self.wait_until(lambda: all(app in pending for app in apps), f"the events of {apps}")
        self.advance(QUIET_SECONDS)

    def advance(self, seconds: float) -> None:
        """Move the clock on and let the loop look at it."""
        with self.watcher.wake:
            self.clock.now += seconds
        self.watcher.wake_up()

    def wait_until(self, condition: object, what: str) -> None:
        def holds() -> bool:
            with self.watcher.wake:  # what the loop sees, not a state half-way through a change
                return bool(condition())  # type: ignore[operator]

        wait_for(holds, what)

    def stop(self) -> int:
        self.watcher.stop()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the watcher did not stop"
        return self.status[0]


@pytest.fixture
def loop():
    """Start a watcher on fakes (`LoopUnderTest`); always stopped and its gates opened afterwards."""
    started: list[LoopUnderTest] = []

    def start(apps: list[str], **options) -> LoopUnderTest:
        started.append(LoopUnderTest(apps, **options))
        return started[-1]

    yield start
    for each in started:
        each.jobs.release()
        if each.thread.is_alive():
            each.stop()
