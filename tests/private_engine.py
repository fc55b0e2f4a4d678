"""A Docker engine of a test's own, in its own network namespace, that the test may stop and start.

The shared engine on /var/run/docker.sock serves every other test and developer: a test
that needs the engine to go away and come back starts this one instead (own data root,
exec root, pid file and socket), and always tears it down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker

from tests.docker_fixtures import build_test_image
from tests.watcher import wait_for

START_SECONDS = 60.0


class PrivateEngine:
    def __init__(self, folder: Path) -> None:
        tag = uuid.uuid4().hex[:8]
        self.namespace = f"dnt-{tag}"
        self.folder = folder
        # Unix socket paths are short (108 bytes), and containerd's live under the exec root.
        self.exec_root = Path(f"/tmp/dnt-{tag}")
        self.socket = self.exec_root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.log = folder / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> docker.DockerClient:
        """Start dockerd (again) and wait until it answers; a client of it."""
        self.exec_root.mkdir(parents=True, exist_ok=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "nsenter",
                    f"--net=/var/run/netns/{self.namespace}",
                    "dockerd",
                    "--data-root",
                    str(self.folder / "data"),
                    "--exec-root",
                    str(self.exec_root / "exec"),
                    "--pidfile",
                    str(self.folder / "dockerd.pid"),
                    "-H",
                    self.url,
                    "--iptables=false",  # its own namespace: no rules needed, none left behind
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
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def private_engine(folder: Path) -> Iterator[tuple[PrivateEngine, docker.DockerClient]]:
    """A started private engine with the test image built; removed afterwards, whatever happens."""
    engine = PrivateEngine(folder)
    subprocess.run(["ip", "netns", "add", engine.namespace], check=True)
    try:
        subprocess.run(["ip", "-n", engine.namespace, "link", "set", "lo", "up"], check=True)
        client = engine.start()
        build_test_image(client)
        yield engine, client
    finally:
        engine.stop()
        subprocess.run(["ip", "netns", "delete", engine.namespace], check=False)
        # Mounts dockerd left behind (it was killed, or failed) would make the folders unremovable.
        for root in (engine.exec_root, folder / "data"):
            subprocess.run(["umount", "-R", "-l", str(root)], check=False, capture_output=True)
            shutil.rmtree(root, ignore_errors=True)


def can_run_private_engine() -> str:
    """'' when this machine can start a private engine, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    missing = [tool for tool in ("dockerd", "nsenter", "ip") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else ""
