"""Docker engines of the tests' own, each in a network namespace, and their removal.

Shared by the two swarm hosts (tests/two_hosts.py) and the private engine the watcher's
engine-restart test stops and starts (tests/private_engine.py). An engine lives in a
folder of its own (data root, exec root, pid file, socket, log) and is started with
`nsenter --net=...`, not `ip netns exec` (which remounts /sys, hiding the cgroup mounts
dockerd needs). Removing a run's folder stops every process that names a file under it
(the engines, their containerd, shims), unmounts what they mounted and deletes the folder.
The engines are the system's `dockerd`, or the command NETWORK_TEST_DOCKERD names (`tools/sid-engine
run` names its root's: the suite's own engines are then as current as the one it is pointed at).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import docker
import docker.errors

from tests.polling import wait_for

# Every run keeps its engines under RUNS_ROOT/<prefix>-<pid>, named for the test process.
RUNS_ROOT = Path("/tmp")
START_SECONDS = 60.0
STOP_SECONDS = 30.0
POLL_SECONDS = 0.2
DOCKERD = shlex.split(os.environ.get("NETWORK_TEST_DOCKERD", "dockerd"))
TOOLS = ("ip", "nsenter", DOCKERD[0])


def start_dockerd(netns: str, root: Path, *flags: str) -> subprocess.Popen[bytes]:
    """A dockerd in `netns` keeping everything under `root` (socket: `root/docker.sock`)."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "daemon.json"
    config.write_text("{}\n")  # the host's /etc/docker/daemon.json is not this engine's
    with (root / "dockerd.log").open("ab") as log:
        return subprocess.Popen(
            [
                "nsenter",
                f"--net=/var/run/netns/{netns}",
                *DOCKERD,
                "--config-file",
                str(config),
                "--data-root",
                str(root / "data"),
                "--exec-root",
                str(root / "exec"),
                "--pidfile",
                str(root / "dockerd.pid"),
                "-H",
                f"unix://{root / 'docker.sock'}",
                # Apart from any other engine's containers, should a system containerd serve them all.
                "--containerd-namespace",
                netns,
                "--containerd-plugins-namespace",
                f"{netns}-plugins",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def connect(process: subprocess.Popen[bytes], root: Path) -> docker.DockerClient:
    """A client of the engine `start_dockerd` started, once it answers (its log when it died)."""

    def answering() -> docker.DockerClient | None:
        if process.poll() is not None:
            log = (root / "dockerd.log").read_text(errors="replace")
            raise AssertionError(f"dockerd under {root} exited: {log[-2000:]}")
        try:
            client = docker.DockerClient(base_url=f"unix://{root / 'docker.sock'}", timeout=60)
            client.ping()
        except docker.errors.DockerException:
            return None
        return client

    return wait_for(answering, f"the dockerd under {root} to answer", START_SECONDS)  # type: ignore[return-value]


def missing_tools() -> list[str]:
    """The tools an engine of the tests' own needs that this machine lacks."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def run_folder(prefix: str, pid: str) -> Path:
    return RUNS_ROOT / f"{prefix}-{pid}"


def dead_runs(prefix: str) -> list[str]:
    """Pids of the runs whose folder outlived them (killed, crashed before their teardown)."""
    pids = [folder.name[len(prefix) + 1 :] for folder in RUNS_ROOT.glob(f"{prefix}-*")]
    return [pid for pid in pids if pid.isdigit() and not Path(f"/proc/{pid}").exists()]


def processes_using(path: Path) -> list[int]:
    """Pids whose command line names a file under `path`: the engines, their containerd, shims."""
    needle = f"{path}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in command:
            found.append(int(entry.name))
    return found


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return [point for point in points if point == str(path) or point.startswith(f"{path}/")]


def remove_run_folder(folder: Path, engine_roots: list[Path]) -> None:
    """Stop the engines of `engine_roots` gently (dockerd then stops its containerd and unmounts
    what it mounted), then whatever else still uses `folder`; unmount the rest, delete it."""
    for find, signum in (
        (lambda: [pid for root in engine_roots for pid in _engine_pid(root)], signal.SIGTERM),
        (lambda: processes_using(folder), signal.SIGTERM),
        (lambda: processes_using(folder), signal.SIGKILL),
    ):
        pids = find()
        _signal_all(pids, signum)
        deadline = time.monotonic() + STOP_SECONDS
        while any(_alive(process) for process in pids) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
    for point in reversed(mounts_under(folder)):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def _engine_pid(root: Path) -> list[int]:
    try:
        return [int((root / "dockerd.pid").read_text())]
    except (OSError, ValueError):
        return []


def _alive(pid: int) -> bool:
    """Running, neither gone nor a zombie (an engine this process started stays one until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
