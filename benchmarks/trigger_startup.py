"""Start-up cost of every file-only trigger, as a ratio to the bare interpreter.

Installs the plugin the Dokku way into a temp folder, prepares an app with
properties and IP/PORT files, then times each trigger, `python3 -c pass` and
`python3 -c 'import filelock'` (the plugin's own interpreter) side by side, and
prints the median wall time of each and its ratios to both.

* Readers (`docker-args-*`, `network-get-*`, `network-config-exists`, `report`, and the
  deploy triggers of an app without attach-* property) must stay within --max-ratio of
  the bare interpreter: they never import filelock, docker or typer. Their app names no
  network but Docker's own (`initial-network host`), so `docker-args-*` make no engine call.
* With an engine: `docker-args-process-deploy` of an app naming a network made by
  network:create, which checks in one engine call that it exists (and would make it again),
  shown beside the same trigger of the app naming none: what naming a network costs.
* Writers take the app's `filelock` lock: their floor is `import filelock`, and both
  ratios are printed. With an engine, they are timed again with `network:watch` running,
  beside the readers of that run: the watcher makes the writes under its own lock, and a
  writer must then stay within --max-ratio of the median reader (the goal of
  docs/development.md). Each run writes a value other than the one before it (a real
  write); `network-write-port` is also timed writing what is already there, as most
  redeploys do, which needs no lock. post-delete runs on an app of its own,
  post-app-rename-setup on properties restored (untimed) before every run.

    python3 benchmarks/trigger_startup.py [--runs 21] [--max-ratio 1.3]

Exit status 1 when a reader's ratio, or a warm writer's to the readers, exceeds --max-ratio
(not with --counts-only, as CI runs it).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from timing import add_counts_only, interleaved_medians, plugin_host, run_checked

from network_plugin.main import TRIGGERS
from network_plugin.warm_protocol import WRITES
from tests.docker_fixtures import OWNER, RESOURCE_LABEL
from tests.host import DokkuHost
from tests.watcher import RunningWatcher

APP = "bench-app"
SCRATCH_APP = "scratch-app"  # its properties are deleted by post-delete
CLONE_APP = "clone-app"  # post-app-clone-setup copies APP's properties here
RENAMED_FROM, RENAMED_TO = "renamed-from", "renamed-to"  # post-app-rename-setup moves properties
DOCKER_ARGS_STDIN = " --restart=on-failure:10 -e FOO=bar "
# trigger -> arguments, for every trigger that only reads files
READERS = {
    "docker-args-process-build": [APP, "herokuish"],
    "docker-args-process-deploy": [APP, "herokuish", "latest"],
    "docker-args-process-run": [APP, "herokuish", "latest"],
    "network-config-exists": [APP],
    "network-get-listeners": [APP, "web"],
    "network-get-property": [APP, "initial-network"],
    "network-get-static-listeners": [APP, "web"],
    "report": [APP],
    # Engine triggers in their common case, run at every deploy: APP sets no attach-* property,
    # so they answer from files alone (with attach-post-create set: engine_triggers.py).
    "post-container-create": ["app", "0123456789ab", APP, "deploy", "web"],
    "core-post-deploy": [APP, "5000", "172.17.0.5", "latest"],
}
# label -> (trigger, the arguments of successive runs): every writer, each run a real write.
IPS, PORTS = ("10.0.0.6", "10.0.0.7"), ("5001", "5000")
WRITERS = {
    "network-write-ipaddr": (
        "network-write-ipaddr",
        [[APP, "web", "1", ip] for ip in ("10.0.0.6", "10.0.0.5")],
    ),
    "network-write-port": ("network-write-port", [[APP, "web", "1", port] for port in PORTS]),
    "network-write-port, same value": ("network-write-port", [[APP, "web", "2", "5000"]]),
    "post-app-clone-setup": ("post-app-clone-setup", [[APP, CLONE_APP]]),
    "post-app-rename-setup": ("post-app-rename-setup", [[RENAMED_FROM, RENAMED_TO]]),
    "post-delete": ("post-delete", [[SCRATCH_APP]]),
}
# The same trigger for an app naming a network of its own (needs an engine; not a reader).
NETWORK_APP = "bench-network-app"
NAMING_A_NETWORK = "docker-args-process-deploy, app naming a network"
# The writers the watcher makes while it runs (post-delete writes itself: not every deploy's).
WARM_WRITERS = [label for label, (trigger, _) in WRITERS.items() if trigger in WRITES and "same" not in label]
# Not timed here: install (builds the venv and links, runs once per plugin:install), and the
# engine triggers doing engine work (engine_triggers.py, rebuild_scale.py).
BASELINE = "python3 -c pass"
FILELOCK_FLOOR = "python3 -c 'import filelock'"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21, help="runs per command (median taken)")
    parser.add_argument("--max-ratio", type=float, default=1.3, help="fail when a reader is above this ratio")
    add_counts_only(parser)
    options = parser.parse_args(argv)
    unknown = {*READERS, *(trigger for trigger, _ in WRITERS.values())} - set(TRIGGERS)
    if unknown:
        parser.error(f"not triggers of the plugin: {sorted(unknown)}")

    with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
        dokku = plugin_host(Path(temp))
        _prepare(dokku)

        def restore_renamed_app() -> None:
            """Untimed, before every run: post-app-rename-setup removed the old app's properties."""
            if not dokku.property_file(RENAMED_FROM, "bind-all-interfaces").exists():
                dokku.write_property(RENAMED_FROM, "bind-all-interfaces", "false")

        network = _network_of(dokku)
        # The interpreter the plugin runs on, without its venv: the fairest "bare python".
        interpreter = os.path.realpath(dokku.plugin_dir / ".venv" / "bin" / "python3")
        venv_python = str(dokku.plugin_dir / ".venv" / "bin" / "python3")

        def cycling(argvs: list[list[str]]) -> Callable[[], None]:
            commands = itertools.cycle(argvs)
            return lambda: run_checked(next(commands), dokku.env, DOCKER_ARGS_STDIN)

        contenders = {
            BASELINE: cycling([[interpreter, "-c", "pass"]]),
            FILELOCK_FLOOR: cycling([[venv_python, "-E", "-s", "-c", "import filelock"]]),
        }
        for name, args in READERS.items():
            contenders[name] = cycling([[str(dokku.plugin_dir / name), *args]])
        for label, (trigger, argvs) in WRITERS.items():
            contenders[label] = cycling([[str(dokku.plugin_dir / trigger), *args] for args in argvs])
        if network:
            deploy_args = READERS["docker-args-process-deploy"][1:]
            program = str(dokku.plugin_dir / "docker-args-process-deploy")
            contenders[NAMING_A_NETWORK] = cycling([[program, NETWORK_APP, *deploy_args]])
        warm: dict[str, float] = {}
        try:
            medians = interleaved_medians(contenders, options.runs, reset=restore_renamed_app)
            if network:
                watcher = RunningWatcher(dokku, Path(temp) / "watcher").started()
                try:
                    warm_contenders = {name: contenders[name] for name in (BASELINE, *READERS, *WARM_WRITERS)}
                    warm = interleaved_medians(warm_contenders, options.runs, reset=restore_renamed_app)
                finally:
                    watcher.stop()
        finally:
            if network:
                destroy = [str(dokku.plugin_dir / "subcommands" / "destroy"), "network:destroy", network]
                run_checked([*destroy, "--force"], dokku.env)

    print(f"interpreter: {interpreter} ({options.runs} runs each, median wall time)")
    if not network:
        print(f"no Docker engine answers: {NAMING_A_NETWORK!r} is not timed")
    failed = _print_cold(medians, options)
    if warm:
        failed = _print_warm_writers(warm, options) or failed
    return 1 if failed else 0


def _print_cold(medians: dict[str, float], options: argparse.Namespace) -> bool:
    """Every trigger against the interpreter (and a writer against `import filelock`); True when a
    reader is over --max-ratio (and that is judged)."""
    baseline, floor = medians[BASELINE], medians[FILELOCK_FLOOR]
    width = max(len(name) for name in medians) + 2
    print(f"{'command':<{width}} {'median ms':>10} {'/python':>8} {'/filelock':>10}")
    failed = False
    for name, median in medians.items():
        ratio = median / baseline
        over = name in READERS and ratio > options.max_ratio
        failed = failed or (over and not options.counts_only)
        floor_ratio = f"{median / floor:>9.2f}x" if name in WRITERS else " " * 10
        kind = "  reader" if name in READERS else "  writer" if name in WRITERS else ""
        verdict = "  > max" if over else ""
        print(f"{name:<{width}} {median * 1000:>10.1f} {ratio:>7.2f}x {floor_ratio}{kind}{verdict}")
    return failed


def _print_warm_writers(warm: dict[str, float], options: argparse.Namespace) -> bool:
    """The writers with the watcher running, against the median reader of the same run; True when
    one is over --max-ratio (and that is judged)."""
    reader = statistics.median(warm[name] for name in READERS)
    print(f"with network:watch running ({options.runs} runs each): the median reader {reader * 1000:.1f} ms")
    print(f"{'writer':<32} {'median ms':>10} {'/reader':>8} {'/python':>8}")
    failed = False
    for name in WARM_WRITERS:
        ratio = warm[name] / reader
        over = ratio > options.max_ratio
        failed = failed or (over and not options.counts_only)
        verdict = "  > max" if over else ""
        to_python = warm[name] / warm[BASELINE]
        print(f"{name:<32} {warm[name] * 1000:>10.1f} {ratio:>7.2f}x {to_python:>7.2f}x{verdict}")
    return failed


def _prepare(dokku: DokkuHost) -> None:
    """The apps, their IP/PORT files, and APP on the host network (its docker-args need no engine)."""
    for app in (APP, SCRATCH_APP, CLONE_APP, RENAMED_TO, NETWORK_APP):
        dokku.create_app(app)
    for trigger, *args in (
        ["network-write-ipaddr", APP, "web", "1", "172.17.0.5"],
        ["network-write-port", APP, "web", "1", "5000"],
        ["network-write-ipaddr", APP, "web", "2", "172.17.0.6"],
        ["network-write-port", APP, "web", "2", "5000"],
    ):
        run_checked([str(dokku.plugin_dir / trigger), *args], dokku.env)
    setting = ["network:set", APP, "initial-network", "host"]
    run_checked([str(dokku.plugin_dir / "subcommands" / "set"), *setting], dokku.env)


def _network_of(dokku: DokkuHost) -> str:
    """A network made by network:create that NETWORK_APP names; '' without an engine."""
    name = f"dnb-{os.getpid()}"
    create = [str(dokku.plugin_dir / "subcommands" / "create"), "network:create", name]
    # Labelled as the tests label what they make: a run that dies leaves nothing for long.
    made = subprocess.run(
        [*create, "--label", f"{RESOURCE_LABEL}={OWNER}"], env=dokku.env, capture_output=True, check=False
    )
    if made.returncode != 0:
        return ""
    setting = ["network:set", NETWORK_APP, "attach-post-create", name]
    run_checked([str(dokku.plugin_dir / "subcommands" / "set"), *setting], dokku.env)
    return name


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
