"""A Dokku-like host in a folder: the plugin installed the way `plugin:install` does it.

Shared by the test fixtures, the benchmarks and the demo: clone the work tree
into `$PLUGIN_PATH/available/network`, link `enabled/network`, run `install`,
then call `$PLUGIN/<trigger>`, `$PLUGIN/subcommands/<cmd>` and `$PLUGIN/commands`
as plugn and Dokku do.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from network_plugin.package_locks import lock_for
from network_plugin.packaging import environment_interpreter, trigger_file
from network_plugin.service import BY_HAND

REPO_ROOT = Path(__file__).resolve().parent.parent
# `plugn trigger` for tests that replay Dokku's callers (see the script itself).
PLUGN = REPO_ROOT / "tests" / "plugn"
# Variables of the developer's shell that must not leak into the plugin under test.
LEAKY_VARIABLES = ("DOKKU_QUIET_OUTPUT", "DOKKU_APPS_FORCE_DELETE", "PYTHONPATH", "PYTHONHOME")


# In a copy of the work without git (tools/platform-test's checkout in a Debian root): the
# list of the files the copy was made of, one per line.
MANIFEST = ".repository-files"


def repository_files() -> list[str]:
    """Files git tracks plus new ones it does not ignore: what a clone of this work would hold."""
    if not (REPO_ROOT / ".git").exists() and (REPO_ROOT / MANIFEST).is_file():
        listed = (REPO_ROOT / MANIFEST).read_text().splitlines()
    else:
        listed = (
            subprocess.run(
                ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                cwd=REPO_ROOT,
                check=True,
                capture_output=True,
            )
            .stdout.decode()
            .split("\0")
        )
    return [name for name in listed if name and (REPO_ROOT / name).exists()]


def copy_repository(target: Path) -> None:
    for name in repository_files():
        source = REPO_ROOT / name
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)


# The host's systemd is never the tests' business: an install under test must not put a
# service in place (on a CI runner that boots with systemd, as root, it would).
NO_SYSTEMD = {
    "DOKKU_NETWORK_SYSTEMD_RUN_DIR": "/nonexistent/dokku-network-test/run-systemd",
    "DOKKU_NETWORK_SYSTEMD_UNIT_DIR": "/nonexistent/dokku-network-test/units",
}
# ...so install says how to run network:watch by hand.
NO_SERVICE = f"-----> {BY_HAND}\n"


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in LEAKY_VARIABLES} | NO_SYSTEMD


def download_wheelhouse(folder: Path) -> Path:
    """`pip download` of the lock this interpreter installs from (docs/reference.md, offline
    install): the tests' installs then need no index."""
    lock = lock_for(str(REPO_ROOT), sys.version_info[:2])
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    download = ["download", "--quiet", "--require-hashes", "--no-deps", "--requirement", lock]
    subprocess.run([*pip, *download, "--dest", str(folder)], check=True, capture_output=True)
    return folder


def offline_pip(wheelhouse: Path) -> dict[str, str]:
    """pip's settings for an install from `wheelhouse` only: no index, no config file of the machine
    (whose find-links or index would answer in its place), and this interpreter for the plugin."""
    return {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "NETWORK_PLUGIN_PYTHON": os.path.realpath(sys.executable),
    }


def without_pip_settings(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if not key.startswith("PIP_")}


def copy_environment(source_plugin: Path, target_plugin: Path) -> str:
    """Give `target_plugin` a copy of the live environment of `source_plugin` (laid out as install
    leaves it), so that its install has nothing to build; return the environment's folder name."""
    name = os.readlink(source_plugin / ".venv").rpartition("/")[2]
    shutil.copytree(source_plugin / ".venvs" / name, target_plugin / ".venvs" / name, symlinks=True)
    (target_plugin / ".venv").symlink_to(f".venvs/{name}")
    return name


# An installed plugin whose environment the benchmarks' installs copy instead of building their
# own (the tests' smoke runs of the benchmarks name the session's: they measure the plugin, not pip).
ENVIRONMENT_FROM = "NETWORK_BENCH_ENVIRONMENT_FROM"


def install_plugin(plugin_path: Path, env: dict[str, str], environment_from: Path | None = None) -> Path:
    """Install this work tree as plugin `network` under `plugin_path`; return the enabled folder.
    With `environment_from` (an installed plugin), its environment is copied: nothing is built."""
    available = plugin_path / "available" / "network"
    if environment_from is not None:
        copy_environment(environment_from, available)
    copy_repository(available)
    (plugin_path / "enabled").mkdir(parents=True, exist_ok=True)
    enabled = plugin_path / "enabled" / "network"
    enabled.symlink_to(available)
    result = subprocess.run(
        [str(available / "install")],
        env=env | {"PLUGIN_PATH": str(plugin_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"install failed ({result.returncode}): {result.stderr}")
    return enabled


def made_by_install(plugin: Path, trigger: str) -> bool:
    """The trigger's entry point is the one install makes: its own file, which the plugin
    environment's interpreter runs without /bin/sh (packaging.trigger_file)."""
    path = plugin / trigger
    interpreter = environment_interpreter(str(plugin))
    return (
        interpreter is not None
        and not path.is_symlink()
        and path.read_text() == trigger_file(trigger, interpreter)
    )


def proxy_recorder(folder: Path) -> tuple[Path, Path]:
    """A proxy refresh command appending its arguments to a file: (script, calls file)."""
    script, calls = folder / "refresh-proxy", folder / "proxy-calls"
    script.write_text(f'#!/bin/sh\necho "$*" >>{calls}\n')
    script.chmod(0o755)
    return script, calls


@dataclass
class DokkuHost:
    """A throw-away Dokku host: DOKKU_ROOT, DOKKU_LIB_ROOT and the installed plugin."""

    plugin_dir: Path
    dokku_root: Path
    lib_root: Path
    env: dict[str, str] = field(default_factory=dict)
    proxy_calls_file: Path | None = None

    def proxy_calls(self) -> list[str]:
        """The arguments of each call of the proxy refresh command (see `proxy_recorder`)."""
        if self.proxy_calls_file is None or not self.proxy_calls_file.exists():
            return []
        return self.proxy_calls_file.read_text().splitlines()

    @property
    def properties_root(self) -> Path:
        return self.lib_root / "config" / "network"

    def create_app(self, app: str) -> Path:
        root = self.dokku_root / app
        root.mkdir(parents=True)
        return root

    def property_file(self, app: str, key: str) -> Path:
        return self.properties_root / app / key

    def write_property(self, app: str, key: str, value: str) -> None:
        """Write a property file by hand, as the reference plugin or an operator would."""
        path = self.property_file(app, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)

    def snapshot(self) -> dict[str, tuple[int, int, bytes | None]]:
        """Every path under the host's folder, with its type, mode and content."""
        root = self.dokku_root.parent
        state = {}
        for path in sorted(root.rglob("*")):
            info = path.lstat()
            content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
            state[str(path.relative_to(root))] = (
                stat.S_IFMT(info.st_mode),
                stat.S_IMODE(info.st_mode),
                content,
            )
        return state

    def run(
        self, program: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(program), *args],
            input=stdin if stdin is not None else "",
            env=self.env | (env or {}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def trigger(
        self, name: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`plugn trigger <name> <args>`: run `$PLUGIN/<name>`."""
        return self.run(self.plugin_dir / name, *args, stdin=stdin, env=env)

    def plugn_trigger(
        self, name: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`plugn trigger <name> <args>` as plugn dispatches it: run `<plugin>/<name>` of every
        enabled plugin that has it as an executable file; nothing to run is a success."""
        return self.run(Path(PLUGN), "trigger", name, *args, stdin=stdin, env=env)

    def command(
        self, name: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`dokku network:<name> <args>`: run `$PLUGIN/subcommands/<name> network:<name> <args>`."""
        program = self.plugin_dir / "subcommands" / name
        return self.run(program, f"network:{name}", *args, stdin=stdin, env=env)

    def commands(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`$PLUGIN/commands <args>`, as Dokku calls it for help and unknown commands."""
        return self.run(self.plugin_dir / "commands", *args, stdin=stdin, env=env)
