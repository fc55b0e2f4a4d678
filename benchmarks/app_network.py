"""What `app-network` costs a deploy: `docker-args-process-deploy`, as scheduler-docker-local
calls it for every container, side by side (interleaved runs, median) for

* an app with `app-network` off (Dokku's default: answered from the files, no engine call);
* an app's first deploy with it on (the network's creation: the host lock, one listing of the
  engine's networks, the create, the record), a new app each run;
* a later deploy with it on (the network exists: one engine check that it does);

each without a watcher (cold: the trigger's own engine client) and with `network:watch`
running (its check answered warm, without the Docker SDK's import).

It counts the engine API requests of one run of each (through a counting proxy), and the
networks a later deploy makes (none). Then `post-delete` of the first-deploy apps, timed
the same way, removes their networks.

    python3 benchmarks/app_network.py [--runs 15]

Exit status 1 when a later deploy makes a network or its engine requests exceed the off
case's by more than one listing; times and ratios are printed, never judged.
"""

from __future__ import annotations

import statistics
import tempfile
import uuid
from pathlib import Path

import docker
from rebuild_scale import count_engine_calls
from timing import goals_result, plugin_host, run_benchmark, run_checked, runs_options, wall_time

from tests.docker_fixtures import build_test_image, engine_client
from tests.host import DokkuHost
from tests.watcher import RunningWatcher

STDIN = " --rm -e PORT=5000 "
PREFIX = f"bench-an-{uuid.uuid4().hex[:6]}"
CASES = ("off", "on, first deploy", "on, later deploy")
WARM = ", watcher"


def deploy_args(dokku: DokkuHost, app: str) -> list[str]:
    return [
        str(dokku.plugin_dir / "docker-args-process-deploy"),
        app,
        "herokuish",
        "dokku/app:latest",
        "web",
        "1",
    ]


def new_app(dokku: DokkuHost, name: str, app_network: bool) -> str:
    dokku.create_app(name)
    if app_network:
        run_checked(
            [str(dokku.plugin_dir / "subcommands" / "set"), "network:set", name, "app-network", "true"],
            dokku.env,
        )
    return name


def time_cases(
    dokku: DokkuHost, apps: tuple[str, str], made: list[str], runs: int, suffix: str
) -> dict[str, float]:
    """Median wall time (s) of each case, interleaved; `apps`: the app with app-network off and
    the one whose network exists; each round's first deploy is a new app's (kept in `made`)."""
    off, later = apps
    samples: dict[str, list[float]] = {f"{name}{suffix}": [] for name in CASES}
    for _ in range(runs + 1):  # the first round only warms caches
        first = new_app(dokku, f"{PREFIX}-{len(made)}", app_network=True)
        made.append(first)
        for name, app in zip(CASES, (off, first, later)):
            command = deploy_args(dokku, app)
            samples[f"{name}{suffix}"].append(
                wall_time(lambda command=command: run_checked(command, dokku.env, STDIN))
            )
    return {name: statistics.median(times[1:]) for name, times in samples.items()}


def bench_networks(client: docker.DockerClient) -> list[dict]:
    """The networks of this run's apps only: the engine may be making others meanwhile (the tests)."""
    return [
        network for network in client.api.networks() if network["Name"].startswith(f"dokku-app-{PREFIX}-")
    ]


def main(argv: list[str]) -> int:
    options = runs_options(__doc__, argv)
    client = engine_client()
    build_test_image(client)
    made: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
            dokku = plugin_host(Path(temp))
            off = new_app(dokku, f"{PREFIX}-off", app_network=False)
            later = new_app(dokku, f"{PREFIX}-later", app_network=True)
            run_checked(deploy_args(dokku, later), dokku.env, STDIN)  # its network, made once
            made.append(later)
            medians = time_cases(dokku, (off, later), made, options.runs, "")
            watcher = RunningWatcher(dokku, Path(temp) / "watcher").started()
            try:
                medians |= time_cases(dokku, (off, later), made, options.runs, WARM)
            finally:
                watcher.stop()
            networks_before = len(bench_networks(client))
            calls = {
                "off": count_engine_calls(deploy_args(dokku, off), dokku.env, Path(temp)),
                "on, first deploy": count_engine_calls(
                    deploy_args(dokku, new_app(dokku, f"{PREFIX}-counted", app_network=True)),
                    dokku.env,
                    Path(temp),
                ),
                "on, later deploy": count_engine_calls(deploy_args(dokku, later), dokku.env, Path(temp)),
            }
            made.append(f"{PREFIX}-counted")
            later_made = len(bench_networks(client)) - networks_before - 1  # the counted first deploy's
            deletes = [
                wall_time(
                    lambda app=app: run_checked([str(dokku.plugin_dir / "post-delete"), app], dokku.env)
                )
                for app in made
            ]
            made.clear()
    finally:
        for app in made:  # a run that failed half-way: its networks go anyway
            for network in client.api.networks(names=[f"dokku-app-{app}"]):
                client.api.remove_network(network["Id"])

    print(f"docker-args-process-deploy, median of {options.runs} runs")
    print(f"{'case':<28}{'ms':>8}{'x off':>8}{'engine requests (cold)':>24}")
    for name, seconds in medians.items():
        off_seconds = medians["off" + (WARM if name.endswith(WARM) else "")]
        requests = calls.get(name, "")
        print(f"{name:<28}{seconds * 1000:>8.1f}{seconds / off_seconds:>8.2f}{requests:>24}")
    print(
        f"post-delete removing an app's network, median of {len(deletes)}:"
        f" {statistics.median(deletes) * 1000:.1f} ms"
    )
    print(f"networks a later deploy made: {later_made}")
    missed = []
    if later_made:
        missed.append(f"a later deploy made {later_made} network(s)")
    if calls["on, later deploy"] > calls["off"] + 2:
        missed.append(f"a later deploy made {calls['on, later deploy']} engine requests, off {calls['off']}")
    return goals_result(missed)


if __name__ == "__main__":
    run_benchmark(main)
