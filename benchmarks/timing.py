"""What the benchmarks share: a throw-away Dokku host with the plugin installed the
Dokku way, and side-by-side timing (interleaved runs, so machine noise hits every
contender alike; the median is reported)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.host import ENVIRONMENT_FROM, DokkuHost, clean_env, install_plugin


def plugin_host(folder: Path) -> DokkuHost:
    """DOKKU_ROOT, DOKKU_LIB_ROOT and PLUGIN_PATH under `folder`, the plugin installed."""
    env = clean_env() | {
        "DOKKU_ROOT": str(folder / "home"),
        "DOKKU_LIB_ROOT": str(folder / "lib"),
        "PLUGIN_PATH": str(folder / "plugins"),
    }
    (folder / "home").mkdir(parents=True)
    environment_from = os.environ.get(ENVIRONMENT_FROM)
    plugin_dir = install_plugin(folder / "plugins", env, Path(environment_from) if environment_from else None)
    return DokkuHost(plugin_dir=plugin_dir, dokku_root=folder / "home", lib_root=folder / "lib", env=env)


def wall_time(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_checked(command: list[str], env: dict[str, str], stdin: str = "") -> None:
    """Run a command to completion; a failure stops the benchmark (timing a failure means nothing)."""
    subprocess.run(command, env=env, input=stdin, text=True, capture_output=True, check=True)


def interleaved_medians(
    contenders: dict[str, Callable[[], object]],
    runs: int,
    reset: Callable[[], object] | None = None,
) -> dict[str, float]:
    """Median wall time (s) of each contender; `reset` (untimed) runs before every timed run."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs + 1):  # the first round only warms caches
        for name, action in contenders.items():
            if reset is not None:
                reset()
            samples[name].append(wall_time(action))
    return {name: statistics.median(times[1:]) for name, times in samples.items()}


def runs_options(description: str, argv: list[str]) -> argparse.Namespace:
    """`--runs` (timed runs per contender) and `--counts-only`, the options of a side-by-side timing."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per contender (median taken)")
    add_counts_only(parser)
    return parser.parse_args(argv)


def add_counts_only(parser: argparse.ArgumentParser) -> None:
    """`--counts-only`, as CI runs the full benchmarks: every time and ratio is printed, and only
    what is counted (engine calls, plugn calls, memory) is judged; a loaded machine's noise must
    not fail a run."""
    parser.add_argument(
        "--counts-only", action="store_true", help="judge what is counted, print times and ratios"
    )


def goals_result(missed: list[str]) -> int:
    """Print each missed goal after the table; exit status 1 when any was missed."""
    sys.stdout.flush()  # the table first, when both streams go to one file
    for message in missed:
        print(f" !     Goal missed: {message}", file=sys.stderr)
    return 1 if missed else 0


def run_benchmark(main: Callable[[list[str]], int]) -> None:
    """Exit with `main`'s status; Ctrl-C exits 130 once main's own clean-up has run."""
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print(" !     Interrupted: the containers and networks it made are removed", file=sys.stderr)
        sys.exit(130)
