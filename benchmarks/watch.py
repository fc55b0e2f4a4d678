"""`network:watch`: how fast it heals an IP file, what it costs idle, at scale, and per event burst.

Runs the watcher the way the service does (`$PLUGIN/subcommands/watch network:watch`,
installed the Dokku way in a temp folder) against the local engine and measures:

* latency: an app container on its own network is stopped, a filler container takes its
  address, the container is started again; the time from `docker start` returning to
  the IP file holding the new address (median and p95; goal p95 < 1 s). Then two containers
  of an app, stopped and started again in the other order, trade addresses: the time from the
  last `docker start` to both IP files right (the same goal; an engine that tells a stop's
  disconnect before its die, as 28.5 does, once made it 1.8 s);
* idle CPU: the watcher's user+system time over a period without events of its apps
  (goal < 0.5 % of one core);
* reattach: a network that 1, then 10 apps attach after deploy (one running container each)
  is removed and created again; the time from the create returning to every container being
  on it again (median and max; goal for one app: max < 1 s; the engine connects one container
  at a time, ~80-200 ms each here);
* RSS: the watcher's resident memory once it watches N running containers (goal < 60 MiB);
* engine calls per burst: API requests the watcher makes (through a counting proxy) while
  1, then 5, then 10 containers of one app restart together, against the rebuilds the burst
  made: one listing per rebuild, whatever the number of containers (a loaded machine may
  spread a burst over more rebuilds; it never makes a rebuild cost more);
* busy: three apps drifted at start whose proxy refresh takes 6 s, and meanwhile another
  app's container moves: the time it takes to heal (goal < 2 s: it waits for no refresh),
  then the time from SIGTERM to exit while two refreshes run (they end first: the rest of
  their 6 s); and the time from SIGTERM to exit idle (goal < 1 s).

    python3 benchmarks/watch.py [--restarts 25] [--reattaches 10] [--idle 60] [--containers 200]
    python3 benchmarks/watch.py --quick     # 6 restarts, 3 reattaches, 5 s idle, 20 containers
    python3 benchmarks/watch.py --quick --parts bursts --bursts 1 4   # the tests' smoke run

Exit status 1 when a goal is missed. With --quick or --counts-only (CI) only the engine calls
and the RSS are judged: a loaded machine must not fail CI on latency, CPU or exit time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from docker import DockerClient
from docker.models.containers import Container
from rebuild_scale import CountingProxy, grow_to, sweep_uninterrupted
from timing import add_counts_only, goals_result, plugin_host, run_benchmark

from tests.docker_fixtures import (
    IMAGE,
    OWNER,
    RESOURCE_LABEL,
    DockerResources,
    build_test_image,
    engine_client,
)
from tests.host import DokkuHost
from tests.polling import wait_for
from tests.watcher import RunningWatcher

LATENCY_GOAL_SECONDS = 1.0
IDLE_CPU_GOAL_PERCENT = 0.5
RSS_GOAL_MIB = 60
BURSTS = (1, 5, 10)
POLL_SECONDS = 0.002
APP = "bench-watch"
# No Dokku here: the proxy refresh is `true`, so that only the watcher's own work is measured.
WATCH_ENV = {"DOKKU_NETWORK_PROXY_REFRESH": "true"}
SLOW_REFRESH_SECONDS = 6
HEAL_GOAL_SECONDS = 2.0
REATTACH_APPS = (1, 10)
IDLE_EXIT_GOAL_SECONDS = 1.0


def ip_on(container: Container, network: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def move(resources: DockerResources, container: Container, network: str) -> float:
    """Stop the container, let a filler take its address, start it again: when `docker start` returned.

    The filler stays (the engine hands out the lowest free address): the next start gets a new
    address, as after a crash on a busy host.
    """
    container.stop(timeout=0)
    resources.client.containers.run(
        IMAGE, ["sleep", "3600"], detach=True, network=network, labels={RESOURCE_LABEL: OWNER}
    )
    container.start()
    return time.perf_counter()


def heal_time(watcher: RunningWatcher, ip_file: Path, new_ip: str, started: float) -> float:
    """Seconds from `started` to `ip_file` holding `new_ip`."""
    while ip_file.read_text() != new_ip:
        if time.perf_counter() - started > 60:
            raise RuntimeError(f"{ip_file.name} never became {new_ip}: {watcher.lines()[-5:]}")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def app_on_its_network(dokku: DokkuHost, resources: DockerResources, app: str) -> tuple[Container, str, Path]:
    """(its web container, the network, its IP.web.1)."""
    network = resources.network().name
    root = dokku.create_app(app)
    dokku.command("set", app, "initial-network", network)
    return resources.app_container(app, app_root=root, network=network), network, root / "IP.web.1"


def measure_latency(dokku: DokkuHost, resources: DockerResources, folder: Path, restarts: int) -> list[float]:
    """Seconds from `docker start` returning to the IP file holding the new address, per restart."""
    container, network, ip_file = app_on_its_network(dokku, resources, APP)
    watcher = RunningWatcher(dokku, folder / "latency", WATCH_ENV)
    samples = []
    try:
        watcher.started()
        wait_for(lambda: ip_file.exists() and ip_file.read_text() == ip_on(container, network), "IP.web.1")
        for _ in range(restarts):
            started = move(resources, container, network)
            samples.append(heal_time(watcher, ip_file, ip_on(container, network), started))
    finally:
        assert watcher.stop() == 0
    return samples


def measure_trades(dokku: DokkuHost, resources: DockerResources, folder: Path, trades: int) -> list[float]:
    """Seconds from the last `docker start` to both IP files right, per trade of two addresses."""
    network = resources.network().name
    root = dokku.create_app(f"{APP}-trading")
    dokku.command("set", f"{APP}-trading", "initial-network", network)
    containers = [
        resources.app_container(f"{APP}-trading", "web", n, app_root=root, network=network) for n in (1, 2)
    ]
    ip_files = [root / "IP.web.1", root / "IP.web.2"]
    watcher = RunningWatcher(dokku, folder / "trades", WATCH_ENV)
    samples = []
    try:
        watcher.started()
        for trade in range(trades):
            for container in containers:
                container.stop(timeout=0)
            for container in containers[::-1] if trade % 2 == 0 else containers:
                container.start()
            started = time.perf_counter()
            for container, ip_file in zip(containers, ip_files):
                heal_time(watcher, ip_file, ip_on(container, network), started)
            samples.append(time.perf_counter() - started)
    finally:
        assert watcher.stop() == 0
    return samples


def measure_reattach(
    dokku: DokkuHost, resources: DockerResources, folder: Path, apps: int, runs: int
) -> list[float]:
    """Seconds from a network's create returning to the running containers of the `apps` apps
    that attach it after deploy being on it again, per removal and create."""
    name = resources.network().name
    containers = []
    for n in range(apps):
        app = f"bench-reattach-{apps}-{n}"
        root = dokku.create_app(app)
        dokku.command("set", app, "attach-post-deploy", name)
        containers.append(resources.app_container(app, app_root=root))
        dokku.trigger("core-post-deploy", app)
    watcher = RunningWatcher(dokku, folder / f"reattach-{apps}", WATCH_ENV)
    samples = []
    try:
        watcher.started()
        for _ in range(runs):
            network = resources.client.networks.get(name)
            for container in containers:
                network.disconnect(container, force=True)
            network.remove()
            resources.client.networks.create(name, driver="bridge", labels={RESOURCE_LABEL: OWNER})
            started = time.perf_counter()
            # One listing a round: the containers on the network.
            while len(resources.client.api.containers(filters={"network": name})) < len(containers):
                if time.perf_counter() - started > 60:
                    raise RuntimeError(f"the containers never came back: {watcher.lines()[-5:]}")
                time.sleep(POLL_SECONDS)
            samples.append(time.perf_counter() - started)
    finally:
        watcher.stop()
    return samples


def stop_time(watcher: RunningWatcher) -> float:
    """Seconds from SIGTERM to the watcher's exit (status 0)."""
    began = time.perf_counter()
    status = watcher.stop()
    lasted = time.perf_counter() - began
    if status != 0:
        raise RuntimeError(f"the watcher exited with {status}: {watcher.lines()[-5:]}")
    return lasted


def measure_busy(dokku: DokkuHost, resources: DockerResources, folder: Path) -> tuple[float, float, float]:
    """(heal seconds of a move while slow refreshes run, exit seconds with refreshes in flight, idle)."""
    idle = RunningWatcher(dokku, folder / "idle", WATCH_ENV).started()
    idle_exit = stop_time(idle)
    for n in range(1, 4):
        root = dokku.create_app(f"bench-drifted-{n}")
        resources.app_container(f"bench-drifted-{n}", app_root=root)
        (root / "IP.web.1").write_text("10.255.255.1")
    container, network, ip_file = app_on_its_network(dokku, resources, "bench-moving")
    ip_file.write_text(ip_on(container, network))
    log = folder / "slow-refreshes"
    slow = f"sh -c 'echo \"$1\" >>{log}; sleep {SLOW_REFRESH_SECONDS}' refresh"
    watcher = RunningWatcher(dokku, folder / "busy", {"DOKKU_NETWORK_PROXY_REFRESH": slow})
    try:
        wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2, "two slow refreshes")
        started = move(resources, container, network)
        heal = heal_time(watcher, ip_file, ip_on(container, network), started)
    finally:
        busy_exit = stop_time(watcher)
    return heal, busy_exit, idle_exit


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its finished children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure_scale(
    dokku: DokkuHost, resources: DockerResources, folder: Path, containers: int, idle: float
) -> tuple[float, float]:
    """(RSS in MiB watching `containers`, idle CPU % over `idle` seconds)."""
    grow_to(dokku, resources, 0, containers)
    watcher = RunningWatcher(dokku, folder / "scale", WATCH_ENV)
    try:
        watcher.started()
        pid = watcher.process.pid
        before, began = cpu_seconds(pid), time.monotonic()
        time.sleep(idle)
        used, lasted = cpu_seconds(pid) - before, time.monotonic() - began
        return rss_mib(pid), 100 * used / lasted
    finally:
        assert watcher.stop() == 0


def measure_bursts(
    dokku: DokkuHost, resources: DockerResources, folder: Path, sizes: list[int]
) -> dict[int, tuple[int, int]]:
    """(engine API requests, rebuilds) of the watcher while `n` containers of one app restart together."""
    app = "bench-burst"
    root = dokku.create_app(app)
    containers = [resources.app_container(app, "web", n, app_root=root) for n in range(1, max(sizes) + 1)]
    proxy = CountingProxy(folder / f"counting-{os.getpid()}.sock")
    watcher = RunningWatcher(dokku, folder / "bursts", WATCH_ENV | {"DOCKER_HOST": f"unix://{proxy.path}"})
    calls = {}
    try:
        watcher.started()
        for size in sizes:
            rebuilt = watcher.rebuilds(app)
            before = proxy.requests
            threads = [threading.Thread(target=c.restart, kwargs={"timeout": 0}) for c in containers[:size]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wait_for(lambda rebuilt=rebuilt: watcher.rebuilds(app) > rebuilt, f"a rebuild of {app}")
            time.sleep(3)  # let any further rebuild of the burst happen before counting
            calls[size] = (proxy.requests - before, watcher.rebuilds(app) - rebuilt)
    finally:
        assert watcher.stop() == 0
        proxy.close()
        proxy.path.unlink()
    return calls


PARTS = ("latency", "bursts", "reattach", "busy", "scale")  # in the order they are measured


def measure(options: argparse.Namespace, client: DockerClient) -> dict[str, Any]:
    """Each part of `options.parts`, measured on a plugin installed in a temp folder."""
    resources = DockerResources(client)
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
            folder = Path(temp)
            dokku = plugin_host(folder)
            if "latency" in options.parts:
                results["latency"] = (
                    measure_latency(dokku, resources, folder, options.restarts),
                    measure_trades(dokku, resources, folder, options.restarts),
                )
            if "bursts" in options.parts:
                results["bursts"] = measure_bursts(dokku, resources, folder, options.bursts)
            if "reattach" in options.parts:
                results["reattach"] = {
                    apps: measure_reattach(dokku, resources, folder, apps, options.reattaches)
                    for apps in REATTACH_APPS
                }
            if "busy" in options.parts:
                results["busy"] = measure_busy(dokku, resources, folder)
            if "scale" in options.parts:
                results["scale"] = measure_scale(dokku, resources, folder, options.containers, options.idle)
    finally:
        sweep_uninterrupted(client)
    return results


def report_latency(latencies: tuple[list[float], list[float]], options: argparse.Namespace) -> list[str]:
    missed = []
    for what, samples in zip(("docker start -> IP file", "two containers trading addresses"), latencies):
        median, p95 = statistics.median(samples), percentile(samples, 0.95)
        print(f"latency, {what} ({len(samples)} restarts): median {median * 1000:.0f} ms,"
              f" p95 {p95 * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms")  # fmt: skip
        if judges_time(options) and p95 >= LATENCY_GOAL_SECONDS:
            missed.append(f"p95 latency of {what} {p95:.3f} s is not under {LATENCY_GOAL_SECONDS:g} s")
    return missed


def report_reattach(reattaches: dict[int, list[float]], options: argparse.Namespace) -> list[str]:
    for apps, samples in reattaches.items():
        median_ms, max_ms = statistics.median(samples) * 1000, max(samples) * 1000
        print(f"reattach, network create -> {apps} apps' containers on it ({len(samples)} runs):"
              f" median {median_ms:.0f} ms, max {max_ms:.0f} ms")  # fmt: skip
    slowest = max(reattaches[1])
    if judges_time(options) and slowest >= LATENCY_GOAL_SECONDS:
        return [f"a reattach took {slowest:.3f} s, not under {LATENCY_GOAL_SECONDS:g} s"]
    return []


def report_scale(scale: tuple[float, float], options: argparse.Namespace) -> list[str]:
    rss, idle_cpu = scale
    print(f"idle CPU over {options.idle:g} s: {idle_cpu:.3f} % of one core")
    print(f"RSS watching {options.containers} containers: {rss:.1f} MiB")
    missed = []
    if judges_time(options) and idle_cpu >= IDLE_CPU_GOAL_PERCENT:
        missed.append(f"idle CPU {idle_cpu:.3f} % is not under {IDLE_CPU_GOAL_PERCENT} %")
    if rss >= RSS_GOAL_MIB:
        missed.append(f"RSS {rss:.1f} MiB is not under {RSS_GOAL_MIB} MiB")
    return missed


def report_bursts(bursts: dict[int, tuple[int, int]], options: argparse.Namespace) -> list[str]:
    counted = [
        f"{size} restarted: {calls} ({rebuilds} rebuilds)" for size, (calls, rebuilds) in bursts.items()
    ]
    print("engine calls per burst: " + ", ".join(counted))
    if any(calls > rebuilds for calls, rebuilds in bursts.values()):
        return [f"a rebuild made more than one engine call: {bursts} (calls, rebuilds)"]
    return []


def report_busy(busy: tuple[float, float, float], options: argparse.Namespace) -> list[str]:
    heal, busy_exit, idle_exit = busy
    print(
        f"busy: heal while {SLOW_REFRESH_SECONDS} s refreshes run {heal * 1000:.0f} ms; SIGTERM to exit"
        f" with refreshes in flight {busy_exit:.2f} s, idle {idle_exit * 1000:.0f} ms"
    )
    missed = []
    if judges_time(options) and heal >= HEAL_GOAL_SECONDS:
        missed.append(f"healing while refreshes run took {heal:.3f} s, not under {HEAL_GOAL_SECONDS:g} s")
    if judges_time(options) and idle_exit >= IDLE_EXIT_GOAL_SECONDS:
        missed.append(f"an idle stop took {idle_exit:.3f} s, not under {IDLE_EXIT_GOAL_SECONDS:g} s")
    return missed


# Printed in this order; each returns the goals it missed.
REPORTS = {
    "latency": report_latency,
    "reattach": report_reattach,
    "scale": report_scale,
    "bursts": report_bursts,
    "busy": report_busy,
}


def judges_time(options: argparse.Namespace) -> bool:
    return not (options.quick or options.counts_only)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--restarts", type=int, default=25)
    parser.add_argument("--reattaches", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measured")
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--bursts", type=int, nargs="+", default=list(BURSTS), help="containers restarted")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure")
    parser.add_argument("--quick", action="store_true", help="short runs, no time goals")
    add_counts_only(parser)
    options = parser.parse_args(argv)
    if options.quick:
        options.restarts, options.reattaches, options.idle, options.containers = 6, 3, 5.0, 20

    client = engine_client()
    build_test_image(client)
    results = measure(options, client)
    engine = client.version()
    print(f"network:watch, Docker {engine['Version']} (API {engine['ApiVersion']}) at {client.api.base_url}")
    missed = [
        goal for part, report in REPORTS.items() if part in results for goal in report(results[part], options)
    ]
    return goals_result(missed)


if __name__ == "__main__":
    run_benchmark(main)
