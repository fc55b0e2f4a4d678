"""`network:rebuildall` at scale, against the reference plugin's call pattern.

Creates N running Dokku-labelled containers (10 per app) on the local engine and,
for each N, times side by side:

* ours: `$PLUGIN/subcommands/rebuildall network:rebuildall` (IP files removed before
  every run, so every run does the whole work), counting its engine API calls through
  a counting proxy in front of the engine's socket;
* the reference pattern: per container, `docker container inspect` for the running
  state, for the network mode and for the IP, then one process to write the file.

It also reports the peak RSS of our rebuildall at the largest N.

    python3 benchmarks/rebuild_scale.py [--sizes 10 50 200] [--runs 5] [--plot rebuild_scale.png]
    python3 benchmarks/rebuild_scale.py --quick     # small sizes, no wall-time goal
    python3 benchmarks/rebuild_scale.py --counts-only --sizes 2 5 --runs 1   # the tests' smoke run

Exit status 1 when a goal is missed: at the largest N, ours at least 10x faster when
N >= 200 (else faster at all; not judged with --quick or --counts-only, as CI runs it, where
a loaded machine must not fail a run); engine calls the same for every N; peak RSS under 60 MiB.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
from timing import add_counts_only, goals_result, interleaved_medians, plugin_host, run_benchmark, run_checked

from tests.docker_fixtures import DockerResources, build_test_image, engine_client, sweep
from tests.host import DokkuHost

# The engine's Unix socket the proxy passes on to: DOCKER_HOST's (`tools/sid-engine run` names
# one), else the local engine's.
ENGINE_SOCKET = os.environ.get("DOCKER_HOST", "").partition("unix://")[2] or "/var/run/docker.sock"
CONTAINERS_PER_APP = 10
SPEED_UP_GOAL = 10.0
SPEED_UP_AT = 200
RSS_GOAL_MIB = 60
CREATE_WORKERS = 8
REQUEST_LINE_END = b" HTTP/1.1\r\n"


class CountingProxy:
    """A Unix socket in front of the engine's that counts the HTTP requests passing through."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests = 0
        self._count_lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(ENGINE_SOCKET)
            threading.Thread(target=self._pump, args=(client, engine, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(engine, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, count: bool) -> None:
        tail = b""
        try:
            while data := source.recv(65536):
                if count:
                    # Request lines end with " HTTP/1.1\r\n"; keep a tail for lines cut in two.
                    seen = (tail + data).count(REQUEST_LINE_END)
                    with self._count_lock:
                        self.requests += seen
                    tail = (tail + data)[-len(REQUEST_LINE_END) + 1 :]
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()


def sweep_uninterrupted(client: docker.DockerClient) -> None:
    """Remove every container and network this run made; a second Ctrl-C must not stop it halfway."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sweep(client)
    finally:
        signal.signal(signal.SIGINT, previous)


def remove_ip_files(dokku: DokkuHost) -> None:
    for path in dokku.dokku_root.glob("*/IP.*"):
        path.unlink()


def reference_rebuildall(dokku: DokkuHost) -> int:
    """The reference plugin's pattern: three CLI inspects and one writer process per container.

    Returns the number of `docker` processes run (the `sh` writers not counted).
    """
    docker_processes = 0
    for container_file in sorted(dokku.dokku_root.glob("*/CONTAINER.*.*")):
        container_id = container_file.read_text().strip()
        _, process_type, index = container_file.name.split(".")
        inspect = ["docker", "container", "inspect", "--format"]
        running = subprocess.run(
            [*inspect, "{{.State.Running}}", container_id], capture_output=True, text=True, check=False
        )
        docker_processes += 1
        if running.stdout.strip() != "true":
            continue
        subprocess.run(
            [*inspect, "{{.HostConfig.NetworkMode}}", container_id], capture_output=True, check=True
        )
        address = subprocess.run(
            [*inspect, "{{.NetworkSettings.Networks.bridge.IPAddress}}", container_id],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        target = container_file.parent / f"IP.{process_type}.{index}"
        subprocess.run(["sh", "-c", 'printf %s "$1" > "$2"', "sh", address, str(target)], check=True)
        docker_processes += 2
    return docker_processes


def grow_to(dokku: DokkuHost, resources: DockerResources, containers: int, size: int) -> int:
    """Add running containers, 10 per app, until there are `size`; return the new count.

    Created and started a few at a time through the SDK: 200 take seconds, not a minute.
    """
    wanted = []
    for number in range(containers, size):
        app = f"bench-app-{number // CONTAINERS_PER_APP:03d}"
        root = dokku.dokku_root / app
        if not root.is_dir():
            dokku.create_app(app)
        wanted.append((app, number % CONTAINERS_PER_APP + 1, root))
    pool = ThreadPoolExecutor(max_workers=CREATE_WORKERS)  # under the SDK's pool of 10 connections
    try:
        for future in [
            pool.submit(resources.app_container, app, "web", index, app_root=root)
            for app, index, root in wanted
        ]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: start no more, sweep the rest
    return size


def our_command(dokku: DokkuHost) -> list[str]:
    return [str(dokku.plugin_dir / "subcommands" / "rebuildall"), "network:rebuildall"]


def count_engine_calls(command: list[str], env: dict[str, str], folder: Path) -> int:
    """Engine API requests `command` makes, through a counting proxy named in DOCKER_HOST."""
    proxy = CountingProxy(folder / f"counting-{os.getpid()}.sock")
    try:
        run_checked(command, env | {"DOCKER_HOST": f"unix://{proxy.path}"})
        return proxy.requests
    finally:
        proxy.close()
        proxy.path.unlink()


def peak_rss_mib(dokku: DokkuHost) -> float:
    remove_ip_files(dokku)
    process = subprocess.Popen(our_command(dokku), env=dokku.env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"rebuildall exited {process.returncode}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def plot(rows: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [row["size"] for row in rows]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(
        sizes, [row["reference"] for row in rows], "o-", label="reference pattern (docker CLI per call)"
    )
    axes.plot(sizes, [row["ours"] for row in rows], "o-", label="dokku-network (one listing)")
    axes.set_xlabel("running containers")
    axes.set_ylabel("network:rebuildall wall time (s)")
    axes.set_title("Rebuilding every app's IP files")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size (median taken)")
    parser.add_argument("--plot", type=Path, help="write a PNG of time against N")
    parser.add_argument("--quick", action="store_true", help="sizes 4 and 10, 3 runs, no time goal")
    add_counts_only(parser)
    options = parser.parse_args(argv)
    sizes, runs = ([4, 10], 3) if options.quick else (sorted(options.sizes), options.runs)

    client = engine_client()
    build_test_image(client)
    resources = DockerResources(client)
    rows: list[dict[str, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
            dokku = plugin_host(Path(temp))
            # No Dokku here: the proxy refresh of each app whose files changed is `true` (as in
            # watch.py), not a missing `dokku` warning per app.
            dokku.env["DOKKU_NETWORK_PROXY_REFRESH"] = "true"
            containers = 0
            for size in sizes:
                containers = grow_to(dokku, resources, containers, size)
                medians = interleaved_medians(
                    {
                        "ours": lambda: run_checked(our_command(dokku), dokku.env),
                        "reference": lambda: reference_rebuildall(dokku),
                    },
                    runs,
                    reset=lambda: remove_ip_files(dokku),
                )
                remove_ip_files(dokku)
                calls = count_engine_calls(our_command(dokku), dokku.env, Path(temp))
                remove_ip_files(dokku)
                rows.append(
                    medians | {"size": size, "calls": calls, "processes": reference_rebuildall(dokku)}
                )
            rss = peak_rss_mib(dokku)
    finally:
        sweep_uninterrupted(client)

    print(f"network:rebuildall, median of {runs} runs, {CONTAINERS_PER_APP} containers per app")
    print(
        f"{'N':>5} {'ours s':>8} {'reference s':>12} {'speed-up':>9} {'API calls':>10} {'docker calls':>13}"
    )
    for row in rows:
        speed_up = row["reference"] / row["ours"]
        print(
            f"{row['size']:>5} {row['ours']:>8.3f} {row['reference']:>12.3f} {speed_up:>8.1f}x"
            f" {row['calls']:>10} {row['processes']:>13}"
        )
    print(f"peak RSS of our rebuildall at N={sizes[-1]}: {rss:.1f} MiB")
    if options.plot:
        plot(rows, options.plot)
        print(f"plot: {options.plot}")

    missed = []
    if len({row["calls"] for row in rows}) != 1:
        missed.append("engine calls grow with N")
    # Below a handful of containers both take a few hundred ms; the goal is judged at the largest N.
    largest = rows[-1]
    goal = SPEED_UP_GOAL if largest["size"] >= SPEED_UP_AT else 1.0
    if not (options.quick or options.counts_only) and largest["reference"] / largest["ours"] < goal:
        missed.append(f"at N={largest['size']} ours is not {goal:g}x faster than the reference pattern")
    if rss >= RSS_GOAL_MIB:
        missed.append(f"peak RSS {rss:.1f} MiB is not under {RSS_GOAL_MIB} MiB")
    return goals_result(missed)


if __name__ == "__main__":
    run_benchmark(main)
