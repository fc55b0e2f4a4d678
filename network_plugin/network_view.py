"""The engine's networks as `network:watch` sees them: a listing made when its event stream
(re)connects, kept by the networks' `create` and `destroy` events (docs/reference.md: Triggers
answered warm).

Its events thread writes it; the threads answering the engine triggers read it. It answers
only while it is current (listed since the stream connected, that stream still read) and only
for networks it knows to exist: anything else (a missing name, a network of the swarm's scope,
a lost stream) is asked of the engine. So a network removed a moment ago is missing as soon as
its event is read, and one made a moment ago is found by the engine before its event comes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

LOCAL_SCOPE = "local"  # a swarm-scoped network's events reach only the engine that made them
CREATE_ACTION = "create"
DESTROY_ACTION = "destroy"


class NetworkView:
    """Network name -> id of the engine's local networks, and whether the view is current."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._ids: dict[str, str] = {}
        self._current = False

    def listed(self, networks: Iterable[dict]) -> None:
        """The engine's listing, made after its stream opened: the view is current from now on."""
        ids = {
            network["Name"]: network["Id"]
            for network in networks
            if network.get("Scope") == LOCAL_SCOPE and isinstance(network.get("Name"), str)
        }
        with self._guard:
            self._ids = ids
            self._current = True

    def lost(self) -> None:
        """The stream ended: until the next listing, every question goes to the engine."""
        with self._guard:
            self._current = False
            self._ids = {}

    def apply(self, event: dict) -> None:
        """A well-formed event (one `DeployContainers.apply` took): a network made or removed."""
        if event["Type"] != "network" or event["Action"] not in (CREATE_ACTION, DESTROY_ACTION):
            return
        name = (event["Actor"].get("Attributes") or {}).get("name")
        network_id = event["Actor"].get("ID")
        if not isinstance(name, str) or not isinstance(network_id, str):
            return
        with self._guard:
            if event["Action"] == DESTROY_ACTION:
                if self._ids.get(name) == network_id:
                    del self._ids[name]
            elif event.get("scope") == LOCAL_SCOPE:
                self._ids[name] = network_id

    def ids(self, names: list[str]) -> dict[str, str] | None:
        """The id of every one of `names` while the view is current and knows each; else None."""
        with self._guard:
            if not self._current or any(name not in self._ids for name in names):
                return None
            return {name: self._ids[name] for name in names}
