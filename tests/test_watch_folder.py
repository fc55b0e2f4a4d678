"""The watcher's socket folder stays the Dokku user's, whoever makes it (docs/reference.md:
network:watch): a watcher run as root gives it to the Dokku user, or gives back one an older
one left root's, and so does `install`; `network:watch --status` and the watcher's warning
say whose it is and what to run (issue 26, item 4)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from network_plugin import warm
from network_plugin.agent import Agent
from tests.host import REPO_ROOT, DokkuHost

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="gives folders to another user")

# The Dokku user of these tests: one every Debian system has.
DOKKU_USER = {"DOKKU_SYSTEM_USER": "nobody", "DOKKU_SYSTEM_GROUP": "nogroup"}
NOT_ANSWERING = " !     Not answering the engine triggers (they run without the watcher): "
STRANGER = 12345  # a uid neither root nor the Dokku user


def dokku_ids() -> tuple[int, int]:
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


def watch_folder(lib_root: Path) -> Path:
    return lib_root / "data" / "network" / "watch"


def left_by(lib_root: Path, uid: int) -> Path:
    """The folder as a watcher of `uid` made it (root's: an older version's run as root), with
    the Dokku user's data/network above it, as the plugin makes that."""
    folder = watch_folder(lib_root)
    folder.mkdir(parents=True)
    os.chown(folder.parent, *dokku_ids())
    folder.chmod(0o700)
    os.chown(folder, uid, uid)
    return folder


def belongs_to_root(folder: Path) -> str:
    return (
        f"{folder} belongs to root, not to nobody (a watcher run as root made it):"
        " run `dokku plugin:install` as root, which gives it to nobody"
    )


def belongs_to_a_stranger(folder: Path) -> str:
    remedy = "remove it as root (the watcher makes it again)"
    return f"{folder} belongs to uid {STRANGER}, not to nobody: {remedy}"


@pytest.fixture
def as_root_for_nobody(host_paths: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process as root on a host whose Dokku user is `nobody`: the lib root."""
    for name, value in DOKKU_USER.items():
        monkeypatch.setenv(name, value)
    return host_paths[1]


@pytest.mark.parametrize("before", ["missing", "left-roots"])
def test_a_watcher_run_as_root_leaves_the_socket_folder_the_dokku_users(
    as_root_for_nobody: Path, capsys: pytest.CaptureFixture[str], before: str
):
    folder = watch_folder(as_root_for_nobody)
    if before == "left-roots":
        left_by(as_root_for_nobody, 0)
    agent = Agent()

    started = agent.start()
    try:
        status = folder.stat()
        listening = stat.S_ISSOCK((folder / warm.SOCKET_NAME).lstat().st_mode)
    finally:
        agent.stop()

    assert (started, capsys.readouterr().err) == (True, "")
    assert ((status.st_uid, status.st_gid), stat.S_IMODE(status.st_mode)) == (dokku_ids(), 0o700)
    assert listening


def test_a_watcher_run_as_root_refuses_a_folder_of_another_user_in_one_line(
    as_root_for_nobody: Path, capsys: pytest.CaptureFixture[str]
):
    folder = left_by(as_root_for_nobody, STRANGER)

    assert Agent().start() is False

    assert capsys.readouterr().err == f"{NOT_ANSWERING}{belongs_to_a_stranger(folder)}\n"
    assert list(folder.iterdir()) == [] and folder.stat().st_uid == STRANGER


@pytest.fixture
def reachable_lib_root() -> Iterator[Path]:
    """A DOKKU_LIB_ROOT the Dokku user can walk to, unlike tmp_path (under a folder of root's, 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="dnt-lib-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


# The watcher's start as the service runs it, as the Dokku user: with the system's interpreter,
# which that user can run (the tests' may live under root's home), and this work's code.
START_AS_SERVICE = f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from network_plugin.agent import Agent
print(Agent().start())
"""


@pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="runs the system's python3")
def test_the_service_finding_the_folder_roots_says_whose_it_is_and_what_to_run(reachable_lib_root: Path):
    folder = left_by(reachable_lib_root, 0)
    uid, gid = dokku_ids()

    started = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", START_AS_SERVICE],
        env={"PATH": "/usr/bin:/bin", "DOKKU_LIB_ROOT": str(reachable_lib_root), **DOKKU_USER},
        cwd="/",
        user=uid,
        group=gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert (started.returncode, started.stdout) == (0, "False\n"), started.stderr
    assert started.stderr == f"{NOT_ANSWERING}{belongs_to_root(folder)}\n"


def test_status_says_whose_the_folder_is_and_what_to_run(dokku: DokkuHost):
    folder = left_by(dokku.lib_root, 0)

    status = dokku.command("watch", "--status", env=DOKKU_USER)

    socket_path = folder / warm.SOCKET_NAME
    line = f"       Triggers run cold: no watcher answers on {socket_path}: {belongs_to_root(folder)}\n"
    assert (status.returncode, status.stdout, status.stderr) == (1, line, "")


def test_install_gives_a_folder_left_roots_back_to_the_dokku_user(dokku: DokkuHost):
    folder = left_by(dokku.lib_root, 0)

    installed = dokku.run(dokku.plugin_dir / "install", env=DOKKU_USER)

    assert (installed.returncode, installed.stderr) == (0, "")
    status = folder.stat()
    assert ((status.st_uid, status.st_gid), stat.S_IMODE(status.st_mode)) == (dokku_ids(), 0o700)


def test_install_says_when_the_folder_is_another_users_and_goes_on(dokku: DokkuHost):
    folder = left_by(dokku.lib_root, STRANGER)

    installed = dokku.run(dokku.plugin_dir / "install", env=DOKKU_USER)

    warning = f" !     The watcher cannot answer the engine triggers: {belongs_to_a_stranger(folder)}\n"
    assert (installed.returncode, installed.stderr) == (0, warning)
    assert folder.stat().st_uid == STRANGER


def test_install_makes_no_folder_before_a_watcher_does(dokku: DokkuHost):
    installed = dokku.run(dokku.plugin_dir / "install", env=DOKKU_USER)

    assert (installed.returncode, installed.stderr) == (0, "")
    assert not watch_folder(dokku.lib_root).exists()
