"""The plugin's environment is never broken by its own install (docs/reference.md: Install and update).

Each test gets its own copy of the plugin, installed the way the session's is (its environment is a
copy of the session's), and changes the applicable lock to make `update` build a new one: from the
session's wheelhouse, or from an index that does not answer.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from network_plugin import environment, service
from network_plugin.error_handler import describe
from network_plugin.package_locks import lock_for
from tests.host import (
    REPO_ROOT,
    DokkuHost,
    clean_env,
    copy_environment,
    copy_repository,
    without_pip_settings,
)
from tests.test_service import calls_of, systemd_host

APP = "env-app"
pytestmark = pytest.mark.usefixtures("wheelhouse")


def plugin_host(tmp_path: Path, plugin_dir: Path) -> DokkuHost:
    """A host with a copy of this plugin installed (the session's environment, copied) and one app."""
    plugins = tmp_path / "plugins"
    plugin = plugins / "available" / "network"
    copy_repository(plugin)
    copy_environment(plugin_dir, plugin)
    (plugins / "enabled").mkdir()
    (plugins / "enabled" / "network").symlink_to(plugin)
    (tmp_path / "home" / APP).mkdir(parents=True)
    env = clean_env() | {
        "DOKKU_ROOT": str(tmp_path / "home"),
        "DOKKU_LIB_ROOT": str(tmp_path / "lib"),
        "PLUGIN_PATH": str(plugins),
        "DOKKU_NETWORK_PROXY_REFRESH": "true",
    }
    dokku = DokkuHost(plugin_dir=plugin, dokku_root=tmp_path / "home", lib_root=tmp_path / "lib", env=env)
    installed = dokku.run(plugin / "install")
    assert installed.returncode == 0, installed.stderr
    return dokku


def change_lock(plugin: Path, mark: str) -> None:
    """A line pip ignores: the lock's content, hence the environment it asks for, is new."""
    with open(lock_for(str(plugin), sys.version_info[:2]), "a", encoding="utf-8") as lock:
        lock.write(f"# {mark}\n")


def live(plugin: Path) -> str:
    return os.readlink(plugin / ".venv")


def environments(plugin: Path) -> list[str]:
    return sorted(entry.name for entry in (plugin / ".venvs").iterdir())


def trigger_failures(dokku: DokkuHost, ip: str = "10.0.0.9") -> list[str]:
    """A writer, a command, a reader and an engine trigger, as a deploy runs them: what failed."""
    runs = {
        "network-write-ipaddr": dokku.trigger("network-write-ipaddr", APP, "web", "1", ip),
        "network:set": dokku.command("set", APP, "tld", "svc.local"),
        "network-get-property": dokku.trigger("network-get-property", APP, "tld"),
        "network-build-config": dokku.trigger("network-build-config", APP),
    }
    expected_stdout = {
        "network:set": "=====> Setting tld to svc.local\n",
        "network-get-property": "svc.local\n",
    }
    return [
        f"{name}: exit {result.returncode}: {result.stderr.strip()}"
        for name, result in runs.items()
        if result.returncode != 0 or result.stderr or result.stdout != expected_stdout.get(name, "")
    ]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.usefixtures("docker_client")
def test_an_unreachable_index_after_a_lock_change_leaves_every_trigger_working(
    tmp_path: Path, plugin_dir: Path
):
    dokku = plugin_host(tmp_path, plugin_dir)
    plugin = dokku.plugin_dir
    before, envs_before = live(plugin), environments(plugin)
    change_lock(plugin, "a new pin")
    index = f"http://127.0.0.1:{closed_port()}/simple"
    unreachable = without_pip_settings(dokku.env) | {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": index,
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "5",
    }

    result = subprocess.run(
        [str(plugin / "update")], env=unreachable, capture_output=True, text=True, timeout=300, check=False
    )

    lock = os.path.relpath(lock_for(str(plugin), sys.version_info[:2]), plugin)
    assert result.returncode == 1
    assert result.stdout == f"-----> Building the network plugin's Python environment ({lock})\n"
    assert result.stderr.startswith(f" !     Unable to install the packages of {lock}: ")
    assert result.stderr.endswith("; the plugin's environment is unchanged\n")
    assert len(result.stderr.splitlines()) == 1
    assert (live(plugin), environments(plugin)) == (before, envs_before)
    assert trigger_failures(dokku) == []


def test_a_change_to_pyproject_outside_the_lock_builds_nothing(tmp_path: Path, plugin_dir: Path):
    dokku = plugin_host(tmp_path, plugin_dir)
    plugin = dokku.plugin_dir
    before, envs_before = live(plugin), environments(plugin)
    with open(plugin / "pyproject.toml", "a", encoding="utf-8") as pyproject:
        pyproject.write('\n[tool.codespell]\nskip = "locks"\n')  # a tool's settings

    result = dokku.run(plugin / "update")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert (live(plugin), environments(plugin)) == (before, envs_before)


def test_an_offline_install_from_a_downloaded_lock(tmp_path: Path, plugin_dir: Path, wheelhouse: Path):
    # docs/reference.md: `pip download` of the lock (the session's wheelhouse), then install with
    # PIP_NO_INDEX=1 and PIP_FIND_LINKS naming the folder (as every install of this session).
    dokku = plugin_host(tmp_path, plugin_dir)
    plugin = dokku.plugin_dir
    change_lock(plugin, "installed offline")
    offline = without_pip_settings(dokku.env) | {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
    }

    result = subprocess.run(
        [str(plugin / "install")], env=offline, capture_output=True, text=True, timeout=300, check=False
    )

    assert (result.returncode, result.stderr) == (0, "")
    name = live(plugin).rpartition("/")[2]
    assert (plugin / ".venvs" / name / environment.CHECKED).is_file()
    # The previous environment stays (a trigger may still run on it), the lock file, its record.
    assert len(environments(plugin)) == 4


@pytest.mark.usefixtures("docker_client")
def test_no_trigger_fails_while_update_rebuilds_and_switches_the_environment(
    tmp_path: Path, plugin_dir: Path
):
    # Two lock changes: the second switch also replaces the record of the previous environment.
    dokku = plugin_host(tmp_path, plugin_dir)
    plugin = dokku.plugin_dir
    failures: list[str] = []
    rounds = 0
    updating = threading.Event()
    updating.set()

    def deploys() -> None:
        nonlocal rounds
        while updating.is_set():
            failures.extend(trigger_failures(dokku, ip=f"10.0.0.{rounds % 250 + 1}"))
            rounds += 1

    loop = threading.Thread(target=deploys)
    loop.start()
    try:
        change_lock(plugin, "updated once")
        first = dokku.run(plugin / "update")
        after_first = live(plugin)
        change_lock(plugin, "updated twice")
        updated = dokku.run(plugin / "update")
    finally:
        updating.clear()
        loop.join()

    print(f"{rounds} rounds of writer, command, reader and engine trigger during two updates")
    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    assert (updated.returncode, updated.stderr) == (0, ""), updated.stderr
    assert failures == []
    assert after_first != live(plugin)
    assert rounds > 0


# What root's interpreters would import from the folder the operator stands in, were it on
# sys.path: install's steps (the interpreter check, compileall, the environment's venv, pip
# and import check), the plugin's own package, and what they import in turn.
HOSTILE_MODULES = (
    "venv", "ensurepip", "compileall", "py_compile", "filecmp", "struct", "shutil", "subprocess",
    "tempfile", "hashlib", "logging", "sysconfig", "pip", "docker", "typer", "filelock", "click",
)  # fmt: skip


def hostile_folder(folder: Path, markers: Path) -> Path:
    """A folder any local user could write (such as /tmp) holding stand-ins for modules and for
    the plugin's package, each of which leaves a marker when imported."""
    folder.mkdir()
    markers.mkdir()
    for name in HOSTILE_MODULES:
        (folder / f"{name}.py").write_text(f"open({str(markers / name)!r}, 'w').close()\n")
    (folder / "network_plugin").mkdir()
    (folder / "network_plugin" / "__init__.py").write_text(
        f"open({str(markers / 'network_plugin')!r}, 'w').close()\n"
    )
    return folder


def test_install_update_and_triggers_run_nothing_from_the_folder_they_are_started_in(
    tmp_path: Path, plugin_dir: Path
):
    # plugin:install runs `install` as root from wherever the operator stands (issue 26, item 1).
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    plugin = dokku.plugin_dir
    markers = tmp_path / "markers"
    cwd = hostile_folder(tmp_path / "standing-here", markers)
    change_lock(plugin, "a new environment: venv, pip and the checks run too")

    def run(program: Path, *args: str) -> tuple[int, str, str]:
        done = subprocess.run(
            [str(program), *args], env=dokku.env, cwd=cwd, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        return done.returncode, done.stdout, done.stderr

    lock = os.path.relpath(lock_for(str(plugin), sys.version_info[:2]), plugin)
    built = f"-----> Building the network plugin's Python environment ({lock})\n"
    # Where systemd cannot take the watch service (a Debian root of the platform runs), a line says so.
    status, output, errors = run(plugin / "install")
    assert (status, output.splitlines(keepends=True)[:1], errors) == (0, [built], "")
    assert run(plugin / "update")[::2] == (0, "")
    assert run(plugin / "subcommands" / "set", "network:set", APP, "tld", "svc.local")[0] == 0
    assert run(plugin / "network-get-property", APP, "tld") == (0, "svc.local\n", "")
    assert run(plugin / "commands", "network:help")[0] == 0
    assert sorted(marker.name for marker in markers.iterdir()) == []


# Kill points drawn per run (a failure says the seed; NETWORK_TEST_SEED=<seed> replays it); a kill
# between any two steps of the switch is replayed exactly, every run, further down.
KILL_POINTS = 2


def kill_seed() -> int:
    return int(os.environ.get("NETWORK_TEST_SEED") or random.SystemRandom().randrange(10**6))


def test_sigkill_at_sampled_points_leaves_the_live_environment_and_the_next_install_cleans_up(
    tmp_path: Path, plugin_dir: Path
):
    dokku = plugin_host(tmp_path, plugin_dir)
    plugin = dokku.plugin_dir
    seed = kill_seed()
    points = sorted(random.Random(seed).random() for _ in range(KILL_POINTS))

    def update() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(plugin / "update")],
            env=dokku.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # the kill takes pip and the checks with it
        )

    change_lock(plugin, "measured")
    started = time.monotonic()
    assert update().wait(timeout=300) == 0
    full_run = time.monotonic() - started

    for point in points:
        change_lock(plugin, f"killed at {point:.3f}")
        running = update()
        time.sleep(full_run * point)
        os.killpg(running.pid, signal.SIGKILL)
        running.wait(timeout=60)
        replay = f"killed at {point:.3f} of {full_run:.1f} s (NETWORK_TEST_SEED={seed} replays it)"
        name = live(plugin).rpartition("/")[2]
        assert (plugin / ".venvs" / name / environment.CHECKED).is_file(), replay
        assert dokku.trigger("network-get-property", APP, "tld").returncode == 0, replay

    result = dokku.run(plugin / "update")

    assert (result.returncode, result.stderr) == (0, "")
    kept = {live(plugin).rpartition("/")[2], os.readlink(plugin / ".venvs" / environment.PREVIOUS)}
    assert set(environments(plugin)) == kept | {environment.LOCK_FILE, environment.PREVIOUS}
    assert not os.path.lexists(plugin / environment.NEXT_LINK)


@pytest.mark.parametrize("options", [["-E", "-s"], ["-E", "-s", "-S"]], ids=["commands", "triggers"])
def test_a_running_trigger_keeps_importing_from_the_environment_it_started_in(
    plugin_dir: Path, tmp_path: Path, options: list[str]
):
    # `.venv` is a link an update may switch while a trigger runs: its lazy imports (docker,
    # typer) must come from the environment it started in, not from the next one. Triggers
    # start with -S and add the environment's packages when they first need them.
    started_in = (plugin_dir / ".venv").resolve()
    program = (
        "import os, sys, network_plugin\n"
        "os.rename(sys.argv[1], '.venv')\n"  # the switch, after the start
        "network_plugin.use_site_packages()\n"
        "print(*[p for p in sys.path if p.endswith('site-packages')])\n"
    )
    other = tmp_path / "next-venv"
    (plugin_dir / ".venv.test-next").symlink_to(other)
    try:
        result = subprocess.run(
            [str(plugin_dir / ".venv" / "bin" / "python3"), *options, "-c", program, ".venv.test-next"],
            cwd=plugin_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        (plugin_dir / ".venv").unlink()
        (plugin_dir / ".venv").symlink_to(os.path.relpath(started_in, plugin_dir))
    assert result.returncode == 0, result.stderr
    (site_packages,) = result.stdout.split()
    assert Path(os.path.realpath(site_packages)).is_relative_to(started_in)
    assert "/.venv/" not in site_packages  # pinned, not through the link


def interpreters() -> list[str]:
    """This interpreter, and the distribution's (Debian patches its `site`), when there is one."""
    found = [os.path.realpath(sys.executable)]
    system = "/usr/bin/python3"
    if os.path.exists(system) and os.path.realpath(system) not in found:
        found.append(os.path.realpath(system))
    return found


@pytest.mark.parametrize("interpreter", interpreters())
def test_a_trigger_started_with_minus_s_finds_its_environments_packages(tmp_path: Path, interpreter: str):
    """An environment laid out as `venv` makes it, `.venv` linking to it: after
    `use_site_packages()` its packages import, on any distribution's Python."""
    version = subprocess.run(
        [interpreter, "-c", "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    environment = tmp_path / ".venvs" / "abc"
    (environment / "bin").mkdir(parents=True)
    (environment / "bin" / "python3").symlink_to(interpreter)
    (environment / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(interpreter)}\ninclude-system-site-packages = false\n"
    )
    package = environment / "lib" / version / "site-packages" / "marker_package"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("WHERE = __file__\n")
    (tmp_path / ".venv").symlink_to(".venvs/abc")
    program = (
        "import sys\n"
        f"sys.path[0] = {str(REPO_ROOT)!r}\n"
        "import network_plugin\n"
        "network_plugin.use_site_packages()\n"
        "import marker_package\n"
        "print(marker_package.WHERE)\n"
    )

    result = subprocess.run(
        [str(tmp_path / ".venv" / "bin" / "python3"), "-E", "-s", "-S", "-c", program],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == str(package / "__init__.py")


class Killed(BaseException):
    """A kill between two steps of the switch: nothing after it runs."""


@pytest.mark.parametrize("steps", range(4))  # the switch takes 4 steps: a kill before each
def test_a_kill_between_two_steps_of_the_switch_leaves_a_complete_environment_live(
    tmp_path: Path, plugin_dir: Path, mocker, steps: int
):
    # The sampled kills above land mostly in pip: here each step of the switch is the last one that runs.
    dokku = plugin_host(tmp_path, plugin_dir)
    plugin = dokku.plugin_dir
    change_lock(plugin, "switched")
    wanted = environment.environment_id(lock_for(str(plugin), sys.version_info[:2]))
    (plugin / ".venvs").mkdir(exist_ok=True)
    # A complete new environment, as build leaves it: the session's, linked.
    (plugin / ".venvs" / wanted).symlink_to((plugin_dir / ".venv").resolve())
    done = 0

    def step(real):
        def run(*args: object) -> object:
            nonlocal done
            if done == steps:
                raise Killed
            done += 1
            return real(*args)

        return run

    for name in ("symlink", "replace"):
        mocker.patch(f"os.{name}", side_effect=step(getattr(os, name)))
    try:
        environment.switch(str(plugin), wanted)
    except Killed:
        pass
    mocker.stopall()

    assert (plugin / ".venv" / environment.CHECKED).is_file()
    assert dokku.trigger("network-get-property", APP, "tld").returncode == 0
    assert environment.main(["environment", str(plugin)]) == 0  # the next install: switched, tidy
    assert live(plugin) == f".venvs/{wanted}"
    assert (plugin / ".venvs" / wanted).is_symlink()  # switched to, not built again
    assert not os.path.lexists(plugin / environment.NEXT_LINK)
    assert dokku.trigger("network-get-property", APP, "tld").returncode == 0


def test_the_locks_pin_every_package_with_hashes_and_satisfy_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from packaging.requirements import Requirement

    wanted = [
        Requirement(line)
        for line in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    for lock in sorted((REPO_ROOT / "locks").glob("python3.*.txt")):
        entries = lock.read_text().split("\n")
        requirements = [line.rstrip(" \\") for line in entries if line[:1].isalnum()]
        pins = dict(line.split("==") for line in requirements)
        assert all(" " not in version for version in pins.values()), lock.name  # no markers: one range
        hashes = sum(1 for line in entries if line.strip().startswith("--hash=sha256:"))
        assert hashes >= len(pins), lock.name
        for requirement in wanted:
            assert requirement.specifier.contains(pins[requirement.name]), f"{lock.name}: {requirement}"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((3, 9), "python3.9.txt"),
        ((3, 10), "python3.10.txt"),
        ((3, 13), "python3.11.txt"),
        ((3, 14), "python3.11.txt"),
    ],
)
def test_an_interpreter_takes_the_lock_of_the_highest_minor_not_above_its_own(version, expected):
    assert os.path.basename(lock_for(str(REPO_ROOT), version)) == expected
    with pytest.raises(LookupError, match="No lock"):
        lock_for(str(REPO_ROOT), (3, 8))


def test_an_install_that_switches_the_environment_restarts_a_running_watch_service(
    tmp_path: Path, plugin_dir: Path, wheelhouse: Path
):
    """The watcher keeps the environment it started with, which the switch after next removes."""
    dokku = plugin_host(tmp_path / "host", plugin_dir)
    systemd, calls = systemd_host(dokku, tmp_path)
    offline = (
        without_pip_settings(dokku.env)
        | systemd
        | {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheelhouse),
        }
    )

    def install() -> subprocess.CompletedProcess[str]:
        program = [str(dokku.plugin_dir / "install")]
        return subprocess.run(program, env=offline, capture_output=True, text=True, timeout=300, check=False)

    assert install().returncode == 0  # the unit is new: enable --now
    calls.unlink()
    assert install().returncode == 0
    assert calls_of(calls) == []  # nothing switched, nothing restarted

    change_lock(dokku.plugin_dir, "a new environment")
    switched = install()

    assert (switched.returncode, switched.stderr) == (0, "")
    assert calls_of(calls) == [f"try-restart {service.UNIT_NAME}"]


NO_SPACE = OSError(28, "No space left on device", "/plugin/.venv.next")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (KeyboardInterrupt(), (130, "")),  # Ctrl-C during a build
        (RuntimeError("no more threads"), (1, " !     Unexpected error: RuntimeError: no more threads\n")),
        (NO_SPACE, (1, f" !     Unable to switch the plugin's environment: {describe(NO_SPACE)}\n")),
    ],
    ids=["interrupted", "unexpected", "os-error"],
)
def test_install_s_environment_step_ends_through_the_plugin_s_one_error_path(
    tmp_path: Path,
    mocker,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    expected: tuple[int, str],
):
    # Whatever ensure raises: an exit code and at most one line, never a traceback.
    mocker.patch.object(environment, "ensure", side_effect=raised)

    try:
        code = environment.main(["-c", str(tmp_path)])
    except BaseException as escaped:  # noqa: BLE001 - a KeyboardInterrupt must not end the test run
        pytest.fail(f"environment.main let {escaped!r} through")

    assert (code, capsys.readouterr().err) == expected
