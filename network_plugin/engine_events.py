"""The engine's events of Dokku's deploy containers, followed across reconnects (docs/reference.md:
network:watch).

`EngineEvents.run` (a thread of its own) connects, lists Dokku's containers, hands the
listing over (`on_sync`), then reads the event stream and hands over each app whose
containers moved (`on_app_moved`) and each network created (`on_network_created`). A
failed connect and a lost stream take the same way back: one warning line, a pause that
doubles up to 30 s, and a new connect (which lists again: whatever happened in between is
covered). A new kind of event is one more filter value, one more branch in
`DeployContainers.apply` or beside it (as `created_network`), and one more hand-over callable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from network_plugin import docker_engine
from network_plugin.apps import list_apps
from network_plugin.docker_engine import APP_LABEL, ContainerState, is_deploy_container
from network_plugin.error_handler import describe
from network_plugin.network_view import CREATE_ACTION, DESTROY_ACTION, NetworkView
from network_plugin.output import warn
from network_plugin.validation import is_app_name, is_app_network

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
CONTAINER_ACTIONS = ("start", "restart", "unpause")
NETWORK_ACTIONS = ("connect", "disconnect")
STOP_ACTION = "die"
# A container's `destroy`, which the filter lets through for networks too (`NetworkView`).
FORGET_ACTION = DESTROY_ACTION
# A network's `create`; the filter also lets containers' `create` through: they are ignored.
EVENT_FILTERS = {
    "type": ["container", "network"],
    "event": [*CONTAINER_ACTIONS, *NETWORK_ACTIONS, STOP_ACTION, FORGET_ACTION, CREATE_ACTION],
}


class EventStream(Protocol):
    """The SDK's decoded event stream: its events until the engine closes it; close() ends it."""

    def __iter__(self) -> Iterator[object]: ...

    def close(self) -> None: ...


Listing = tuple[list[str], dict[str, ContainerState]]  # (apps, container id -> state)


class DeployContainers:
    """The engine's Dokku deploy containers as the events tell them: id -> app, and which run.

    Network events carry only the container's id. A container connects to its
    networks before it starts and leaves them after it dies: those events change
    no address a proxy could use, and its start event follows anyway.
    """

    def __init__(self, states: Iterable[ContainerState] = ()) -> None:
        self.apps: dict[str, str] = {}
        self.running: set[str] = set()
        for state in states:
            if is_app_name(state.app) and is_deploy_container(state.labels):
                self.apps[state.id] = state.app
                if state.running:
                    self.running.add(state.id)

    def apply(self, event: object) -> str | None:
        """Update what is known from an engine event; the app it asks to rebuild, or None.

        ValueError for a malformed event (it changes nothing).
        """
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


def created_network(event: dict) -> str | None:
    """The name of the network a well-formed event (one `DeployContainers.apply` took) says was
    created, or None. The engine gives the name in the attributes, the id as the actor's ID."""
    if event["Type"] != "network" or event["Action"] != CREATE_ACTION:
        return None
    name = (event["Actor"].get("Attributes") or {}).get("name")
    if not isinstance(name, str):
        raise ValueError(f"a network created without a name: {str(event)[:80]}")
    return name if is_app_network(name) else None  # no app can name it


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


def _close(stream: EventStream | None) -> None:
    if stream is not None:
        try:
            stream.close()
        except Exception:  # noqa: BLE001 - closing a dead socket may fail; it is gone either way
            pass


class EngineEvents:
    """Follows the engine until `stopping` is set; reconnects with backoff whatever went wrong.

    `connect`, `listing` and `pause` (wait up to n seconds; True when stopping) are the
    engine's and the clock's by default; tests give their own. A `view` is listed by
    `list_networks` on each connect and kept by the events after it.
    """

    def __init__(
        self,
        stopping: threading.Event,
        on_sync: Callable[[list[str], dict[str, ContainerState]], None],
        on_app_moved: Callable[[str], None],
        on_network_created: Callable[[str], None],
        *,
        connect: Callable[[], EventStream] = connect,
        listing: Callable[[], Listing] = list_everything,
        pause: Callable[[float], bool] | None = None,
        view: NetworkView | None = None,
        list_networks: Callable[[], list[dict]] = list_local_networks,
    ) -> None:
        self.stopping = stopping
        self.on_sync = on_sync
        self.on_app_moved = on_app_moved
        self.on_network_created = on_network_created
        self.connect = connect
        self.listing = listing
        self.pause = pause or stopping.wait
        self.view = view
        self.list_networks = list_networks
        self._stream: EventStream | None = None
        self._guard = threading.Lock()  # the stream is closed from the stopping thread

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
            if self.stopping.is_set():
                break
            warn(message)
            if self.pause(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def close(self) -> None:
        """Close the stream: the reading thread's loop ends (called on stop, from another thread)."""
        with self._guard:
            stream, self._stream = self._stream, None
        if self.view is not None:
            self.view.lost()
        _close(stream)

    def _open(self) -> tuple[EventStream, DeployContainers]:
        """Connect, then list: the stream holds every change the listing may have missed."""
        stream = self.connect()
        with self._guard:
            self._stream = stream
        apps, states = self.listing()
        self.on_sync(apps, states)
        if self.view is not None:
            self.view.listed(self.list_networks())
        return stream, DeployContainers(states.values())

    def _read(self, stream: EventStream, containers: DeployContainers) -> str:
        """Hand over the events until the stream ends (or `close` ends it); why it ended."""
        try:
            for event in stream:
                try:
                    app = containers.apply(event)
                    network = created_network(event)  # type: ignore[arg-type] - apply checked it
                    if self.view is not None:
                        self.view.apply(event)  # type: ignore[arg-type]
                except ValueError as error:
                    warn(f"Ignoring an unexpected engine event: {error}")
                    continue
                if app:
                    self.on_app_moved(app)
                if network:
                    self.on_network_created(network)
        except Exception as error:  # noqa: BLE001 - a broken stream means reconnecting, whatever broke it
            return describe(error)
        return "the engine closed it"
