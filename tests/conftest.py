"""Fixtures: a Dokku-like host in a temp folder, and the plugin installed the Dokku way.

`plugin_path` installs the work tree once per test run (see tests/host.py);
`dokku` gives each test a fresh DOKKU_ROOT/DOKKU_LIB_ROOT driving that install
through subprocesses, as plugn and Dokku do.

The suite runs in parallel (`tools/test` passes `-n` to pytest-xdist; `--dist loadgroup` is set in
pyproject.toml):
what is costly to make (the wheelhouse, the plugin's environment) is made once per run by the
first worker that needs it and shared; each worker gets its own copy of the installed plugin,
since some tests run `install` on it or change its links.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import settings

from tests.host import (
    LEAKY_VARIABLES,
    NO_SYSTEMD,
    DokkuHost,
    clean_env,
    download_wheelhouse,
    install_plugin,
    offline_pip,
    proxy_recorder,
    without_pip_settings,
)

__all__ = ["DokkuHost"]

# CI explores the same examples every run: a red CI must be reproducible, not a lucky draw.
# By hand, hypothesis draws new examples each time (and keeps failures in its database).
# No per-example deadline anywhere: a loaded 2-core machine must not turn a slow example
# into a failure.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("by-hand", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "by-hand")

# The real engine: docker_client, test_image, docker_resources; two engines in a swarm: two_hosts;
# network:watch on fakes (loop) and as the service runs it (watcher); a real nginx (nginx_proxy).
pytest_plugins = [
    "tests.engine_fixtures",
    "tests.two_hosts",
    "tests.fake_engine",
    "tests.watcher",
    "tests.nginx_proxy",
]


# The fixtures that reach a Docker engine: a test using any of them (even through another
# fixture) is an `engine` test; the two hosts' swarm and the TLS engine also need root.
ROOT_FIXTURES = {"two_hosts", "tls_engine"}
ENGINE_FIXTURES = {"docker_client", "test_image", "docker_resources", "network_name", *ROOT_FIXTURES}


# Modules whose engine tests create networks with fixed subnets (or the engine's free ones): two
# xdist workers at once would ask the shared engine for overlapping pools.
FIXED_SUBNET_MODULES = {
    "test_host_network",
    "test_import_checks",
    "test_network_options",
    "test_network_records",
    "test_watch_reattach",
}


def xdist_group(item: pytest.Item, fixtures: set[str]) -> str | None:
    """The tests that must run in one worker, one after the other (`--dist loadgroup`)."""
    rigs = sorted(fixtures & ROOT_FIXTURES)
    if rigs:
        return rigs[0]  # a rig of engines of its own, built once by the worker running its tests
    if fixtures & ENGINE_FIXTURES and item.module.__name__.rpartition(".")[2] in FIXED_SUBNET_MODULES:
        return "fixed-subnets"
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & ENGINE_FIXTURES:
            item.add_marker(pytest.mark.engine)
        if fixtures & ROOT_FIXTURES:
            item.add_marker(pytest.mark.root)
        group = xdist_group(item, fixtures)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temp folder of this test run: shared by its xdist workers (each has a folder below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """`run_folder/name`, made by `make` by the first worker that asks; the others wait for it.

    A worker whose `make` failed leaves the folder half made and unmarked: the next one to ask
    starts it again (in place: an environment cannot be moved once built), failing for itself.
    """
    folder = run_folder(tmp_path_factory) / name
    made = folder.with_name(f"{name}.made")
    with FileLock(str(folder.with_name(f"{name}.lock"))):
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            made.touch()
    return folder


# A `$PLUGIN_PATH` where the plugin is installed already: tools/platform-test installs it the
# Dokku way inside a Debian root, and the tests drive that install.
INSTALLED_PLUGIN_PATH = os.environ.get("NETWORK_TEST_PLUGIN_PATH", "")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The lock's packages downloaded once; from then on every install in this session (and in
    the programs it starts) takes them from there, with no index and no pip config of the machine."""
    folder = once_per_run(tmp_path_factory, "wheelhouse", download_wheelhouse)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(without_pip_settings(saved) | offline_pip(folder))
    yield folder
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """A `$PLUGIN_PATH` with this plugin installed as `network`, the way `plugin:install` does."""
    if INSTALLED_PLUGIN_PATH:
        return Path(INSTALLED_PLUGIN_PATH)
    empty = tmp_path_factory.mktemp("empty-host")
    env = clean_env() | {"DOKKU_ROOT": str(empty / "home"), "DOKKU_LIB_ROOT": str(empty / "lib")}
    # The environment is built once per run; each worker installs its own copy of the plugin
    # beside it, which finds that environment in place and builds nothing.
    built = once_per_run(tmp_path_factory, "plugins", lambda root: install_plugin(root, env))
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return built
    root = tmp_path_factory.mktemp("plugins")
    install_plugin(root, env, environment_from=built / "available" / "network")
    return root


@pytest.fixture(scope="session")
def plugin_dir(plugin_path: Path) -> Path:
    return plugin_path / "enabled" / "network"


@pytest.fixture
def host_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """DOKKU_ROOT and DOKKU_LIB_ROOT in a temp folder, set in this process (for unit tests)."""
    dokku_root, lib_root = tmp_path / "home-dokku", tmp_path / "var-lib-dokku"
    dokku_root.mkdir()
    lib_root.mkdir()
    monkeypatch.setenv("DOKKU_ROOT", str(dokku_root))
    monkeypatch.setenv("DOKKU_LIB_ROOT", str(lib_root))
    for name, value in NO_SYSTEMD.items():
        monkeypatch.setenv(name, value)
    for name in LEAKY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield dokku_root, lib_root


@pytest.fixture
def dokku(plugin_dir: Path, plugin_path: Path, host_paths: tuple[Path, Path]) -> DokkuHost:
    """A fresh Dokku host driving the installed plugin through subprocesses."""
    dokku_root, lib_root = host_paths
    refresh, calls = proxy_recorder(dokku_root.parent)
    env = clean_env() | {
        "DOKKU_ROOT": str(dokku_root),
        "DOKKU_LIB_ROOT": str(lib_root),
        "PLUGIN_PATH": str(plugin_path),
        # No Dokku here: the proxy refresh after a rebuild is a script recording its calls.
        "DOKKU_NETWORK_PROXY_REFRESH": str(refresh),
    }
    return DokkuHost(
        plugin_dir=plugin_dir, dokku_root=dokku_root, lib_root=lib_root, env=env, proxy_calls_file=calls
    )


@pytest.fixture
def app(dokku: DokkuHost) -> str:
    """An app that exists on the host (its DOKKU_ROOT folder), named as Dokku's examples name it."""
    dokku.create_app("node-js-app")
    return "node-js-app"
