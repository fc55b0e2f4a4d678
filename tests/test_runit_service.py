"""The watch service under runit (docs/reference.md: The watch service), as on Dokku's own Docker
image (`DOKKU_INIT_SYSTEM=sv`, no systemd): the service folder install makes, and Debian's runit
running it (`runsv` on that folder, as runsvdir would start it), restarted by update, left down
when an operator stopped it, removed by uninstall.

Without runit the tests that run it skip, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from network_plugin import runit_service, service
from tests.host import PLUGN, DokkuHost
from tests.polling import WAIT_SECONDS, terminate, wait_for

RUNSV = shutil.which("runsv")


def runit_host(tmp_path: Path) -> dict[str, str]:
    """Dokku's image: runit named by DOKKU_INIT_SYSTEM, no systemd; services and logs in temp folders."""
    services, logs = tmp_path / "runsvdir", tmp_path / "log-services"
    services.mkdir()
    return {
        runit_service.INIT_SYSTEM_VARIABLE: runit_service.RUNIT,
        runit_service.SERVICES_DIR_VARIABLE: str(services),
        runit_service.LOG_DIR_VARIABLE: str(logs),
        service.RUN_DIR_VARIABLE: str(tmp_path / "no-systemd-here"),
        # The tests run as root: the watcher runs as root too (the image's is `dokku`).
        "DOKKU_SYSTEM_USER": "root",
        "DOKKU_SYSTEM_GROUP": "root",
    }


def plugn(dokku: DokkuHost, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return dokku.run(PLUGN, "trigger", *args, env=env)


def folder_of(env: dict[str, str]) -> Path:
    return Path(env[runit_service.SERVICES_DIR_VARIABLE]) / runit_service.SERVICE_NAME


def test_install_puts_a_runit_service_in_place_once_whole(dokku: DokkuHost, tmp_path: Path):
    env = runit_host(tmp_path)

    result = plugn(dokku, env, "install")

    folder = folder_of(env)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"-----> Installed the {runit_service.SERVICE_NAME} runit service (network:watch) in {folder}\n"
    )
    run = folder / "run"
    assert stat.S_IMODE(run.stat().st_mode) == 0o755
    lines = run.read_text().splitlines()
    watch = dokku.plugin_dir.resolve() / "subcommands" / "watch"
    log = Path(env[runit_service.LOG_DIR_VARIABLE]) / runit_service.SERVICE_NAME
    assert lines[0] == "#!/bin/sh"
    assert f"exec >>'{log}' 2>&1" in lines
    assert f"export DOKKU_ROOT='{dokku.dokku_root}'" in lines
    assert lines[-1].startswith("exec chpst -u 'root:root") and lines[-1].endswith(
        f" '{watch}' network:watch"
    )
    # Nothing half-made beside it (runsvdir would skip a dot folder anyway).
    assert sorted(path.name for path in folder.parent.iterdir()) == [runit_service.SERVICE_NAME]
    assert sorted(path.name for path in folder.iterdir()) == ["run"]


def test_without_dokku_naming_runit_no_runit_service_is_made(dokku: DokkuHost, tmp_path: Path):
    env = runit_host(tmp_path) | {runit_service.INIT_SYSTEM_VARIABLE: ""}

    result = plugn(dokku, env, "install")

    # Installed before (the fixture's install said how to run it by hand): nothing to say.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not folder_of(env).exists()


def test_an_install_killed_half_way_leaves_what_the_next_one_replaces(dokku: DokkuHost, tmp_path: Path):
    env = runit_host(tmp_path)
    half_made = folder_of(env).parent / f".{runit_service.SERVICE_NAME}.tmp"
    half_made.mkdir()
    (half_made / "run").write_text("#!/bin/sh\n# cut")

    result = plugn(dokku, env, "install")

    assert (result.returncode, result.stderr) == (0, "")
    assert sorted(path.name for path in folder_of(env).parent.iterdir()) == [runit_service.SERVICE_NAME]
    assert (folder_of(env) / "run").read_text().endswith(" network:watch\n")


def test_a_value_with_quotes_is_one_word_for_the_shell(dokku: DokkuHost, tmp_path: Path):
    refresh = "/usr/local/bin/reload proxy's 'fast' $HOME `id`"
    env = runit_host(tmp_path) | {"DOKKU_NETWORK_PROXY_REFRESH": refresh}
    assert plugn(dokku, env, "install").returncode == 0
    script = (folder_of(env) / "run").read_text()
    exports = "\n".join(line for line in script.splitlines() if line.startswith("export "))

    shown = subprocess.run(
        ["sh", "-c", f'{exports}\nprintf %s "$DOKKU_NETWORK_PROXY_REFRESH"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert shown.stdout == refresh


@pytest.fixture
def runsv(dokku: DokkuHost, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """The plugin installed as runit's service, and Debian's runsv running that folder."""
    if RUNSV is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs runit's runsv: `apt-get install runit`")
        pytest.skip("runit is not installed (`apt-get install runit`)")
    env = runit_host(tmp_path)
    assert plugn(dokku, env, "install").returncode == 0
    folder = folder_of(env)
    process = subprocess.Popen([RUNSV, str(folder)], env=dokku.env | env, stdin=subprocess.DEVNULL)
    try:
        yield env, folder
    finally:
        subprocess.run(["sv", "force-stop", str(folder)], capture_output=True, check=False)
        terminate(process, WAIT_SECONDS)


def sv_status(folder: Path) -> str:
    return subprocess.run(["sv", "status", str(folder)], capture_output=True, text=True, check=False).stdout


def watcher_pid(folder: Path) -> int | None:
    """The pid runsv runs the watcher as, while it runs."""
    status = sv_status(folder)
    return int(status.split("(pid ")[1].split(")")[0]) if status.startswith("run:") else None


def test_runit_runs_the_watcher_update_restarts_it_and_uninstall_removes_it(dokku: DokkuHost, runsv):
    env, folder = runsv
    log = Path(env[runit_service.LOG_DIR_VARIABLE]) / runit_service.SERVICE_NAME
    first = wait_for(lambda: watcher_pid(folder), "runsv running the watcher")
    wait_for(lambda: log.exists() and "Watching the Docker engine" in log.read_text(), "the watcher's log")
    assert dokku.command("watch", "--status").returncode == 0  # it answers the triggers

    update = plugn(dokku, env, "update")

    assert (update.returncode, update.stdout, update.stderr) == (0, "", "")
    second = wait_for(
        lambda: watcher_pid(folder) not in (None, first) and watcher_pid(folder), "a new watcher"
    )
    assert second != first

    uninstall = plugn(dokku, env, "uninstall", "network")

    assert (uninstall.returncode, uninstall.stderr) == (0, "")
    assert f"-----> Removed the {runit_service.SERVICE_NAME} runit service\n" in uninstall.stdout
    assert not folder.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def test_an_operator_s_sv_down_sticks_through_a_later_install(dokku: DokkuHost, runsv):
    env, folder = runsv
    wait_for(lambda: watcher_pid(folder), "runsv running the watcher")
    assert subprocess.run(["sv", "down", str(folder)], capture_output=True, check=False).returncode == 0
    wait_for(lambda: sv_status(folder).startswith("down:"), "the watcher down")

    again = plugn(dokku, env, "install")
    update = plugn(dokku, env, "update")

    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert (update.returncode, update.stdout, update.stderr) == (0, "", "")
    assert sv_status(folder).startswith("down:")
