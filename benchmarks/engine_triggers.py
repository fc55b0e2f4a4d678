"""Triggers that talk to the engine, cold and warm, against the reference plugin's call pattern.

The reference plugin runs one `docker` CLI process per inspect or connect; this runs that
pattern with the real CLI, side by side with our trigger run cold (no watcher: its own SDK
client) and warm (answered by a running `network:watch`), interleaved runs, median:

* `network-get-ipaddr app web <id>`: inspect for the running state, the network mode, the IP;
* `post-container-create app <id> app deploy web` with one attach-post-create network:
  inspect the network, inspect the container (hostname), connect with both aliases
  (the container is disconnected again, untimed, before every run);
* `core-post-deploy deploy-app` with one attach-post-deploy network and one running
  container: the same three calls (the container is disconnected again, untimed);
* `network-build-config app` for an app of two running containers: per container three
  inspects (running, network mode, IP) and one process to write the IP file; once with its IP
  files removed before each run, once with them in sync (nginx's proxy build after a deploy);
* `docker-args-process-deploy app` of an app naming a network that exists: the reference
  plugin makes no engine call there, so the reference is the plugin's bare interpreter.

Cold and warm run on one host: the watcher answers on the host's `$DOKKU_LIB_ROOT`; the cold
runs use a copy of its `config` folder as their `$DOKKU_LIB_ROOT`, where no socket is. The
missing socket's cost (what a trigger pays with no watcher) is timed on its own.

Then 50 `network-get-ipaddr` at once (each must succeed) and 10,000 requests to the watcher,
each on a connection of its own: its RSS, threads and descriptors before and after.

It also counts the engine API requests of one cold run of ours (through a counting proxy) and
the `docker` processes of one run of the reference pattern.

    python3 benchmarks/engine_triggers.py [--runs 15]

Beside the pattern, post-container-create, network-get-ipaddr and core-post-deploy are timed
against the one `docker` call Dokku's plugin makes for that work (a connect with both aliases,
an inspect). Exit status 1 when the watcher answered no trigger; and (not judged with
--counts-only, as CI runs it: the times are printed) when a warm trigger is slower than that
call (else than the pattern), or docker-args-process-deploy above 1.3x the interpreter.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from rebuild_scale import count_engine_calls, reference_rebuildall, remove_ip_files, sweep_uninterrupted
from timing import (
    goals_result,
    interleaved_medians,
    plugin_host,
    run_benchmark,
    run_checked,
    runs_options,
    wall_time,
)

from tests.docker_fixtures import DockerResources, build_test_image, engine_client
from tests.host import DokkuHost
from tests.watcher import RunningWatcher

APP = "bench-app"
DEPLOY_APP = "deploy-app"
ARGS_GOAL = 1.3  # warm docker-args-process-deploy, against the interpreter
# The missing socket's cost: the warm client's import and its failed connect, in one process.
MISSING_SOCKET = """
import sys, time
sys.path[0] = sys.argv[1]
start = time.perf_counter()
from network_plugin import warm
assert warm.engine(lambda: None) is None
print(time.perf_counter() - start)
"""


def docker_cli(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def reference_get_ipaddr(container_id: str) -> int:
    """Running state, network mode, then the IP: one `docker container inspect` each.

    Returns the number of `docker` processes run, as every reference pattern here does.
    """
    inspect = ("container", "inspect", "--format")
    if docker_cli(*inspect, "{{.State.Running}}", container_id) != "true":
        return 1
    if docker_cli(*inspect, "{{.HostConfig.NetworkMode}}", container_id) == "host":
        return 2
    docker_cli(*inspect, "{{.NetworkSettings.Networks.bridge.IPAddress}}", container_id)
    return 3


def reference_attach(network: str, container_id: str) -> int:
    """The network exists?, the container's hostname, then connect with both aliases."""
    docker_cli("network", "inspect", "--format", "{{.Id}}", network)
    hostname = docker_cli("container", "inspect", "--format", "{{.Config.Hostname}}", container_id)
    aliases = [f"{APP}.web", f"{hostname}.{APP}.web"]
    docker_cli("network", "connect", *(f"--alias={alias}" for alias in aliases), network, container_id)
    return 3


def connect_call(network: str, container_id: str) -> Callable[[], str]:
    """`docker network connect` with both aliases: the one call of Dokku's attach (its hostname
    looked up once, untimed)."""
    hostname = docker_cli("container", "inspect", "--format", "{{.Config.Hostname}}", container_id)
    aliases = [f"--alias={APP}.web", f"--alias={hostname}.{APP}.web"]
    return lambda: docker_cli("network", "connect", *aliases, network, container_id)


def cold_environment(dokku: DokkuHost, lib_root: Path) -> dict[str, str]:
    """The host's environment with a copy of its properties as DOKKU_LIB_ROOT: no watcher's socket there."""
    shutil.copytree(dokku.lib_root / "config", lib_root / "config")
    return dokku.env | {"DOKKU_LIB_ROOT": str(lib_root)}


# 10,000 requests, each on a connection of its own, from one process of the plugin's environment.
REQUESTS = """
import sys
sys.path[0] = sys.argv[1]
from network_plugin import warm, warm_protocol as protocol
version = warm.version()
for _ in range(int(sys.argv[2])):
    connection = warm.connect()
    answer = warm.ask(connection, [protocol.PROTOCOL, version, "networks", [], {"names": ["bridge"]}])
    assert answer[0] == protocol.OK
    connection.close()
"""


def interpreter(dokku: DokkuHost) -> str:
    return str(dokku.plugin_dir / ".venv" / "bin" / "python3")


def watcher_resources(pid: int) -> str:
    """The watcher's resident memory, threads and descriptors."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    descriptors = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return f"RSS {status['VmRSS'].strip()}, {threads} threads, {descriptors} descriptors"


def soak(dokku: DokkuHost, watcher: RunningWatcher, trigger: list[str], requests: int = 10_000) -> list[str]:
    """50 triggers at once (every one must succeed), then `requests` requests: the watcher's
    resources before and after."""
    pid = watcher.process.pid
    lines = [f"watcher before: {watcher_resources(pid)}"]
    parallel = [subprocess.Popen(trigger, env=dokku.env, stdout=subprocess.DEVNULL) for _ in range(50)]
    if any(process.wait() != 0 for process in parallel):
        raise RuntimeError("a trigger of 50 run at once failed")
    lines.append(f"after 50 triggers at once: {watcher_resources(pid)}")
    program = [interpreter(dokku), "-E", "-s", "-c", REQUESTS, str(dokku.plugin_dir), str(requests)]
    lines.append(f"{requests} requests in {wall_time(lambda: run_checked(program, dokku.env)):.1f} s")
    lines.append(f"after them: {watcher_resources(pid)}")
    return lines


def set_property(dokku: DokkuHost, app: str, key: str, value: str) -> None:
    run_checked([str(dokku.plugin_dir / "subcommands" / "set"), "network:set", app, key, value], dokku.env)


def missing_socket_seconds(dokku: DokkuHost, env: dict[str, str], runs: int) -> float:
    command = [interpreter(dokku), "-E", "-s", "-c", MISSING_SOCKET, str(dokku.plugin_dir)]
    return statistics.median(
        float(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    )


def bare_interpreters(dokku: DokkuHost, runs: int) -> tuple[float, float]:
    """`python3 -c pass` of the plugin's environment with site, then without (as triggers run)."""
    medians = interleaved_medians(
        {
            "site": lambda: run_checked([interpreter(dokku), "-E", "-s", "-c", "pass"], dokku.env),
            "no site": lambda: run_checked([interpreter(dokku), "-E", "-s", "-S", "-c", "pass"], dokku.env),
        },
        runs,
    )
    return medians["site"], medians["no site"]


def count_calls(
    command: list[str],
    reference: Callable[[], int],
    reset: Callable[[], object] | None,
    env: dict[str, str],
    folder: Path,
) -> dict[str, float]:
    """The engine API requests of one cold run of ours, the `docker` processes of one reference run."""
    counts: dict[str, float] = {}
    for key, action in (
        ("calls", lambda: count_engine_calls(command, env, folder)),
        ("processes", reference),
    ):
        if reset is not None:
            reset()
        counts[key] = action()
    return counts


def main(argv: list[str]) -> int:
    options = runs_options(__doc__, argv)

    client = engine_client()
    build_test_image(client)
    resources = DockerResources(client)
    results: dict[str, dict[str, float]] = {}  # name -> calls, processes, cold, warm, reference (s)
    watcher: RunningWatcher | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
            dokku = plugin_host(Path(temp))
            root = dokku.create_app(APP)
            running = [resources.app_container(APP, "web", index, app_root=root) for index in (1, 2)]
            created = resources.app_container("attach-app", start=False)
            network = resources.network()
            set_property(dokku, APP, "attach-post-create", network.name)
            deploy_root = dokku.create_app(DEPLOY_APP)
            deployed = resources.app_container(DEPLOY_APP, "web", 1, app_root=deploy_root)
            set_property(dokku, DEPLOY_APP, "attach-post-deploy", network.name)
            cold_env = cold_environment(dokku, Path(temp) / "cold-lib")

            def ours(name: str, *args: str) -> list[str]:
                return [str(dokku.plugin_dir / name), *args]

            def on_network(container) -> bool:  # noqa: ANN001 - the SDK's Container
                """A created container's endpoints are in its own inspect, not the network's."""
                container.reload()
                return network.name in container.attrs["NetworkSettings"]["Networks"]

            def detach(container) -> None:  # noqa: ANN001
                if on_network(container):
                    network.disconnect(container.id, force=True)

            # name -> (our command, the reference pattern returning its docker processes, untimed reset)
            cases: dict[str, tuple[list[str], Callable[[], int], Callable[[], object] | None]] = {
                # Attaching a created container: the engine records it, as in a deploy.
                "post-container-create": (
                    ours("post-container-create", "app", created.id, APP, "deploy", "web"),
                    lambda: reference_attach(network.name, created.id),
                    lambda: detach(created),
                ),
                "network-get-ipaddr": (
                    ours("network-get-ipaddr", APP, "web", running[0].id),
                    lambda: reference_get_ipaddr(running[0].id),
                    None,
                ),
                "core-post-deploy": (
                    ours("core-post-deploy", DEPLOY_APP),
                    lambda: reference_attach(network.name, deployed.id),
                    lambda: detach(deployed),
                ),
                "network-build-config": (
                    ours("network-build-config", APP),
                    lambda: reference_rebuildall(dokku),
                    lambda: remove_ip_files(dokku),
                ),
                # nginx's proxy build after a deploy wrote the IPs: nothing to write, no lock.
                "network-build-config in sync": (
                    ours("network-build-config", APP),
                    lambda: reference_rebuildall(dokku),
                    None,
                ),
                "docker-args-process-deploy": (
                    ours("docker-args-process-deploy", APP, "herokuish", "latest"),
                    lambda: run_checked([interpreter(dokku), "-E", "-s", "-c", "pass"], dokku.env) or 0,
                    None,
                ),
            }
            for attach in (
                lambda: run_checked(cases["post-container-create"][0], dokku.env),
                cases["post-container-create"][1],
            ):
                attach()  # both must really attach, or their times mean nothing
                if not on_network(created):
                    raise RuntimeError("an attach under test left the container unattached")
                detach(created)
            results = {name: count_calls(*case, cold_env, Path(temp)) for name, case in cases.items()}
            watcher = RunningWatcher(dokku, Path(temp) / "watcher").started()
            # The one `docker` call Dokku's plugin makes for the same work (issue 21's yardstick).
            one_call = {
                "post-container-create": connect_call(network.name, created.id),
                "network-get-ipaddr": lambda: docker_cli(
                    "container", "inspect", "--format", "{{.NetworkSettings.IPAddress}}", running[0].id
                ),
                "core-post-deploy": connect_call(network.name, deployed.id),
            }
            for name, (command, reference, reset) in cases.items():
                contenders = {
                    "cold": lambda command=command: run_checked(command, cold_env),
                    "warm": lambda command=command: run_checked(command, dokku.env),
                    "reference": reference,
                }
                if name in one_call:
                    contenders["one call"] = one_call[name]
                results[name].update(interleaved_medians(contenders, options.runs, reset=reset))
            soaked = soak(dokku, watcher, cases["network-get-ipaddr"][0])
            served = watcher.lines()
            watcher.stop()
            watcher = None
            missing = missing_socket_seconds(dokku, cold_env, options.runs)
            bare = bare_interpreters(dokku, options.runs)
    finally:
        if watcher is not None:
            watcher.kill()
        sweep_uninterrupted(client)

    print("\n".join(soaked))
    print(
        "the bare interpreter: with site (-E -s, the yardstick above) {:.1f} ms, as triggers start"
        " it (-E -s -S) {:.1f} ms".format(*(seconds * 1000 for seconds in bare))
    )
    return report(results, options, missing, served)


def report(
    results: dict[str, dict[str, float]], options: argparse.Namespace, missing: float, served: list[str]
) -> int:
    """The table; exit status 1 when the watcher did not answer, or (unless `--counts-only`) a
    warm trigger is above 1x Dokku's one call (the pattern where there is none; 1.3x the
    interpreter for docker-args-process-deploy)."""
    print(
        f"median of {options.runs} runs each; pattern = one docker CLI process per inspect/connect"
        " (docker-args-process-deploy: the plugin's bare interpreter); one call = the single"
        " `docker` call Dokku's plugin makes for that work"
    )
    print(
        f"{'trigger':<29} {'pattern ms':>10} {'one call ms':>11} {'cold ms':>8} {'warm ms':>8}"
        f" {'cold/pat':>8} {'warm/pat':>8} {'warm/one':>8} {'our API calls':>14} {'ref docker calls':>17}"
    )
    missed = []
    for name, medians in results.items():
        cold, warm = medians["cold"] / medians["reference"], medians["warm"] / medians["reference"]
        yardstick = medians.get("one call", medians["reference"])
        against_one = medians["warm"] / yardstick
        limit = ARGS_GOAL if name == "docker-args-process-deploy" else 1.0
        if against_one > limit and not options.counts_only:
            missed.append(f"{name} answered warm is {against_one:.2f}x Dokku's call (at most {limit}x)")
        one = f"{medians['one call'] * 1000:.1f}" if "one call" in medians else "-"
        print(
            f"{name:<29} {medians['reference'] * 1000:>10.1f} {one:>11} {medians['cold'] * 1000:>8.1f}"
            f" {medians['warm'] * 1000:>8.1f} {cold:>7.2f}x {warm:>7.2f}x {against_one:>7.2f}x"
            f" {medians['calls']:>14} {medians['processes']:>17}"
        )
    print(f"missing socket (the warm client's import and failed connect): {missing * 1000:.2f} ms")
    if not any(line.startswith("-----> Answering the engine triggers on ") for line in served):
        missed.append("the watcher did not answer the triggers: the warm column is cold")
    return goals_result(missed)


if __name__ == "__main__":
    run_benchmark(main)
