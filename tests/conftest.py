"""Fixtures: a Dokku-like host in a temp folder, and the plugin installed the Dokku way.

`installed_plugin` clones the working tree into `$PLUGIN_PATH/available/network`,
links `enabled/network` and runs its `install`, once per test session. Tests then
drive it as plugn and Dokku do: subprocesses of `$PLUGIN/<trigger>`,
`$PLUGIN/subcommands/<cmd> network:<cmd> ...` and `$PLUGIN/commands`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Variables of the developer's shell that must not leak into the plugin under test.
LEAKY_VARIABLES = ("DOKKU_QUIET_OUTPUT", "DOKKU_APPS_FORCE_DELETE", "PYTHONPATH", "PYTHONHOME")


def repository_files() -> list[str]:
    """Files git tracks plus new ones it does not ignore: what a clone of this work would hold."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listing.split("\0") if name and (REPO_ROOT / name).exists()]


def copy_repository(target: Path) -> None:
    for name in repository_files():
        source = REPO_ROOT / name
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `$PLUGIN_PATH` with this plugin installed as `network`, the way `plugin:install` does."""
    root = tmp_path_factory.mktemp("plugins")
    available = root / "available" / "network"
    copy_repository(available)
    (root / "enabled").mkdir()
    (root / "enabled" / "network").symlink_to(available)
    empty = tmp_path_factory.mktemp("empty-host")
    env = clean_env() | {
        "DOKKU_ROOT": str(empty / "home"),
        "DOKKU_LIB_ROOT": str(empty / "lib"),
        "PLUGIN_PATH": str(root),
    }
    result = subprocess.run(
        [str(available / "install")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="session")
def plugin_dir(plugin_path: Path) -> Path:
    return plugin_path / "enabled" / "network"


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in LEAKY_VARIABLES}


@dataclass
class DokkuHost:
    """A throw-away Dokku host: DOKKU_ROOT, DOKKU_LIB_ROOT and the installed plugin."""

    plugin_dir: Path
    dokku_root: Path
    lib_root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def properties_root(self) -> Path:
        return self.lib_root / "config" / "network"

    def create_app(self, app: str) -> Path:
        root = self.dokku_root / app
        root.mkdir(parents=True)
        return root

    def property_file(self, app: str, key: str) -> Path:
        return self.properties_root / app / key

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


@pytest.fixture
def host_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """DOKKU_ROOT and DOKKU_LIB_ROOT in a temp folder, set in this process (for unit tests)."""
    dokku_root, lib_root = tmp_path / "home-dokku", tmp_path / "var-lib-dokku"
    dokku_root.mkdir()
    lib_root.mkdir()
    monkeypatch.setenv("DOKKU_ROOT", str(dokku_root))
    monkeypatch.setenv("DOKKU_LIB_ROOT", str(lib_root))
    for name in LEAKY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield dokku_root, lib_root


@pytest.fixture
def dokku(plugin_dir: Path, plugin_path: Path, host_paths: tuple[Path, Path]) -> DokkuHost:
    """A fresh Dokku host driving the installed plugin through subprocesses."""
    dokku_root, lib_root = host_paths
    env = clean_env() | {
        "DOKKU_ROOT": str(dokku_root),
        "DOKKU_LIB_ROOT": str(lib_root),
        "PLUGIN_PATH": str(plugin_path),
    }
    return DokkuHost(plugin_dir=plugin_dir, dokku_root=dokku_root, lib_root=lib_root, env=env)
