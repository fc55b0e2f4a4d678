"""A Docker engine of a test's own, in its own network namespace, that the test may stop and start.

The shared engine on /var/run/docker.sock serves every other test and developer: a test
that needs the engine to go away and come back starts this one instead. Everything it
has (data root, exec root, pid file, socket, log) lives in `/tmp/dntw-<pid>` and its
namespace is `dntw-<pid>`, named for the test process: the teardown removes both whatever
happened, and a later run removes what a run that died left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker

from tests.docker_fixtures import OWNER, build_test_image
from tests.two_hosts import _alive, _engine_pid, _mounts_under, _processes_using, _signal_all
from tests.watcher import wait_for

PREFIX = "dntw"
RUNS_ROOT = Path("/tmp")
START_SECONDS = 60.0
STOP_SECONDS = 30.0


class PrivateEngine:
    def __init__(self, pid: str = OWNER) -> None:
        self.namespace = f"{PREFIX}-{pid}"
        # Short: Unix socket paths (108 bytes) of the engine and of its containerd live under it.
        self.root = RUNS_ROOT / self.namespace
        self.socket = self.root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.log = self.root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> docker.DockerClient:
        """Start dockerd (again) and wait until it answers; a client of it."""
        config = self.root / "daemon.json"
        config.write_text("{}\n")  # the host's /etc/docker/daemon.json is not this engine's
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "nsenter",
                    f"--net=/var/run/netns/{self.namespace}",
                    "dockerd",
                    "--config-file",
                    str(config),
                    "--data-root",
                    str(self.root / "data"),
                    "--exec-root",
                    str(self.root / "exec"),
                    "--pidfile",
                    str(self.root / "dockerd.pid"),
                    "-H",
                    self.url,
                    "--iptables=false",  # its own namespace: no rules needed, none left behind
                    # Apart from any other engine's containers, should a system containerd serve them all.
                    "--containerd-namespace",
                    self.namespace,
                    "--containerd-plugins-namespace",
                    f"{self.namespace}-plugins",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, f"the private dockerd (log: {self.log})", START_SECONDS)
        return docker.DockerClient(base_url=self.url, timeout=60)

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[-2000:]
        try:
            client = docker.DockerClient(base_url=self.url, timeout=5)
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, as an engine upgrade or `systemctl stop docker` does; its containers stop too."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def remove_engine(pid: str) -> None:
    """Remove everything the engine of run `pid` made: processes, mounts, files, namespace."""
    root = RUNS_ROOT / f"{PREFIX}-{pid}"
    # The engine first, gently: dockerd stops its containerd and unmounts what it mounted.
    for find, signum in (
        (lambda: _engine_pid(root), signal.SIGTERM),
        (lambda: _processes_using(root), signal.SIGTERM),
        (lambda: _processes_using(root), signal.SIGKILL),
    ):
        pids = find()
        _signal_all(pids, signum)
        deadline = time.monotonic() + STOP_SECONDS
        while any(_alive(process) for process in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
    for point in reversed(_mounts_under(root)):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run(["ip", "netns", "delete", f"{PREFIX}-{pid}"], check=False, capture_output=True)


def remove_dead_runs() -> None:
    for root in RUNS_ROOT.glob(f"{PREFIX}-*"):
        pid = root.name[len(PREFIX) + 1 :]
        if pid.isdigit() and pid != OWNER and not Path(f"/proc/{pid}").exists():
            remove_engine(pid)


@contextmanager
def private_engine() -> Iterator[tuple[PrivateEngine, docker.DockerClient]]:
    """A started private engine with the test image built; removed afterwards, whatever happens."""
    remove_dead_runs()
    engine = PrivateEngine()
    remove_engine(OWNER)  # an earlier test of this run that could not finish its teardown
    engine.root.mkdir(parents=True)
    try:
        subprocess.run(["ip", "netns", "add", engine.namespace], check=True)
        subprocess.run(["ip", "-n", engine.namespace, "link", "set", "lo", "up"], check=True)
        client = engine.start()
        build_test_image(client)
        yield engine, client
    finally:
        engine.stop()
        remove_engine(OWNER)


def can_run_private_engine() -> str:
    """'' when this machine can start a private engine, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    missing = [tool for tool in ("dockerd", "nsenter", "ip") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else ""
