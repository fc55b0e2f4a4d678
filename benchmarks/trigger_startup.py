"""Start-up cost of the file-only triggers, as a ratio to the bare interpreter.

Installs the plugin the Dokku way into a temp folder, prepares an app with
properties and IP/PORT files, then times each trigger and `python -c pass`
side by side (interleaved, so machine noise hits both alike) and prints the
median wall time of each and its ratio to the bare interpreter.

    python3 benchmarks/trigger_startup.py [--runs 21] [--max-ratio 1.6]

Exit status 1 when a trigger's ratio exceeds --max-ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.host import clean_env, install_plugin

APP = "bench-app"
# trigger -> arguments; stdin is fed to every run (docker-args-* read it)
FILE_ONLY_TRIGGERS = {
    "docker-args-process-deploy": [APP, "herokuish", "latest"],
    "network-get-property": [APP, "initial-network"],
    "network-get-listeners": [APP, "web"],
    "network-config-exists": [APP],
}
DOCKER_ARGS_STDIN = " --restart=on-failure:10 -e FOO=bar "


def prepare_app(env: dict[str, str], plugin: Path) -> None:
    Path(env["DOKKU_ROOT"], APP).mkdir(parents=True)
    commands = [
        ["post-create", APP],
        ["network-write-ipaddr", APP, "web", "1", "172.17.0.5"],
        ["network-write-port", APP, "web", "1", "5000"],
        ["network-write-ipaddr", APP, "web", "2", "172.17.0.6"],
    ]
    for trigger, *args in commands:
        subprocess.run([str(plugin / trigger), *args], env=env, check=True)
    subprocess.run(
        [str(plugin / "subcommands" / "set"), "network:set", APP, "initial-network", "bench-net"],
        env=env,
        check=True,
        capture_output=True,
    )


def wall_time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, input=DOCKER_ARGS_STDIN, text=True, capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21, help="runs per command (median taken)")
    parser.add_argument("--max-ratio", type=float, default=1.6, help="fail above this ratio")
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dokku-network-bench-") as temp:
        workdir = Path(temp)
        env = clean_env() | {
            "DOKKU_ROOT": str(workdir / "home"),
            "DOKKU_LIB_ROOT": str(workdir / "lib"),
            "PLUGIN_PATH": str(workdir / "plugins"),
        }
        plugin = install_plugin(workdir / "plugins", env)
        prepare_app(env, plugin)
        # The interpreter the plugin runs on, without its venv: the fairest "bare python".
        interpreter = os.path.realpath(plugin / ".venv" / "bin" / "python3")
        commands = {"python3 -c pass": [interpreter, "-c", "pass"]}
        commands |= {name: [str(plugin / name), *args] for name, args in FILE_ONLY_TRIGGERS.items()}

        samples: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():  # warm the page cache and bytecode
            wall_time(command, env)
        for _ in range(options.runs):
            for name, command in commands.items():
                samples[name].append(wall_time(command, env))

    medians = {name: statistics.median(times) for name, times in samples.items()}
    baseline = medians["python3 -c pass"]
    print(f"interpreter: {interpreter} ({options.runs} runs each, median wall time)")
    print(f"{'command':<30} {'median ms':>10} {'ratio':>7}")
    failed = False
    for name, median in medians.items():
        ratio = median / baseline
        over = name != "python3 -c pass" and ratio > options.max_ratio
        failed = failed or over
        flag = "  > max" if over else ""
        print(f"{name:<30} {median * 1000:>10.1f} {ratio:>6.2f}x{flag}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
