"""Ours beside Dokku's own network plugin (the Go one Dokku ships), per trigger and over a deploy.

Given the folder of Dokku's plugin (v0.38.27, built from Dokku's source: its `triggers` binary and
one link per trigger), each trigger is timed three ways, interleaved, median: Dokku's, ours cold
(no watcher: a copy of the host's properties where no socket is) and ours warm (`network:watch`
running). The file triggers on an app with IP and PORT files; the engine triggers on Dokku
containers of the test image, running. Then the calls a deploy of N web containers makes, in
the order Dokku's scheduler-docker-local and nginx-vhosts make them:

* `network-get-property <app> bind-all-interfaces`, `docker-args-process-deploy` for the
  process type, then per container `docker-args-process-deploy` (with its index),
  `post-container-create`, `network-get-ipaddr`, `network-write-ipaddr`, `network-write-port`;
* `core-post-deploy`; nginx's `network-config-exists`, `network-build-config`,
  `network-get-listeners <app> web`, `network-get-static-listeners`;

timed as one sequence (each call a process, as plugn runs it), `--deploys` times each.

    python3 benchmarks/go_plugin.py --dokku-plugin <folder> [--runs 11] [--containers 4]

Dokku's plugin runs the `docker` CLI and `plugn trigger` (the tests' stand-in), as on a host.
Exit status 1 when a trigger failed; the times are printed, not judged (docs/development.md
restates the goals against these figures). Without `--dokku-plugin`: one line, exit 2.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine_triggers import cold_environment
from timing import add_counts_only, interleaved_medians, plugin_host, run_checked

from tests.docker_fixtures import DockerResources, build_test_image, engine_client, sweep
from tests.host import REPO_ROOT
from tests.watcher import RunningWatcher

APP = "go-bench-app"
STDIN = " --restart=on-failure:10 "
CONTENDERS = ("Dokku's", "ours, cold", "ours, warm")
# Dokku's plugin asks `ps-current-scale` for the process types to rebuild: a plugin that answers.
SCALE_PLUGIN = "#!/bin/sh\necho web={containers}\n"


def file_calls() -> dict[str, list[list[str]]]:
    """trigger -> the arguments of successive runs (writers alternate their value: real writes)."""
    return {
        "network-get-property": [[APP, "bind-all-interfaces"]],
        "network-get-listeners": [[APP, "web"]],
        "network-config-exists": [[APP]],
        "network-get-static-listeners": [[APP, "web"]],
        "docker-args-process-deploy": [[APP, "herokuish", "latest", "web", "1"]],
        "network-write-ipaddr": [[APP, "web", "9", ip] for ip in ("10.0.0.6", "10.0.0.7")],
        "network-write-port": [[APP, "web", "9", port] for port in ("5001", "5000")],
    }


def engine_calls(container_id: str) -> dict[str, list[list[str]]]:
    return {
        "post-container-create": [["app", container_id, APP, "deploy", "web"]],
        "network-get-ipaddr": [[APP, "web", container_id]],
        "core-post-deploy": [[APP, "5000", "", "latest"]],
        "network-build-config": [[APP]],
    }


def deploy_calls(containers: dict[str, str]) -> list[list[str]]:
    """Every call of one deploy of `containers` (id -> IP), in Dokku's order: [trigger, *args].
    The scheduler writes the IP network-get-ipaddr printed: nginx's rebuild finds them in sync."""
    calls = [
        ["network-get-property", APP, "bind-all-interfaces"],
        ["docker-args-process-deploy", APP, "herokuish", "latest", "web"],
    ]
    for index, (container_id, ip) in enumerate(containers.items(), start=1):
        calls += [
            ["docker-args-process-deploy", APP, "herokuish", "latest", "web", str(index)],
            ["post-container-create", "app", container_id, APP, "deploy", "web"],
            ["network-get-ipaddr", APP, "web", container_id],
            ["network-write-ipaddr", APP, "web", str(index), ip],
            ["network-write-port", APP, "web", str(index), "5000"],
        ]
    return [
        *calls,
        ["core-post-deploy", APP, "5000", "", "latest"],
        ["network-config-exists", APP],
        ["network-build-config", APP],
        ["network-get-listeners", APP, "web"],
        ["network-get-static-listeners", APP, "web"],
    ]


def dokku_host(folder: Path, plugin: Path, containers: int) -> tuple[Path, dict[str, str]]:
    """A host for Dokku's plugin: its app folder, properties, the `deployed` flag its rebuild
    reads, a `ps-current-scale` plugin, plugn's stand-in and the docker CLI on PATH."""
    enabled = folder / "plugins" / "enabled"
    (enabled / "ps").mkdir(parents=True)
    (enabled / "network").symlink_to(plugin)
    scale = enabled / "ps" / "ps-current-scale"
    scale.write_text(SCALE_PLUGIN.format(containers=containers))
    scale.chmod(0o755)
    (folder / "home" / APP).mkdir(parents=True)
    deployed = folder / "lib" / "config" / "common" / APP / "deployed"
    deployed.parent.mkdir(parents=True)
    deployed.write_text("true")
    env = {
        "PATH": f"{REPO_ROOT / 'tests'}:{os.environ['PATH']}",
        "DOKKU_ROOT": str(folder / "home"),
        "DOKKU_LIB_ROOT": str(folder / "lib"),
        "PLUGIN_PATH": str(folder / "plugins"),
        "PLUGIN_ENABLED_PATH": str(enabled),
        "DOKKU_SYSTEM_USER": "root",
        "DOKKU_SYSTEM_GROUP": "root",
    }
    return folder / "home" / APP, env


def deploy(roots: list[Path], resources: DockerResources, containers: int) -> dict[str, str]:
    """`containers` running web containers of APP (id -> IP), each with its `CONTAINER.web.<n>`,
    `IP.web.<n>` and `PORT.web.<n>` in every root, as after a deploy."""
    found = {}
    for index in range(1, containers + 1):
        container = resources.app_container(APP, "web", index)
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        for root in roots:
            (root / f"CONTAINER.web.{index}").write_text(f"{container.id}\n")
            (root / f"IP.web.{index}").write_text(ip)
            (root / f"PORT.web.{index}").write_text("5000")
        found[container.id] = ip
    return found


def cycling(program: Callable[[str], str], env: dict[str, str], argvs: list[list[str]]) -> Callable[[], None]:
    commands = itertools.cycle(argvs)

    def run() -> None:
        trigger, *args = next(commands)
        run_checked([program(trigger), *args], env, STDIN)

    return run


def sequence(
    program: Callable[[str], str], env: dict[str, str], calls: list[list[str]]
) -> Callable[[], None]:
    def run() -> None:
        for trigger, *args in calls:
            run_checked([program(trigger), *args], env, STDIN if trigger.startswith("docker-args") else "")

    return run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dokku-plugin", type=Path, help="the folder of Dokku's own network plugin")
    parser.add_argument("--runs", type=int, default=11, help="timed runs per contender (median taken)")
    parser.add_argument("--containers", type=int, default=4, help="web containers of the deploy")
    parser.add_argument("--deploys", type=int, default=5, help="timed deploys per contender (median taken)")
    add_counts_only(parser)  # as CI runs every benchmark: this one judges nothing anyway
    options = parser.parse_args(argv)
    if options.dokku_plugin is None or not (options.dokku_plugin / "triggers").is_file():
        print(
            " !     Give --dokku-plugin the folder of Dokku's network plugin (its `triggers` binary)",
            file=sys.stderr,
        )
        return 2
    client = engine_client()
    build_test_image(client)
    resources = DockerResources(client)
    try:
        with tempfile.TemporaryDirectory(prefix="dokku-network-go-") as temp:
            folder = Path(temp)
            ours = plugin_host(folder / "ours")
            ours_root = ours.create_app(APP)
            dokku_root, dokku_env = dokku_host(
                folder / "dokku", options.dokku_plugin.resolve(), options.containers
            )
            containers = deploy([ours_root, dokku_root], resources, options.containers)
            cold_env = cold_environment(ours, folder / "cold-lib")
            (Path(cold_env["DOKKU_LIB_ROOT"]) / "data").mkdir(exist_ok=True)

            def dokku(trigger: str) -> str:
                return str(options.dokku_plugin / trigger)

            def plugin(trigger: str) -> str:
                return str(ours.plugin_dir / trigger)

            calls = {**file_calls(), **engine_calls(next(iter(containers)))}
            steps = deploy_calls(containers)
            watcher = RunningWatcher(ours, folder / "watcher").started()
            try:
                per_trigger = {
                    trigger: interleaved_medians(
                        {
                            CONTENDERS[0]: cycling(dokku, dokku_env, [[trigger, *args] for args in argvs]),
                            CONTENDERS[1]: cycling(plugin, cold_env, [[trigger, *args] for args in argvs]),
                            CONTENDERS[2]: cycling(plugin, ours.env, [[trigger, *args] for args in argvs]),
                        },
                        options.runs,
                    )
                    for trigger, argvs in calls.items()
                }
                deploys = interleaved_medians(
                    {
                        CONTENDERS[0]: sequence(dokku, dokku_env, steps),
                        CONTENDERS[1]: sequence(plugin, cold_env, steps),
                        CONTENDERS[2]: sequence(plugin, ours.env, steps),
                    },
                    options.deploys,
                )
            finally:
                watcher.stop()
    finally:
        sweep(client)
    report(per_trigger, deploys, len(steps), options)
    return 0


def report(
    per_trigger: dict[str, dict[str, float]],
    deploys: dict[str, float],
    steps: int,
    options: argparse.Namespace,
) -> None:
    print(f"median of {options.runs} runs, ms (x Dokku's)")
    print(f"{'trigger':<30}{CONTENDERS[0]:>10}{CONTENDERS[1]:>18}{CONTENDERS[2]:>18}")
    for trigger, medians in per_trigger.items():
        print(f"{trigger:<30}{row(medians)}")
    print(f"a deploy of {options.containers} web containers ({steps} calls), median of {options.deploys}")
    print(f"{'all its calls':<30}{row(deploys)}")
    total = {name: sum(medians[name] for medians in per_trigger.values()) for name in CONTENDERS}
    print(f"{'the triggers above, summed':<30}{row(total)}")


def row(medians: dict[str, float]) -> str:
    base = medians[CONTENDERS[0]]
    cells = [f"{base * 1000:>10.1f}"]
    for name in CONTENDERS[1:]:
        cells.append(f"{medians[name] * 1000:>11.1f} ({medians[name] / base:.2f}x)")
    return "".join(cells)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
