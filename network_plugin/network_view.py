"""The engine's networks as `network:watch` sees them: a listing made when its event stream
(re)connects, kept by the networks' `create` and `destroy` events (docs/reference.md: Triggers
answered warm).

Its events thread writes it; the threads answering the engine triggers read it. It answers
only while it is current (listed since the stream connected, that stream still read, and its
heartbeat recent) and only for networks it knows to exist: anything else (a missing name, a
network of the swarm's scope, a lost stream, a watcher just back from a stall) is asked of the
engine. So a network removed a moment ago is missing as soon as its event is read, and one
made a moment ago is found by the engine before its event comes.

The heartbeat (`beat`, a few times a second) is what tells a stall of the whole process
(SIGSTOP, swap): the engine drops the events of a subscriber that falls behind, and nothing
else says so. A gap longer than `BEHIND_SECONDS` makes the view lost until the next listing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

LOCAL_SCOPE = "local"  # a swarm-scoped network's events reach only the engine that made them
# A watcher this far behind the engine (stalled, or reading events this late) may have lost
# some: the engine gives a subscriber a buffer of 1,024 events and drops what does not fit.
BEHIND_SECONDS = 1.0


class NetworkView:
    """Network name -> id of the engine's local networks, and whether the view is current.

    `clock` (monotonic seconds) times the heartbeat; tests give their own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._guard = threading.Lock()
        self._ids: dict[str, str] = {}
        self._current = False
        self._losses = 0  # how many times it was lost: a listing asked before the last is stale
        self._beat = clock()

    def losses(self) -> int:
        """Read before a listing is asked, for `listed`."""
        with self._guard:
            return self._losses

    def listed(self, networks: Iterable[dict], losses: int) -> None:
        """The engine's listing, made after its stream opened: the view is current from now on,
        unless it was lost since `losses` was read (the listing may be older than a stall)."""
        ids = {
            network["Name"]: network["Id"]
            for network in networks
            if network.get("Scope") == LOCAL_SCOPE and isinstance(network.get("Name"), str)
        }
        with self._guard:
            if losses == self._losses:
                self._ids = ids
                self._current = True

    def lost(self) -> None:
        """The stream ended: until the next listing, every question goes to the engine."""
        with self._guard:
            self._lose()

    def _lose(self) -> None:
        self._current = False
        self._ids = {}
        self._losses += 1

    def beat(self) -> float:
        """The heartbeat: the seconds since the last one. A gap over `BEHIND_SECONDS` (the whole
        watcher was stalled: events may be lost) makes the view lost until the next listing."""
        with self._guard:
            now = self._clock()
            gap, self._beat = now - self._beat, now
            if gap > BEHIND_SECONDS:
                self._lose()
            return gap

    def created(self, name: str, network_id: str, scope: str) -> None:
        """The engine's event of a network made."""
        if scope == LOCAL_SCOPE:
            with self._guard:
                self._ids[name] = network_id

    def destroyed(self, name: str, network_id: str) -> None:
        """The engine's event of a network removed (not a newer one of that name the listing holds)."""
        with self._guard:
            if self._ids.get(name) == network_id:
                del self._ids[name]

    def ids(self, names: list[str]) -> dict[str, str] | None:
        """The id of every one of `names` while the view is current, its heartbeat recent, and it
        knows each; else None."""
        with self._guard:
            recent = self._clock() - self._beat <= BEHIND_SECONDS
            if not (self._current and recent) or any(name not in self._ids for name in names):
                return None
            return {name: self._ids[name] for name in names}
