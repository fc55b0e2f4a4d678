"""Start-up cost of every file-only trigger, as a ratio to the bare interpreter.

Installs the plugin the Dokku way into a temp folder, prepares an app with
properties and IP/PORT files, then times each trigger and `python3 -c pass`
(the plugin's own interpreter) side by side and prints the median wall time of
each and its ratio to the bare interpreter. Writers write the same value every
run, as a redeploy does; post-create and post-delete run on an app of their own,
post-app-rename-setup on properties restored (untimed) before every run. The engine
triggers are timed in their common case, an app with no attach-* property.

    python3 benchmarks/trigger_startup.py [--runs 21] [--max-ratio 1.5]

Exit status 1 when a trigger's ratio exceeds --max-ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from timing import interleaved_medians, plugin_host, run_checked

from network_plugin.main import TRIGGERS

APP = "bench-app"
SCRATCH_APP = "scratch-app"  # its properties are deleted by post-delete
CLONE_APP = "clone-app"  # post-app-clone-setup copies APP's properties here
RENAMED_FROM, RENAMED_TO = "renamed-from", "renamed-to"  # post-app-rename-setup moves properties
DOCKER_ARGS_STDIN = " --restart=on-failure:10 -e FOO=bar "
# trigger -> arguments, for every trigger that only reads or writes files
FILE_ONLY_TRIGGERS = {
    "docker-args-process-build": [APP, "herokuish"],
    "docker-args-process-deploy": [APP, "herokuish", "latest"],
    "docker-args-process-run": [APP, "herokuish", "latest"],
    "network-config-exists": [APP],
    "network-get-listeners": [APP, "web"],
    "network-get-property": [APP, "initial-network"],
    "network-get-static-listeners": [APP, "web"],
    "network-write-ipaddr": [APP, "web", "1", "172.17.0.5"],
    "network-write-port": [APP, "web", "1", "5000"],
    "post-app-clone-setup": [APP, CLONE_APP],
    "post-app-rename-setup": [RENAMED_FROM, RENAMED_TO],
    "post-delete": [SCRATCH_APP],
    "report": [APP],
    # Engine triggers in their common case, run at every deploy: APP sets no attach-* property,
    # so they answer from files alone (with attach-post-create set: engine_triggers.py).
    "post-container-create": ["app", "0123456789ab", APP, "deploy", "web"],
    "core-post-deploy": [APP, "5000", "172.17.0.5", "latest"],
}
# Not timed here: install (builds the venv and links, runs once per plugin:install), and the
# engine triggers doing engine work (engine_triggers.py, rebuild_scale.py).
BASELINE = "python3 -c pass"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21, help="runs per command (median taken)")
    parser.add_argument("--max-ratio", type=float, default=1.5, help="fail above this ratio")
    options = parser.parse_args(argv)
    unknown = set(FILE_ONLY_TRIGGERS) - set(TRIGGERS)
    if unknown:
        parser.error(f"not triggers of the plugin: {sorted(unknown)}")

    with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
        dokku = plugin_host(Path(temp))
        for app in (APP, SCRATCH_APP, CLONE_APP, RENAMED_TO):
            dokku.create_app(app)

        def restore_renamed_app() -> None:
            """Untimed, before every run: post-app-rename-setup removed the old app's properties."""
            if not dokku.property_file(RENAMED_FROM, "bind-all-interfaces").exists():
                dokku.write_property(RENAMED_FROM, "bind-all-interfaces", "false")

        for trigger, *args in (
            ["network-write-ipaddr", APP, "web", "1", "172.17.0.5"],
            ["network-write-port", APP, "web", "1", "5000"],
            ["network-write-ipaddr", APP, "web", "2", "172.17.0.6"],
        ):
            run_checked([str(dokku.plugin_dir / trigger), *args], dokku.env)
        run_checked(
            [
                str(dokku.plugin_dir / "subcommands" / "set"),
                "network:set",
                APP,
                "initial-network",
                "bench-net",
            ],
            dokku.env,
        )
        # The interpreter the plugin runs on, without its venv: the fairest "bare python".
        interpreter = os.path.realpath(dokku.plugin_dir / ".venv" / "bin" / "python3")
        commands = {BASELINE: [interpreter, "-c", "pass"]} | {
            name: [str(dokku.plugin_dir / name), *args] for name, args in FILE_ONLY_TRIGGERS.items()
        }
        medians = interleaved_medians(
            {
                name: lambda command=command: run_checked(command, dokku.env, DOCKER_ARGS_STDIN)
                for name, command in commands.items()
            },
            options.runs,
            reset=restore_renamed_app,
        )

    baseline = medians[BASELINE]
    print(f"interpreter: {interpreter} ({options.runs} runs each, median wall time)")
    print(f"{'command':<30} {'median ms':>10} {'ratio':>7}")
    failed = False
    for name, median in medians.items():
        ratio = median / baseline
        over = name != BASELINE and ratio > options.max_ratio
        failed = failed or over
        print(f"{name:<30} {median * 1000:>10.1f} {ratio:>6.2f}x{'  > max' if over else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
