"""Triggers that talk to the engine, against the reference plugin's call pattern for the same work.

The reference plugin runs one `docker` CLI process per inspect or connect; this runs that
pattern with the real CLI, side by side with our trigger (interleaved runs, median):

* `network-get-ipaddr app web <id>`: inspect for the running state, the network mode, the IP;
* `post-container-create app <id> app deploy web` with one attach-post-create network:
  inspect the network, inspect the container (hostname), connect with both aliases
  (the container is disconnected again, untimed, before every run);
* `network-build-config app` for an app of two running containers: per container three
  inspects (running, network mode, IP) and one process to write the IP file.

It also counts the engine API requests of one run of ours (through a counting proxy) and
the `docker` processes of one run of the reference pattern.

    python3 benchmarks/engine_triggers.py [--runs 15]

Exit status 1 when one of our triggers is slower than the reference pattern (not judged with
--counts-only, as CI runs it: the times are printed).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from rebuild_scale import count_engine_calls, reference_rebuildall, remove_ip_files, sweep_uninterrupted
from timing import add_counts_only, goals_result, interleaved_medians, plugin_host, run_benchmark, run_checked

from tests.docker_fixtures import DockerResources, build_test_image, engine_client

APP = "bench-app"


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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per contender (median taken)")
    add_counts_only(parser)
    options = parser.parse_args(argv)

    client = engine_client()
    build_test_image(client)
    resources = DockerResources(client)
    results: dict[str, dict[str, float]] = {}  # name -> ours, reference (s), calls, processes
    try:
        with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
            dokku = plugin_host(Path(temp))
            root = dokku.create_app(APP)
            running = [resources.app_container(APP, "web", index, app_root=root) for index in (1, 2)]
            created = resources.app_container("attach-app", start=False)
            network = resources.network()
            run_checked(
                [
                    str(dokku.plugin_dir / "subcommands" / "set"),
                    "network:set",
                    APP,
                    "attach-post-create",
                    network.name,
                ],
                dokku.env,
            )

            def ours(name: str, *args: str) -> list[str]:
                return [str(dokku.plugin_dir / name), *args]

            def attached() -> bool:
                """A created container's endpoints are in its own inspect, not the network's."""
                created.reload()
                return network.name in created.attrs["NetworkSettings"]["Networks"]

            def detach() -> None:
                if attached():
                    network.disconnect(created.id, force=True)

            # name -> (our command, the reference pattern returning its docker processes, untimed reset)
            cases: dict[str, tuple[list[str], Callable[[], int], Callable[[], object] | None]] = {
                # Attaching a created container: the engine records it, as in a deploy.
                "post-container-create": (
                    ours("post-container-create", "app", created.id, APP, "deploy", "web"),
                    lambda: reference_attach(network.name, created.id),
                    detach,
                ),
                "network-get-ipaddr": (
                    ours("network-get-ipaddr", APP, "web", running[0].id),
                    lambda: reference_get_ipaddr(running[0].id),
                    None,
                ),
                "network-build-config": (
                    ours("network-build-config", APP),
                    lambda: reference_rebuildall(dokku),
                    lambda: remove_ip_files(dokku),
                ),
            }
            for attach in (
                lambda: run_checked(cases["post-container-create"][0], dokku.env),
                cases["post-container-create"][1],
            ):
                attach()  # both must really attach, or their times mean nothing
                if not attached():
                    raise RuntimeError("an attach under test left the container unattached")
                detach()
            for name, (command, reference, reset) in cases.items():
                results[name] = interleaved_medians(
                    {"ours": lambda command=command: run_checked(command, dokku.env), "reference": reference},
                    options.runs,
                    reset=reset,
                )
                if reset is not None:
                    reset()
                results[name]["calls"] = count_engine_calls(command, dokku.env, Path(temp))
                if reset is not None:
                    reset()
                results[name]["processes"] = reference()
    finally:
        sweep_uninterrupted(client)

    print(f"median of {options.runs} runs each; reference = one docker CLI process per inspect/connect")
    print(
        f"{'trigger':<24} {'ours ms':>9} {'reference ms':>13} {'ratio':>7}"
        f" {'our API calls':>14} {'ref docker calls':>17}"
    )
    slower = []
    for name, medians in results.items():
        ratio = medians["ours"] / medians["reference"]
        if ratio > 1 and not options.counts_only:
            slower.append(name)
        print(
            f"{name:<24} {medians['ours'] * 1000:>9.1f} {medians['reference'] * 1000:>13.1f} {ratio:>6.2f}x"
            f" {medians['calls']:>14} {medians['processes']:>17}"
        )
    return goals_result([f"{name} is slower than the reference pattern" for name in slower])


if __name__ == "__main__":
    run_benchmark(main)
