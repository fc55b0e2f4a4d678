"""When `network:watch` rebuilds an app and refreshes its proxy (docs/reference.md: network:watch).

Pure bookkeeping with a clock of its own (tests give a fake one): no threads, no engine,
no files. The watcher tells it what happened (an app's containers moved, a reconcile
listed everything, a job ended) and asks it which jobs to start and when to ask again.
Not thread-safe: the watcher holds its lock around every call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

# Events of one app closer together than this make one rebuild (a deploy, a restart storm)...
QUIET_SECONDS = 0.15
# ...but an app whose events never pause is still rebuilt this long after the first one.
MAX_DELAY_SECONDS = 1.0
# While an app is in motion (its last two rebuilds found containers not running yet), it is
# rebuilt at most this often, however long its storm lasts; a settled app answers at once.
MIN_INTERVAL_SECONDS = 2.0
# The proxy is refreshed once every container of the app runs again: a storm spread over
# seconds may take several rebuilds, each fixing files early, but reloads the proxy once.
# An app that never settles (a container crash-looping) still gets its refresh this late.
PROXY_MAX_DELAY_SECONDS = 10.0
# An app's unhealthy containers are written for the readers (and its proxy refreshed) at most
# this often: a container flapping between healthy and unhealthy costs one refresh in so long.
HEALTH_INTERVAL_SECONDS = 3.0


class Debouncer:
    """Apps with events waiting, and when each becomes due: `quiet` after its last event, at most
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

    def due_at(self, app: str) -> float:
        first, last = self.pending[app]
        settled = min(last + self.quiet, first + self.max_delay)
        turn = self.last_turn.get(app)
        return settled if turn is None else max(settled, turn + self.min_interval)

    def take_due(self, now: float, busy: set[str], limit: int) -> list[str]:
        """Remove and return up to `limit` due apps, leaving alone the busy ones."""
        due = sorted(app for app in self.pending if app not in busy and self.due_at(app) <= now)[:limit]
        for app in due:
            del self.pending[app]
            if self.min_interval:
                self.last_turn[app] = now
        return due

    def next_due(self, busy: set[str]) -> float | None:
        times = [self.due_at(app) for app in self.pending if app not in busy]
        return min(times) if times else None

    def release(self, app: str) -> None:
        """The app settled: its next event needs no `min_interval` wait."""
        self.last_turn.pop(app, None)


class Schedule:
    """Which app to rebuild or refresh next, one job per app at a time.

    * An app whose containers moved is rebuilt once its events pause (`Debouncer`). A rebuild
      that only network events of running containers asked for is dropped once they have all
      died: Docker 28.5 sends a stop's `disconnect` before its `die` (20.10 after it, when the
      container is known stopped); the rebuild would find it stopped, and two such would put
      the app in motion, holding the rebuild of its start for `MIN_INTERVAL_SECONDS`.
    * A reconcile rebuilds every app at once, from the one listing it made; an app whose
      containers move afterwards gets a rebuild of its own after that one.
    * An app naming a network just created is reattached to it once the creates pause (the
      same `Debouncer` rules, one job for every network of the app created meanwhile); then,
      when one of them is its initial network, it is rebuilt as if its containers moved.
    * An app whose unhealthy containers changed gets its health file written once its changes
      pause (the `Debouncer` rules, `HEALTH_INTERVAL_SECONDS` apart); a listing writes every
      app's at once, and the readers trust the files again (`following_due`) once all are
      written. A written change owes a refresh, at once unless a rebuild is waiting.
    * An app whose IP files changed owes a proxy refresh: at once when its last rebuild
      found every container running and no rebuild is waiting, at the latest
      `PROXY_MAX_DELAY_SECONDS` after the change. So does an app a container of which runs
      again, once a rebuild finds them all running, files changed or not: the proxy may have
      given up on the address while it was refused (nginx marks such a server down for
      10 s), and only a reload takes it back at once.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.moved = Debouncer(QUIET_SECONDS, MAX_DELAY_SECONDS, MIN_INTERVAL_SECONDS)
        self.from_listing: set[str] = set()  # rebuilds a reconcile owes, due at once
        # App -> the running containers whose network events alone asked for its waiting rebuild.
        self.network_asked: dict[str, set[str]] = {}
        self.created = Debouncer(QUIET_SECONDS, MAX_DELAY_SECONDS)
        self.created_networks: dict[str, set[str]] = {}  # app -> networks to reattach it to
        self.owed: dict[str, float] = {}  # app -> when its files changed without a refresh since
        self.settled: set[str] = set()  # owing apps whose last rebuild found every container running
        self.returned: set[str] = set()  # apps a container of which runs again, not settled since
        self.stirring: set[str] = set()  # apps whose last rebuild, and only it, found them unsettled
        self.rebuilding: set[str] = set()
        self.refreshing: set[str] = set()
        self.reattaching: set[str] = set()
        self.health = Debouncer(QUIET_SECONDS, MAX_DELAY_SECONDS, HEALTH_INTERVAL_SECONDS)
        self.health_from_listing: set[str] = set()  # health files a listing owes, due at once
        self.health_unwritten: set[str] = set()  # those of the last listing not written yet
        self.follow_owed = False  # the last listing's files are to be trusted once all are written
        self.writing_health: set[str] = set()
        self.health_owed: set[str] = set()  # owing apps whose health changed: refreshed at once
        self.syncing: set[str] = set()  # apps of the last reconcile not in sync yet
        self.reconciles = 0
        self.synced = 0  # reconciles whose apps all got in sync

    def busy(self) -> set[str]:
        return self.rebuilding | self.refreshing | self.reattaching | self.writing_health

    def health_changed(self, app: str) -> None:
        self.health.add(app, self.clock())

    def health_listed(self, apps: Iterable[str]) -> None:
        """A listing told every app's unhealthy containers: each of `apps` gets its file written."""
        self.health_from_listing = set(apps)
        self.health_unwritten = set(self.health_from_listing)
        self.health.pending.clear()
        self.follow_owed = True

    def health_lost(self) -> None:
        """The stream is lost: what the last listing owed is moot (the next one lists again)."""
        self.health_from_listing.clear()
        self.health_unwritten.clear()
        self.follow_owed = False

    def health_due(self, limit: int) -> list[str]:
        """Up to `limit` apps whose health file to write now; they are busy until `health_written`."""
        busy = self.busy()
        due = sorted(self.health_from_listing - busy)[:limit]
        self.health_from_listing.difference_update(due)
        due += self.health.take_due(self.clock(), busy | set(due), limit - len(due))
        self.writing_health.update(due)
        return due

    def health_written(self, app: str, changed: bool | None) -> None:
        """The app's health file was written (`changed`: it changed), or failed to be (None: tried
        again `HEALTH_INTERVAL_SECONDS` on; the readers are not told to trust it meanwhile)."""
        self.writing_health.discard(app)
        if changed is None:
            self.health.add(app, self.clock())
            return
        self.health_unwritten.discard(app)
        if changed:
            self.owed.setdefault(app, self.clock())
            self.health_owed.add(app)

    def following_due(self) -> bool:
        """True once after a listing, when every health file it owed is written."""
        if self.follow_owed and not self.health_unwritten:
            self.follow_owed = False
            return True
        return False

    def app_moved(self, app: str, returning: bool = False, network_of: str = "") -> None:
        """The app's containers moved; `returning`: one of them runs again after a stop;
        `network_of`: only a network event of that running container says so."""
        if returning:
            self.returned.add(app)
        if not network_of:
            self.network_asked.pop(app, None)
        elif app not in self.moved.pending or app in self.network_asked:
            self.network_asked.setdefault(app, set()).add(network_of)
        self.moved.add(app, self.clock())
        self.from_listing.discard(app)  # the listing may predate the move: the rebuild lists again

    def container_died(self, app: str, container_id: str) -> None:
        """A running container of the app died: its network events ask for no rebuild any more."""
        asked = self.network_asked.get(app)
        if asked is None or container_id not in asked:
            return
        asked.discard(container_id)
        if not asked:
            del self.network_asked[app]
            del self.moved.pending[app]

    def network_created(self, apps: Iterable[str], network: str) -> None:
        now = self.clock()
        for app in apps:
            self.created.add(app, now)
            self.created_networks.setdefault(app, set()).add(network)

    def reconcile(self, apps: Iterable[str]) -> None:
        """A fresh listing covers every app: each is rebuilt from it, the events before it are moot."""
        self.from_listing = set(apps)
        self.syncing = set(self.from_listing)
        self.moved.pending.clear()
        self.network_asked.clear()
        self.reconciles += 1

    def rebuilds_due(self, limit: int) -> list[tuple[str, bool]]:
        """Up to `limit` apps to rebuild now, each with whether the reconcile's listing serves it;
        they are busy until `rebuilt`."""
        busy = self.busy()
        due = [(app, True) for app in sorted(self.from_listing - busy)[:limit]]
        self.from_listing.difference_update(app for app, _ in due)
        moved = self.moved.take_due(self.clock(), busy, limit - len(due))
        for app in moved:
            self.network_asked.pop(app, None)
        due += [(app, False) for app in moved]
        self.rebuilding.update(app for app, _ in due)
        return due

    def reattaches_due(self, limit: int) -> list[tuple[str, list[str]]]:
        """Up to `limit` apps to reattach now, each with its networks created; busy until `reattached`."""
        due = self.created.take_due(self.clock(), self.busy(), limit)
        self.reattaching.update(due)
        return [(app, sorted(self.created_networks.pop(app))) for app in due]

    def reattached(self, app: str, moved: bool) -> None:
        """The app's reattach ended; `moved`: its initial network was among them, rebuild it."""
        self.reattaching.discard(app)
        if moved:
            self.app_moved(app)

    def refreshes_due(self, limit: int) -> list[str]:
        """Up to `limit` apps whose proxy to refresh now; they are busy until `refreshed`."""
        now = self.clock()
        due = sorted(app for app in self._owing() if self._refresh_due_at(app) <= now)[:limit]
        for app in due:
            del self.owed[app]
            self.settled.discard(app)
            self.health_owed.discard(app)
        self.refreshing.update(due)
        return due

    def rebuilt(self, app: str, changed: bool, settled: bool) -> None:
        """The app's rebuild ended: whether it rewrote files, whether every container ran."""
        self.rebuilding.discard(app)
        if changed or (settled and app in self.returned):
            self.owed.setdefault(app, self.clock())
        if settled:
            self.returned.discard(app)
            self.stirring.discard(app)
            self.moved.release(app)
        elif app not in self.stirring:
            # One rebuild finding a container not running yet does not put the app in motion:
            # the next start of a restart is often a moment away. The second in a row does.
            self.stirring.add(app)
            self.moved.release(app)
        if settled and app in self.owed:
            self.settled.add(app)
        else:
            self.settled.discard(app)
            self.syncing.discard(app)  # nothing to refresh yet: the files are as true as they get

    def refreshed(self, app: str) -> None:
        self.refreshing.discard(app)
        self.syncing.discard(app)

    def in_sync(self) -> bool:
        """True once after a reconcile, when each of its apps is rebuilt and refreshed if it could be."""
        if self.synced < self.reconciles and not self.syncing:
            self.synced = self.reconciles
            return True
        return False

    def next_due(
        self, free_rebuilds: bool, free_refreshes: bool, free_reattaches: bool, free_health: bool = False
    ) -> float | None:
        """When a job not startable now becomes due (a job ending or an event may come sooner)."""
        busy = self.busy()
        moments = []
        if free_health:
            moments += self._due_moments(self.health_from_listing, self.health, busy)
        if free_reattaches:
            moments += self._due_moments(set(), self.created, busy)
        if free_rebuilds:
            moments += self._due_moments(self.from_listing, self.moved, busy)
        if free_refreshes:
            moments.extend(self._refresh_due_at(app) for app in self._owing())
        return min(moments) if moments else None

    def _due_moments(self, at_once: set[str], debouncer: Debouncer, busy: set[str]) -> list[float]:
        """Now when an app of `at_once` (a listing's) is not busy; the debouncer's next moment."""
        moments = [self.clock()] if at_once - busy else []
        moment = debouncer.next_due(busy)
        return moments if moment is None else [*moments, moment]

    def _owing(self) -> list[str]:
        """Owing apps that may be refreshed now: no job of theirs running, no reconcile rebuild waiting."""
        waiting = self.busy() | self.from_listing
        return [app for app in self.owed if app not in waiting]

    def _refresh_due_at(self, app: str) -> float:
        # A settled app waits for the rebuild its new events asked for (its files may change
        # again), unless that makes the refresh overdue.
        if (app in self.settled or app in self.health_owed) and app not in self.moved.pending:
            return self.owed[app]
        return self.owed[app] + PROXY_MAX_DELAY_SECONDS
