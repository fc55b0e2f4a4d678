"""`network:watch` running as a subprocess of a test or a benchmark, with a proxy command that records.

The watcher runs the way the service runs it (`$PLUGIN/subcommands/watch network:watch`)
with the host's environment, whose DOKKU_NETWORK_PROXY_REFRESH records the refreshes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.host import DokkuHost
from tests.polling import WAIT_SECONDS, wait_for

# util-linux's setpriv: the watcher gets SIGTERM when the test process dies (killed, Ctrl-C).
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
IN_SYNC = "-----> Every app is in sync; following the engine's events"


class RunningWatcher:
    """`dokku network:watch` with its output in a log file; stop() sends SIGTERM.

    The proxy refresh command is the host's recorder (`DokkuHost.proxy_calls`).
    """

    def __init__(self, dokku: DokkuHost, folder: Path, env: dict[str, str] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.dokku = dokku
        self.log_file = folder / "watch.log"
        self._log = self.log_file.open("w")
        self.process = subprocess.Popen(
            [*DIE_WITH_PARENT, str(dokku.plugin_dir / "subcommands" / "watch"), "network:watch"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dokku.env | (env or {}),
        )

    def lines(self) -> list[str]:
        return self.log_file.read_text().splitlines()

    def calls(self) -> list[str]:
        """The apps the proxy command was called for, in order."""
        return self.dokku.proxy_calls()

    def rebuilds(self, app: str) -> int:
        return self.lines().count(f"-----> Ensuring network configuration is in sync for {app}")

    def wait_for_line(self, line: str, count: int = 1) -> None:
        def seen() -> bool:
            assert self.process.poll() is None, f"the watcher ended: {self.lines()}"
            return self.lines().count(line) >= count

        wait_for(seen, f"{line!r} x{count} in {self.lines()}")

    def started(self) -> RunningWatcher:
        """Wait until the first reconcile is done (its proxy refreshes included)."""
        self.wait_for_line(IN_SYNC)
        return self

    def stop(self) -> int:
        """SIGTERM, then the exit status (waiting generously)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=WAIT_SECONDS)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def watcher(dokku: DokkuHost, tmp_path: Path):
    """Start the watcher once the test has set the host up; always stopped afterwards."""
    running: list[RunningWatcher] = []

    def start(env: dict[str, str] | None = None) -> RunningWatcher:
        running.append(RunningWatcher(dokku, tmp_path / f"watch-{len(running)}", env))
        return running[-1].started()

    yield start
    for each in running:
        each.kill()
