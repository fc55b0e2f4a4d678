"""Many triggers at once on one app: readers never see an empty or half-written value
(docs/reference.md: Files on disk).

Writers and readers are real processes running the installed plugin, as plugn
starts them; threads only launch them and collect what each one printed.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable

from tests.host import DokkuHost

APP = "node-js-app"
RACE_SECONDS = 3.0
# The race lasts at least RACE_SECONDS and until it has proved its point (see `proved`); on a
# loaded 2-core machine that can take far longer, so only this generous bound ends it early.
RACE_LIMIT_SECONDS = 240.0
MIN_RUNS = 8
WRITERS = 16
READERS = 16
# Values of very different lengths: a torn or truncated write shows up as a value not in the set.
TLDS = [
    "a.io",
    "svc.cluster.local",
    "very-long-tld-label-number-one.example.internal.dokku.svc.cluster.local",
    "x" * 63 + ".example",
]
IPS = ["10.0.0.1", "172.17.255.254", "fd00:1234:5678:9abc:def0:1234:5678:9abc", "::1"]
PORT = "5000"


def listener(ip: str) -> str:
    return f"[{ip}]:{PORT}" if ":" in ip else f"{ip}:{PORT}"


class Race:
    """Threads that each run one kind of plugin process over and over until the race is over."""

    def __init__(self, dokku: DokkuHost) -> None:
        self.dokku = dokku
        self.over = threading.Event()
        self.results: list[tuple[str, tuple[str, ...], subprocess.CompletedProcess[str]]] = []
        self.lock = threading.Lock()

    def loop(self, kind: str, argv_cycle: itertools.cycle) -> None:
        while not self.over.is_set():
            program, *args = next(argv_cycle)
            result = subprocess.run(
                [str(program), *args],
                env=self.dokku.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            with self.lock:
                self.results.append((kind, tuple(args), result))

    def run(self, workers: list[tuple[str, itertools.cycle]], proved: Callable[[list], bool]) -> None:
        """Race for RACE_SECONDS, then on until `proved(results)` (or the generous limit)."""
        started = time.monotonic()
        threads = [threading.Thread(target=self.loop, args=worker) for worker in workers]
        for thread in threads:
            thread.start()
        while time.monotonic() - started < RACE_LIMIT_SECONDS:
            time.sleep(0.2)
            with self.lock:
                done = time.monotonic() - started >= RACE_SECONDS and proved(list(self.results))
            if done:
                break
        self.over.set()
        for thread in threads:
            thread.join(timeout=180)
        assert not any(thread.is_alive() for thread in threads)


def proved(results: list, kinds: list[str]) -> bool:
    """Every kind of process ran MIN_RUNS times, and readers saw the writers' work, not only
    the initial values (each reader kind printed at least two distinct answers)."""
    counts = {kind: sum(1 for done, _, _ in results if done == kind) for kind in kinds}
    answers = {kind: {result.stdout for done, _, result in results if done == kind} for kind in kinds}
    return (
        all(count >= MIN_RUNS for count in counts.values())
        and len(answers["get-tld"]) > 1
        and len(answers["get-listeners"]) > 1
    )


def test_writers_and_readers_race_without_torn_reads(dokku: DokkuHost):
    root = dokku.create_app(APP)
    dokku.write_property(APP, "tld", TLDS[0])
    (root / "IP.web.1").write_text(IPS[0])
    (root / "PORT.web.1").write_text(PORT)
    plugin = dokku.plugin_dir
    set_program = plugin / "subcommands" / "set"

    workers = []
    for number in range(WRITERS):
        if number % 2:
            # Rotate the starting value so that writers disagree at every moment.
            values = TLDS[number % len(TLDS) :] + TLDS[: number % len(TLDS)]
            argvs = [(set_program, "network:set", APP, "tld", value) for value in values]
            workers.append(("set-tld", itertools.cycle(argvs)))
        else:
            values = IPS[number % len(IPS) :] + IPS[: number % len(IPS)]
            argvs = [(plugin / "network-write-ipaddr", APP, "web", "1", ip) for ip in values]
            workers.append(("write-ipaddr", itertools.cycle(argvs)))
    for number in range(READERS):
        if number % 2:
            argv = (plugin / "network-get-property", APP, "tld")
            workers.append(("get-tld", itertools.repeat(argv)))
        else:
            argv = (plugin / "network-get-listeners", APP, "web")
            workers.append(("get-listeners", itertools.repeat(argv)))

    race = Race(dokku)
    kinds = sorted({kind for kind, _ in workers})
    race.run(workers, lambda results: proved(results, kinds))

    counts = {kind: sum(1 for done, _, _ in race.results if done == kind) for kind, _ in workers}
    # The race really happened: every kind of process ran many times while the others did.
    assert all(count >= MIN_RUNS for count in counts.values()), counts
    for kind, args, result in race.results:
        assert (kind, args, result.returncode, result.stderr) == (kind, args, 0, ""), result.stdout
        assert "Traceback" not in result.stdout
    expected_stdout = {
        "set-tld": {f"=====> Setting tld to {value}\n" for value in TLDS},
        "write-ipaddr": {""},
        "get-tld": {f"{value}\n" for value in TLDS},
        "get-listeners": {f"{listener(ip)}\n" for ip in IPS},
    }
    seen: dict[str, set[str]] = {kind: set() for kind in expected_stdout}
    for kind, args, result in race.results:
        assert result.stdout in expected_stdout[kind], (kind, args, result.stdout)
        seen[kind].add(result.stdout)
    # Readers saw the writers' work, not only the initial values.
    assert len(seen["get-tld"]) > 1
    assert len(seen["get-listeners"]) > 1

    # Every write went through a temp file; none is left behind.
    leftovers = [str(path) for path in dokku.dokku_root.parent.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []
    assert dokku.property_file(APP, "tld").read_text() in TLDS
    assert (root / "IP.web.1").read_text() in IPS
    assert sorted(path.name for path in root.iterdir()) == ["IP.web.1", "PORT.web.1"]
