"""`plugin:install` the Dokku way, a second install, and entry points that ignore the caller's environment
(docs/reference.md: Install and update; README)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from network_plugin.packaging import generated_links
from tests.host import NO_SERVICE, REPO_ROOT, DokkuHost, made_by_install


def install(dokku: DokkuHost, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return dokku.run(dokku.plugin_dir / "install", env=env)


def tree(folder: Path) -> dict[str, tuple[float, str | None]]:
    """Every path below `folder` with its mtime (and link target): what an install may change."""
    state = {}
    for path in folder.rglob("*"):
        if "__pycache__" in path.parts:
            continue
        info = path.lstat()
        target = os.readlink(path) if path.is_symlink() else None
        state[str(path.relative_to(folder))] = (info.st_mtime, target)
    return state


def fake_plugn(folder: Path, proxy_disabled_app: str) -> Path:
    """A `plugn` whose proxy-is-enabled says false for one app, as Dokku's proxy plugin would;
    it logs each call to `plugn-calls` beside it."""
    folder.mkdir()
    program = folder / "plugn"
    program.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >>{folder / "plugn-calls"}\n'
        f'[ "$1 $2" = "trigger proxy-is-enabled" ] || exit 1\n'
        f'if [ "$3" = "{proxy_disabled_app}" ]; then echo false; else echo true; fi\n'
    )
    program.chmod(0o755)
    return folder


def plugn_calls(bin_dir: Path) -> list[str]:
    log = bin_dir / "plugn-calls"
    return log.read_text().splitlines() if log.exists() else []


def test_install_leaves_proxied_apps_unset_so_global_values_reach_them(dokku: DokkuHost):
    for app in ("app-a", "app-b"):
        dokku.create_app(app)
    dokku.write_property("app-b", "bind-all-interfaces", "true")

    result = install(dokku)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not dokku.property_file("app-a", "bind-all-interfaces").exists()
    assert dokku.property_file("app-b", "bind-all-interfaces").read_text() == "true"
    assert (dokku.properties_root / "--global").is_dir()


def test_install_keeps_apps_without_proxy_on_all_interfaces(dokku: DokkuHost, tmp_path: Path):
    for app in ("proxied-app", "direct-app"):
        dokku.create_app(app)
    bin_dir = fake_plugn(tmp_path / "bin", proxy_disabled_app="direct-app")

    result = install(dokku, env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "       Setting network property 'bind-all-interfaces' to true for direct-app\n"
    assert dokku.property_file("direct-app", "bind-all-interfaces").read_text() == "true"
    assert not dokku.property_file("proxied-app", "bind-all-interfaces").exists()


def test_a_repeat_install_asks_plugn_nothing_per_app(dokku: DokkuHost, tmp_path: Path):
    apps = [f"app-{index:03d}" for index in range(300)]
    for app in apps:
        dokku.create_app(app)
    bin_dir = fake_plugn(tmp_path / "bin", proxy_disabled_app="app-007")
    path = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    first = install(dokku, env=path)
    assert (first.returncode, first.stderr) == (0, "")
    assert plugn_calls(bin_dir) == [f"trigger proxy-is-enabled {app}" for app in apps]  # the backfill, once
    (bin_dir / "plugn-calls").unlink()

    for trigger in ("install", "update"):
        again = dokku.run(dokku.plugin_dir / trigger, env=path)
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert plugn_calls(bin_dir) == []
    # An app made later whose proxy is disabled is not the backfill's: it ran for the host.
    dokku.create_app("later-app")
    assert install(dokku, env=path).returncode == 0
    assert plugn_calls(bin_dir) == []


def test_second_install_changes_nothing(dokku: DokkuHost, app: str):
    assert install(dokku).returncode == 0
    plugin_before, host_before = tree(dokku.plugin_dir.resolve()), dokku.snapshot()

    again = install(dokku)

    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert tree(dokku.plugin_dir.resolve()) == plugin_before  # no venv rebuilt, no link remade
    assert dokku.snapshot() == host_before


def test_install_repairs_a_missing_entry_point(dokku: DokkuHost):
    entry = dokku.plugin_dir / "network-get-property"
    content = entry.read_text()
    entry.unlink()
    try:
        result = install(dokku)
        # New entry points, as at a first install: how to run network:watch without systemd.
        assert (result.returncode, result.stdout) == (0, NO_SERVICE)
    finally:
        if not entry.exists():
            entry.write_text(content)
            entry.chmod(0o755)
    assert made_by_install(dokku.plugin_dir, "network-get-property")


def test_every_generated_link_is_ignored_by_git():
    names = sorted(generated_links())
    check = ["git", "check-ignore", "--no-index", *names]
    ignored = subprocess.run(check, cwd=REPO_ROOT, capture_output=True, text=True, check=False).stdout.split()
    assert ignored == names


@pytest.mark.parametrize(
    "hostile",
    [
        {"PATH": "/nonexistent"},
        {"VIRTUAL_ENV": "/nonexistent", "PYTHONPATH": "/nonexistent", "PYTHONHOME": "/nonexistent"},
    ],
    ids=["bare-path", "foreign-virtualenv"],
)
def test_entry_points_ignore_the_callers_environment(dokku: DokkuHost, app: str, hostile: dict[str, str]):
    dokku.write_property(app, "tld", "svc.local")
    program = dokku.plugin_dir / "network-get-property"
    result = subprocess.run(
        [str(program), app, "tld"],
        env=dokku.env | hostile,
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "svc.local\n", "")
    command = dokku.command("report", app, "--network-tld", env=hostile)
    assert (command.returncode, command.stdout, command.stderr) == (0, "svc.local\n", "")


def test_an_install_that_makes_entry_points_names_each_stored_value_it_will_refuse(
    dokku: DokkuHost, app: str
):
    """A first install (or a new version's): a value Dokku's plugin took that this one refuses
    stops the app's next deploy; the install says which, once, and goes on."""
    dokku.write_property(app, "bind-all-interfaces", "yes")
    entry = dokku.plugin_dir / "network-get-property"
    entry.unlink()  # as before a first install: the entry points are made

    first = install(dokku)
    again = install(dokku)

    assert (first.returncode, first.stdout) == (0, NO_SERVICE)
    assert first.stderr == (
        f" !     Invalid bind-all-interfaces stored for {app}: yes: network:set refuses it, and the triggers"
        f" that read it stop on it; set it again (dokku network:set {app} bind-all-interfaces <value>) or"
        " unset it\n"
    )
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")  # a repeat install says nothing
