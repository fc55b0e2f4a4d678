"""tools/demo, the quick start's first command: it says what it will create before it starts,
and does not run on a Dokku host unless told to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.host import ENVIRONMENT_FROM, REPO_ROOT, clean_env


def demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "tools" / "demo"), *args],
        env=clean_env() | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_demo_refuses_a_dokku_host_before_doing_anything(tmp_path: Path):
    lib_root = tmp_path / "var-lib-dokku"
    lib_root.mkdir()
    result = demo({"DOKKU_LIB_ROOT": str(lib_root)})

    # Nothing printed on stdout: not even the plan, so nothing was set up either.
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f" !     {lib_root} exists: this looks like a Dokku host. The demo adds (then removes) an image,"
        " a network and containers on its engine; run it with --on-dokku-host to go on\n"
    )


def test_the_demo_refuses_an_unknown_argument():
    result = demo({}, "--yes")

    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        " !     Usage: tools/demo [--on-dokku-host]\n",
    )


def test_the_demo_without_an_engine_is_one_line_never_a_traceback(tmp_path: Path, plugin_dir: Path):
    """Its steps run in the plugin's own environment (the session's, copied: nothing is built)."""
    socket = tmp_path / "docker.sock"  # nothing listens there
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "demo.py")],
        env=clean_env() | {"DOCKER_HOST": f"unix://{socket}", ENVIRONMENT_FROM: str(plugin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout.startswith("-----> Installing the plugin into ")
    assert result.stdout.endswith("/plugins, with its own environment\n")
    where = f"unix://{socket} (DOCKER_HOST)"
    assert result.stderr == (
        f" !     Unable to reach the Docker engine at {where}: No such file or directory\n"
    )
