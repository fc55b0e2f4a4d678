"""The engine's events of Dokku's deploy containers, followed across reconnects (docs/reference.md:
network:watch).

`EngineEvents.run` (a thread of its own) connects, lists Dokku's containers, hands the
listing over (`on_sync`), then reads the event stream and hands over each app whose
containers moved (`on_app_moved`, with whether a container of it runs again, and the container
when only a network event of it says so), each running container that died (`on_died`) and each
network created (`on_network_created`). A failed connect and a lost stream take the same
way back: one warning line, a pause that doubles up to 30 s, and a new connect (which lists
again: whatever happened in between is covered). Each event is parsed once (`parse_event`);
a new kind of event is one more filter value, one more branch in `DeployContainers.apply` or
beside it (as `created_network`), and one more hand-over callable.

The engine drops the events of a subscriber that falls behind (a buffer of 1,024, then
100 ms), and says nothing. So a watcher that may have fallen behind lists everything again at
once, as after a reconnect: when it reads an event more than `BEHIND_SECONDS` later than the
least lag seen on that stream (the least, so that an engine's clock set apart from ours does
not count), and when its heartbeat (`heartbeat`, on a thread of its own) finds the whole
process was stalled that long.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from network_plugin import docker_engine
from network_plugin.apps import list_apps
from network_plugin.container_health import UNHEALTHY
from network_plugin.docker_engine import APP_LABEL, ContainerState, is_deploy_container
from network_plugin.error_handler import describe
from network_plugin.network_view import BEHIND_SECONDS, NetworkView
from network_plugin.output import warn
from network_plugin.validation import is_app_name, is_app_network

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
HEARTBEAT_SECONDS = 0.25  # 4 wakes a second: idle, the watcher costs next to nothing
# What the watcher says, before "; listing everything again", when it may have fallen behind.
STALLED = "The watcher was stalled for {:.1f} s: the engine may have dropped events meanwhile"
LATE = "The engine's events reach the watcher {:.1f} s late: it may have dropped some"
CONTAINER_ACTIONS = ("start", "restart", "unpause")
NETWORK_ACTIONS = ("connect", "disconnect")
STOP_ACTION = "die"
CREATE_ACTION = "create"  # a network's; the filter also lets containers' `create` through: ignored
DESTROY_ACTION = "destroy"  # a container's (forget it) and a network's (the view drops it)
FORGET_ACTION = DESTROY_ACTION
# A container's health changed: "health_status: unhealthy" (the engine's filter matches this
# prefix, and then every value as a prefix: no other action begins with one of ours).
HEALTH_ACTION = "health_status"
# After these a container's health is unknown to the readers (a start makes it `starting`).
HEALTH_RESET_ACTIONS = ("start", "restart", STOP_ACTION, DESTROY_ACTION)
EVENT_FILTERS = {
    "type": ["container", "network"],
    "event": [
        *CONTAINER_ACTIONS,
        *NETWORK_ACTIONS,
        STOP_ACTION,
        DESTROY_ACTION,
        CREATE_ACTION,
        HEALTH_ACTION,
    ],
}


class EventStream(Protocol):
    """The SDK's decoded event stream: its events until the engine closes it; close() ends it."""

    def __iter__(self) -> Iterator[object]: ...

    def close(self) -> None: ...


Listing = tuple[list[str], dict[str, ContainerState]]  # (apps, container id -> state)


@dataclass(frozen=True)
class EngineEvent:
    """One event of the engine's stream, checked once by `parse_event` for everything that
    reads it: the deploy containers, the network view, the networks created."""

    kind: str  # the engine's Type: "container" or "network" (the filter lets no other through)
    action: str
    actor: str  # the container's or the network's id
    attributes: dict[str, str]  # a container's labels; a network's name (and a container's id)
    scope: str  # "local" or "swarm"
    time: float | None  # when it happened by the engine's clock, in seconds (None: not said)

    @property
    def network_name(self) -> str:
        return self.attributes.get("name", "")

    @property
    def network_container(self) -> str:
        """The container a network's connect or disconnect is of ('' for any other event)."""
        return self.attributes.get("container", "") if self.kind == "network" else ""


def parse_event(raw: object) -> EngineEvent:
    """The engine's decoded event; ValueError when it is malformed (it changes nothing)."""
    if not isinstance(raw, dict):
        raise ValueError(f"not an object: {str(raw)[:80]}")
    kind, action, actor = raw.get("Type"), raw.get("Action"), raw.get("Actor")
    if not isinstance(kind, str) or not isinstance(action, str) or not isinstance(actor, dict):
        raise ValueError(f"no Type, Action or Actor: {str(raw)[:80]}")
    attributes = actor.get("Attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in attributes.items()
    ):
        raise ValueError(f"Attributes is not an object of strings: {str(raw)[:80]}")
    actor_id, scope, nanoseconds = actor.get("ID", ""), raw.get("scope", ""), raw.get("timeNano")
    if not isinstance(actor_id, str) or not isinstance(scope, str):
        raise ValueError(f"an ID or scope that is not a string: {str(raw)[:80]}")
    if nanoseconds is not None and (not isinstance(nanoseconds, int) or isinstance(nanoseconds, bool)):
        raise ValueError(f"a timeNano that is not a number: {str(raw)[:80]}")
    event = EngineEvent(
        kind, action, actor_id, attributes, scope, None if nanoseconds is None else nanoseconds / 1e9
    )
    if kind == "network" and action in (CREATE_ACTION, DESTROY_ACTION) and not event.network_name:
        raise ValueError(f"a network {action} event without a name: {str(raw)[:80]}")
    return event


class DeployContainers:
    """The engine's Dokku deploy containers as the events tell them: id -> app, and which run.

    Network events carry only the container's id. A container connects to its
    networks before it starts and leaves them as it dies: those events change
    no address a proxy could use, and its start event follows anyway. Docker 20.10 sends
    a stop's `disconnect` after the `die`, 28.5 before it: then the container is still known
    running, and the rebuild its disconnect asked for is dropped at its `die` (`dying`).
    """

    def __init__(self, states: Iterable[ContainerState] = ()) -> None:
        self.apps: dict[str, str] = {}
        self.running: set[str] = set()
        self.unhealthy: dict[str, str] = {}  # id -> app, of the running ones Docker finds unhealthy
        for state in states:
            if is_app_name(state.app) and is_deploy_container(state.labels):
                self.apps[state.id] = state.app
                if state.running:
                    self.running.add(state.id)
                    if state.health == UNHEALTHY:
                        self.unhealthy[state.id] = state.app

    def unhealthy_by_app(self) -> dict[str, frozenset[str]]:
        return {app: self.unhealthy_of(app) for app in set(self.unhealthy.values())}

    def unhealthy_of(self, app: str) -> frozenset[str]:
        return frozenset(container_id for container_id, owner in self.unhealthy.items() if owner == app)

    def health_changed(self, event: EngineEvent) -> str | None:
        """Update the unhealthy containers from an event (before `apply`): the app whose set
        changed, or None."""
        if event.kind != "container":
            return None
        if event.action.startswith(HEALTH_ACTION):
            status = event.action[len(HEALTH_ACTION) :].lstrip(": ")
            app = event.attributes.get(APP_LABEL, "")
            if status == UNHEALTHY and is_app_name(app) and is_deploy_container(event.attributes):
                known = self.unhealthy.get(event.actor)
                self.unhealthy[event.actor] = app
                return None if known == app else app
        elif event.action not in HEALTH_RESET_ACTIONS:
            return None
        return self.unhealthy.pop(event.actor, None)

    def apply(self, event: EngineEvent) -> str | None:
        """Update what is known from an engine event; the app it asks to rebuild, or None."""
        if event.kind == "network":
            container_id = event.network_container
            running = event.action in NETWORK_ACTIONS and container_id in self.running
            return self.apps.get(container_id) if running else None
        if event.kind != "container":
            return None
        return self._container_event(event.action, event.actor, event.attributes)

    def returning(self, event: EngineEvent) -> bool:
        """Does the event (before `apply`) start again a deploy container known stopped: one
        that ran before, not one a deploy just made?"""
        known = event.actor in self.apps and event.actor not in self.running
        return known and event.kind == "container" and event.action in CONTAINER_ACTIONS

    def dying(self, event: EngineEvent) -> str | None:
        """The app of the running deploy container the event (before `apply`) says died, or None."""
        running = event.kind == "container" and event.action == STOP_ACTION and event.actor in self.running
        return self.apps.get(event.actor) if running else None

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


def created_network(event: EngineEvent) -> str | None:
    """The name of the network the event says was created, when an app can name it; else None.
    The engine gives the name in the attributes, the id as the actor's ID."""
    if event.kind != "network" or event.action != CREATE_ACTION:
        return None
    return event.network_name if is_app_network(event.network_name) else None


def update_view(view: NetworkView, event: EngineEvent) -> None:
    """A network made or removed, as the view keeps them."""
    if event.kind != "network":
        return
    if event.action == CREATE_ACTION:
        view.created(event.network_name, event.actor, event.scope)
    elif event.action == DESTROY_ACTION:
        view.destroyed(event.network_name, event.actor)


def connect() -> EventStream:
    """Open the engine's event stream (before the listing, so no change between the two goes unseen)."""
    client = docker_engine.api()
    client.ping()  # fails fast (the SDK's timeout) where the stream, which has none, could hang
    return client.events(decode=True, filters=EVENT_FILTERS)


def list_local_networks() -> list[dict]:
    """The engine's networks of the local scope, for the watcher's `NetworkView`."""
    return docker_engine.api().networks(filters={"scope": "local"})


def list_everything() -> Listing:
    """Every app, and every Dokku container in one listing (the work of `rebuildall`)."""
    states = docker_engine.dokku_containers()
    return list_apps(), states


def _unheeded(unhealthy: dict[str, frozenset[str]], listed: bool) -> None:
    """No one follows the containers' health (the default)."""


def _unheeded_loss() -> None:
    """No one follows the stream's losses (the default)."""


def _unheeded_death(app: str, container_id: str) -> None:
    """No one follows the running containers that die (the default)."""


def _close(stream: EventStream | None) -> None:
    if stream is not None:
        try:
            stream.close()
        except Exception:  # noqa: BLE001 - closing a dead socket may fail; it is gone either way
            pass


class EngineEvents:
    """Follows the engine until `stopping` is set; reconnects with backoff whatever went wrong,
    and at once when it may have fallen behind.

    `on_died` is given the app and id of each running deploy container that dies; `on_health`
    the unhealthy deploy containers of each app (id set) after the listing (every app with one,
    `listed` True) and after an event (the app whose set changed); `on_lost` is called whenever
    the engine may be telling changes no one hears: a stream lost, a connect failed.
    `connect`, `listing`, `pause` (wait up to n seconds; True when stopping) and `wall_clock`
    (the time of day, to compare with the events' own) are the engine's and the clock's by
    default; tests give their own. The `view` is listed by `list_networks` on each connect and
    kept by the events after it; its heartbeat is `beat`.
    """

    def __init__(
        self,
        stopping: threading.Event,
        on_sync: Callable[[list[str], dict[str, ContainerState]], None],
        on_app_moved: Callable[[str, bool, str], None],
        on_network_created: Callable[[str], None],
        *,
        on_died: Callable[[str, str], None] = _unheeded_death,
        on_health: Callable[[dict[str, frozenset[str]], bool], None] = _unheeded,
        on_lost: Callable[[], None] = _unheeded_loss,
        connect: Callable[[], EventStream] = connect,
        listing: Callable[[], Listing] = list_everything,
        pause: Callable[[float], bool] | None = None,
        view: NetworkView | None = None,
        list_networks: Callable[[], list[dict]] = list_local_networks,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.stopping = stopping
        self.on_sync = on_sync
        self.on_app_moved = on_app_moved
        self.on_network_created = on_network_created
        self.on_died = on_died
        self.on_health = on_health
        self.on_lost = on_lost
        self.connect = connect
        self.listing = listing
        self.pause = pause or stopping.wait
        self.view = view if view is not None else NetworkView()
        self.list_networks = list_networks
        self.wall_clock = wall_clock
        self._stream: EventStream | None = None
        self._behind: str | None = None  # why the stream read now may have lost events
        self._guard = threading.Lock()  # the stream is closed from the stopping and heartbeat threads

    def run(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        while not self.stopping.is_set():
            try:
                stream, containers = self._open()
            except Exception as error:  # noqa: BLE001 - an engine going away fails in many ways
                message = f"{describe(error)}; trying again in {backoff:g} s"
            else:
                backoff = FIRST_BACKOFF_SECONDS
                reason = self._read(stream, containers)
                message = f"Lost the Docker engine's event stream ({reason}); reconnecting in {backoff:g} s"
            self.close()
            self.on_lost()
            with self._guard:
                behind, self._behind = self._behind, None
            if self.stopping.is_set():
                break
            if behind:  # nothing is wrong with the engine: no pause
                warn(f"{behind}; listing everything again")
                continue
            warn(message)
            if self.pause(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def close(self) -> None:
        """Close the stream: the reading thread's loop ends (called on stop, from another thread)."""
        with self._guard:
            stream, self._stream = self._stream, None
        self.view.lost()
        _close(stream)

    def heartbeat(self) -> None:
        """`beat` every HEARTBEAT_SECONDS until stopping (a thread of its own)."""
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            self.beat()

    def beat(self) -> None:
        """The view's heartbeat; after a stall, the stream read meanwhile is read no longer."""
        gap = self.view.beat()
        if gap > BEHIND_SECONDS:
            self._fell_behind(STALLED.format(gap))

    def _fell_behind(self, why: str) -> None:
        """End the stream being read (if any: the next connect lists everything anyway), for `why`."""
        with self._guard:
            stream, self._stream = self._stream, None
            if stream is None:
                return
            self._behind = self._behind or why
        _close(stream)

    def _open(self) -> tuple[EventStream, DeployContainers]:
        """Connect, then list: the stream holds every change the listing may have missed."""
        stream = self.connect()
        with self._guard:
            self._stream = stream
        apps, states = self.listing()
        containers = DeployContainers(states.values())
        self.on_sync(apps, states)
        self.on_health(containers.unhealthy_by_app(), True)
        losses = self.view.losses()
        self.view.listed(self.list_networks(), losses)
        return stream, containers

    def _read(self, stream: EventStream, containers: DeployContainers) -> str:
        """Hand over the events until the stream ends (or `close` ends it); why it ended."""
        least_lag = math.inf  # of this stream's events, by our clock against the engine's
        try:
            for raw in stream:
                try:
                    event = parse_event(raw)
                except ValueError as error:
                    warn(f"Ignoring an unexpected engine event: {error}")
                    continue
                if event.time is not None:
                    lag = self.wall_clock() - event.time
                    least_lag = min(least_lag, lag)
                    if lag - least_lag > BEHIND_SECONDS:
                        self._fell_behind(LATE.format(lag - least_lag))
                        return "read too late"
                self._hand_over(event, containers)
        except Exception as error:  # noqa: BLE001 - a broken stream means reconnecting, whatever broke it
            return describe(error)
        return "the engine closed it"

    def _hand_over(self, event: EngineEvent, containers: DeployContainers) -> None:
        returning = containers.returning(event)
        dying = containers.dying(event)
        sick = containers.health_changed(event)
        app = containers.apply(event)
        network = created_network(event)
        update_view(self.view, event)
        if app:
            self.on_app_moved(app, returning, event.network_container)
        if dying:
            self.on_died(dying, event.actor)
        if network:
            self.on_network_created(network)
        if sick:
            self.on_health({sick: containers.unhealthy_of(sick)}, False)
