"""The watch service (docs/reference.md: the watch service, Triggers): the unit file systemd
would load, and what install, update and uninstall ask of systemctl (a stand-in on PATH
records it; systemd's folders are temp ones)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from network_plugin import service
from tests.host import PLUGN, DokkuHost

UNIT = service.UNIT_NAME


def systemd_host(dokku: DokkuHost, tmp_path: Path, systemctl_exit: int = 0) -> tuple[dict[str, str], Path]:
    """An environment where systemd runs (temp folders) and `systemctl` records its arguments."""
    run_dir, unit_dir, bin_dir = tmp_path / "run-systemd", tmp_path / "units", tmp_path / "bin"
    for folder in (run_dir, unit_dir, bin_dir):
        folder.mkdir()
    calls = tmp_path / "systemctl-calls"
    systemctl = bin_dir / "systemctl"
    fail = 'echo "Failed: $*" >&2\n' if systemctl_exit else ""
    systemctl.write_text(f'#!/bin/sh\necho "$*" >>{calls}\n{fail}exit {systemctl_exit}\n')
    systemctl.chmod(0o755)
    env = {
        service.RUN_DIR_VARIABLE: str(run_dir),
        service.UNIT_DIR_VARIABLE: str(unit_dir),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    return env, calls


def calls_of(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def plugn(dokku: DokkuHost, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return dokku.run(PLUGN, "trigger", *args, env=env)


def test_install_puts_the_unit_in_place_enables_and_starts_it(dokku: DokkuHost, tmp_path: Path):
    env, calls = systemd_host(dokku, tmp_path)

    result = plugn(dokku, env, "install")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"-----> Installed the {UNIT} service (network:watch)\n"
    assert calls_of(calls) == ["daemon-reload", f"enable --now --quiet {UNIT}"]
    unit = Path(env[service.UNIT_DIR_VARIABLE]) / UNIT
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    text = unit.read_text()
    watch = dokku.plugin_dir.resolve() / "subcommands" / "watch"
    assert f'ExecStart="{watch}" network:watch' in text.splitlines()
    assert f'Environment="DOKKU_ROOT={dokku.dokku_root}"' in text.splitlines()
    assert "User=dokku" in text.splitlines()
    assert "Restart=on-failure" in text.splitlines()


def test_a_second_install_leaves_the_service_alone_and_update_restarts_a_running_one(
    dokku: DokkuHost, tmp_path: Path
):
    env, calls = systemd_host(dokku, tmp_path)
    assert plugn(dokku, env, "install").returncode == 0
    calls.unlink()

    again = plugn(dokku, env, "install")
    update = plugn(dokku, env, "update")

    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert (update.returncode, update.stdout, update.stderr) == (0, "", "")
    # Any plugin's install runs ours: an operator's `systemctl disable --now` must stick.
    assert calls_of(calls) == [f"try-restart {UNIT}"]


def test_a_switched_environment_restarts_a_running_service(dokku: DokkuHost, tmp_path: Path):
    """The watcher runs from the environment it started with, which the next switch removes."""
    env, calls = systemd_host(dokku, tmp_path)
    assert plugn(dokku, env, "install").returncode == 0
    calls.unlink()

    switched = plugn(dokku, env | {"DOKKU_NETWORK_ENVIRONMENT_SWITCHED": "1"}, "install")

    assert (switched.returncode, switched.stdout, switched.stderr) == (0, "", "")
    assert calls_of(calls) == [f"try-restart {UNIT}"]


def test_a_changed_unit_is_reloaded_and_a_running_service_restarted(dokku: DokkuHost, tmp_path: Path):
    env, calls = systemd_host(dokku, tmp_path)
    assert plugn(dokku, env, "install").returncode == 0
    calls.unlink()

    moved = plugn(dokku, env | {"DOKKU_NETWORK_PROXY_REFRESH": "/usr/local/bin/reload-proxy"}, "install")

    assert (moved.returncode, moved.stderr) == (0, "")
    assert moved.stdout == f"-----> Installed the {UNIT} service (network:watch)\n"
    assert calls_of(calls) == ["daemon-reload", f"try-restart {UNIT}"]
    unit = Path(env[service.UNIT_DIR_VARIABLE]) / UNIT
    assert 'Environment="DOKKU_NETWORK_PROXY_REFRESH=/usr/local/bin/reload-proxy"' in unit.read_text()


def test_the_unit_carries_every_engine_variable_the_triggers_honour(dokku: DokkuHost, tmp_path: Path):
    env, _ = systemd_host(dokku, tmp_path)
    engine = {
        "DOCKER_HOST": "tcp://127.0.0.1:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/etc/dokku-tls",
    }

    assert plugn(dokku, env | engine, "install").returncode == 0

    lines = (Path(env[service.UNIT_DIR_VARIABLE]) / UNIT).read_text().splitlines()
    assert [line for line in lines if line.startswith('Environment="DOCKER_')] == [
        'Environment="DOCKER_HOST=tcp://127.0.0.1:2376"',
        'Environment="DOCKER_TLS_VERIFY=1"',
        'Environment="DOCKER_CERT_PATH=/etc/dokku-tls"',
    ]


def test_uninstall_stops_disables_and_removes_the_unit_only_for_this_plugin(dokku: DokkuHost, tmp_path: Path):
    env, calls = systemd_host(dokku, tmp_path)
    assert plugn(dokku, env, "install").returncode == 0
    unit = Path(env[service.UNIT_DIR_VARIABLE]) / UNIT
    calls.unlink()

    other = plugn(dokku, env, "uninstall", "letsencrypt")
    assert (other.returncode, other.stdout, calls_of(calls), unit.exists()) == (0, "", [], True)

    ours = plugn(dokku, env, "uninstall", "network")

    assert (ours.returncode, ours.stderr) == (0, "")
    assert ours.stdout.splitlines()[1:] == [f"-----> Removed the {UNIT} service"]
    assert calls_of(calls) == [f"disable --now --quiet {UNIT}", "daemon-reload"]
    assert not unit.exists()


def test_a_failing_systemctl_is_one_line_each_and_install_goes_on(dokku: DokkuHost, tmp_path: Path):
    env, _ = systemd_host(dokku, tmp_path, systemctl_exit=1)

    result = plugn(dokku, env, "install")

    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        " !     systemctl daemon-reload failed: Failed: daemon-reload",
        f" !     systemctl enable --now --quiet {UNIT} failed: Failed: enable --now --quiet {UNIT}",
    ]


def test_without_root_install_says_how_to_run_the_watcher(host_paths, tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "run").mkdir()
    monkeypatch.setenv(service.RUN_DIR_VARIABLE, str(tmp_path / "run"))
    monkeypatch.setenv(service.UNIT_DIR_VARIABLE, str(tmp_path / "units"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    service.install("/plugins/available/network", restart=False)

    assert capsys.readouterr().out == f"-----> {service.BY_HAND}\n"
    assert not (tmp_path / "units").exists()


def test_systemd_accepts_the_unit(plugin_dir: Path, tmp_path: Path, monkeypatch):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = "systemd-analyze is missing (Debian's systemd package)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the unit checked: {reason}")
        pytest.skip(reason)
    monkeypatch.setenv("DOKKU_ROOT", "/home/dokku 100%")  # quoted and escaped as systemd wants
    unit = tmp_path / UNIT
    unit.write_text(service.render_unit(str(plugin_dir.resolve())))

    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)

    assert (result.returncode, result.stderr) == (0, ""), unit.read_text()
    assert 'Environment="DOKKU_ROOT=/home/dokku 100%%"' in unit.read_text().splitlines()
