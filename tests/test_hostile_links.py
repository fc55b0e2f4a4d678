"""Links planted under the plugin's folders (docs/reference.md: Files on disk), and triggers
given arguments that would make them destroy what they set up.

The tests run as root, as `install` (and so `plugin:install` of any plugin) runs the plugin.
A link the Dokku user planted is one owned by another uid (`os.lchown`); a link the operator
made (a folder moved to another disk) is root's, and keeps working.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from network_plugin import files
from network_plugin.error_handler import PluginError
from tests.docker_fixtures import OWNER, RESOURCE_LABEL, DockerResources
from tests.host import DokkuHost

WARN = " !     "
DOKKU_USER = 12345  # the uid of the links the Dokku user plants
SECRET = "root's secret"

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("links of another user are made by root, and root is who they fool")


def plant_link(link: Path, target: Path, uid: int = DOKKU_USER) -> Path:
    """`ln -s target link` as the user `uid` (the Dokku user's folders are theirs to do so)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    os.lchown(link, uid, uid)
    return link


def root_only_folder(folder: Path, content: dict[str, str]) -> dict[str, tuple[bytes, int, int]]:
    """A folder of root's files (0600), the target of a planted link; returns what must stay of it."""
    folder.mkdir(mode=0o700, parents=True)
    for name, text in content.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
        (folder / name).chmod(0o600)
    return state(folder)


def state(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every entry below `folder`: content (files), mode and owner."""
    return {
        str(path.relative_to(folder)): (
            path.read_bytes() if path.is_file() else b"",
            path.lstat().st_mode,
            path.lstat().st_uid,
        )
        for path in sorted(folder.rglob("*"))
    }


def refusal(link: Path) -> str:
    return f"{WARN}Refusing to follow {link}: a link owned by uid {DOKKU_USER}, not by root\n"


def records_folder(dokku: DokkuHost) -> Path:
    return dokku.lib_root / "data" / "network" / "networks"


def install(dokku: DokkuHost):
    return dokku.run(dokku.plugin_dir / "install")


# --- item 12 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["post-app-rename-setup", "post-app-clone-setup"])
def test_setting_up_an_app_as_itself_is_refused_and_changes_nothing(dokku: DokkuHost, app: str, trigger: str):
    dokku.write_property(app, "tld", "svc.local")
    dokku.write_property(app, "attach-post-deploy", "net-a")
    (dokku.dokku_root / app / "IP.web.1").write_text("10.0.0.1")
    before = dokku.snapshot()

    result = dokku.trigger(trigger, app, app)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"{WARN}The new app is the old app: {app}, nothing to set up\n",
    )
    assert dokku.snapshot() == before


# --- the records folder as the Dokku user's link ------------------------------------------------------


@pytest.mark.usefixtures("docker_client")
def test_create_and_destroy_change_nothing_through_a_linked_records_folder(
    dokku: DokkuHost,
    docker_client: docker.DockerClient,
    docker_resources: DockerResources,
    network_name: str,
    tmp_path: Path,
):
    other = docker_resources.network()
    victim = tmp_path / "victim"
    kept = root_only_folder(
        victim, {f"{network_name}.json": "root's\n", f"{other.name}.json": "root's too\n"}
    )
    link = plant_link(records_folder(dokku), victim)

    created = dokku.command("create", network_name, "--label", f"{RESOURCE_LABEL}={OWNER}")
    destroyed = dokku.command("destroy", other.name, "--force")

    assert (created.returncode, created.stdout, created.stderr) == (1, "", refusal(link))
    assert (destroyed.returncode, destroyed.stdout, destroyed.stderr) == (1, "", refusal(link))
    assert state(victim) == kept
    # Refused before the engine was asked: no network without its record, no record without its network.
    assert docker_client.networks.list(names=[network_name]) == []
    assert [network.name for network in docker_client.networks.list(names=[other.name])] == [other.name]


def test_an_import_makes_no_network_through_a_linked_records_folder(
    dokku: DokkuHost, docker_client: docker.DockerClient, network_name: str, tmp_path: Path
):
    victim = tmp_path / "victim"
    kept = root_only_folder(victim, {"keep.json": "root's\n"})
    link = plant_link(records_folder(dokku), victim)
    document = json.dumps({"version": 1, "networks": [{"name": network_name, "driver": "bridge"}]})

    result = dokku.command("import", stdin=document)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", refusal(link))
    assert state(victim) == kept
    # Refused before the engine was asked (it used to make the network, then fail to record it).
    assert docker_client.networks.list(names=[network_name]) == []


@pytest.mark.usefixtures("docker_client")
def test_install_records_nothing_through_a_linked_records_folder(dokku: DokkuHost, tmp_path: Path):
    victim = tmp_path / "victim"
    kept = root_only_folder(victim, {"keep.json": "root's\n"})
    link = plant_link(records_folder(dokku), victim)

    result = install(dokku)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", refusal(link))
    assert state(victim) == kept


# --- the property store as the Dokku user's link ------------------------------------------------------

STORE_WRITERS: dict[str, Callable[[DokkuHost, str], object]] = {
    "install": lambda dokku, app: install(dokku),
    "network:set": lambda dokku, app: dokku.command("set", app, "tld", "x.local"),
    "network:set --global": lambda dokku, app: dokku.command("set", "--global", "tld", "x.local"),
    "network:set (unset)": lambda dokku, app: dokku.command("set", app, "tld"),
    "network-write-ipaddr": lambda dokku, app: dokku.trigger(
        "network-write-ipaddr", app, "web", "1", "10.0.0.9"
    ),
    "post-delete": lambda dokku, app: dokku.trigger("post-delete", app),
    "post-app-rename-setup": lambda dokku, app: dokku.trigger("post-app-rename-setup", app, "new-app"),
}


@pytest.mark.parametrize("writer", sorted(STORE_WRITERS))
def test_nothing_is_written_or_removed_through_a_linked_property_store(
    dokku: DokkuHost, app: str, tmp_path: Path, writer: str
):
    dokku.create_app("new-app")
    victim = tmp_path / "victim"
    kept = root_only_folder(
        victim, {f"{app}/tld": "root.local", f"{app}/.lock": "", "--global/tld": "g.local"}
    )
    link = plant_link(dokku.properties_root, victim)

    result = STORE_WRITERS[writer](dokku, app)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", refusal(link))
    assert state(victim) == kept
    assert os.listdir(dokku.dokku_root / app) == []


def test_an_app_folder_linked_by_the_dokku_user_is_neither_written_nor_read(dokku: DokkuHost, tmp_path: Path):
    victim = tmp_path / "victim"
    kept = root_only_folder(victim, {"IP.web.1": "10.0.0.1", "PORT.web.1": "5000"})
    link = plant_link(dokku.dokku_root / "node-js-app", victim)

    written = dokku.trigger("network-write-ipaddr", "node-js-app", "web", "1", "10.0.0.9")
    removed = dokku.trigger("network-write-port", "node-js-app", "web", "1", "")
    listed = dokku.trigger("network-get-listeners", "node-js-app", "web")

    for result in (written, removed, listed):
        assert (result.returncode, result.stdout, result.stderr) == (1, "", refusal(link))
    assert state(victim) == kept


# --- reads: a property that is a link to a root-only file is never printed -----------------------------

READERS: dict[str, Callable[[DokkuHost, str], object]] = {
    "network:report": lambda dokku, app: dokku.command("report", app),
    "network:report --network-tld": lambda dokku, app: dokku.command("report", app, "--network-tld"),
    "report": lambda dokku, app: dokku.trigger("report", app),
    "network-get-property": lambda dokku, app: dokku.trigger("network-get-property", app, "tld"),
    "network:export": lambda dokku, app: dokku.command("export"),
    "network:export --app": lambda dokku, app: dokku.command("export", "--app", app),
}


# `network:export --app <app>` prints no global property: it has nothing to read there.
READ_CASES = [
    (reader, owner)
    for reader in sorted(READERS)
    for owner in ("node-js-app", "--global")
    if (reader, owner) != ("network:export --app", "--global")
]


@pytest.mark.parametrize(("reader", "owner"), READ_CASES)
def test_a_property_linked_to_a_root_only_file_is_never_printed(
    dokku: DokkuHost, app: str, tmp_path: Path, reader: str, owner: str
):
    secret = tmp_path / "secret"
    root_only_folder(secret, {"tld": SECRET})
    link = plant_link(dokku.property_file(owner, "tld"), secret / "tld")

    result = READERS[reader](dokku, app)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", refusal(link))


def test_a_record_linked_to_a_root_only_file_is_not_exported(dokku: DokkuHost, tmp_path: Path):
    secret = tmp_path / "secret"
    record = json.dumps({"version": 1, "name": "secret-net", "driver": "bridge", "labels": {"s": SECRET}})
    root_only_folder(secret, {"secret-net.json": record})
    link = plant_link(records_folder(dokku) / "secret-net.json", secret / "secret-net.json")

    result = dokku.command("export")

    # Printed, and a failure: a backup left a record out.
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"version": 1, "networks": [], "global": {}, "apps": {}}
    assert result.stderr == (
        f"{WARN}Ignoring the record of network secret-net ({link}): {refusal(link)[len(WARN) :]}"
        f"{WARN}The export is incomplete: 1 unreadable record(s) or value(s) left out (above);"
        " --allow-partial accepts that\n"
    )


def test_a_container_file_linked_by_the_dokku_user_is_not_read(dokku: DokkuHost, app: str, tmp_path: Path):
    secret = tmp_path / "secret"
    root_only_folder(secret, {"ip": "10.0.0.1"})
    link = plant_link(dokku.dokku_root / app / "IP.web.1", secret / "ip")

    result = dokku.trigger("network-get-listeners", app, "web")

    assert (result.returncode, result.stdout, result.stderr) == (1, "", refusal(link))


# --- the operator's own links (root's) keep working ------------------------------------------------


def test_a_property_store_moved_to_another_disk_by_root_keeps_working(
    dokku: DokkuHost, app: str, tmp_path: Path
):
    disk = tmp_path / "other-disk" / "network"
    disk.mkdir(parents=True)
    dokku.properties_root.parent.mkdir(parents=True)
    dokku.properties_root.symlink_to(disk)  # root's: the operator's
    (dokku.dokku_root / "old-app").mkdir()
    (dokku.dokku_root / "renamed-app").mkdir()
    dokku.write_property("old-app", "tld", "old.local")

    results = [
        install(dokku),
        dokku.command("set", app, "tld", "svc.local"),
        dokku.trigger("network-get-property", app, "tld"),
        dokku.trigger("post-app-rename-setup", "old-app", "renamed-app"),
    ]

    assert [(result.returncode, result.stderr) for result in results] == [(0, "")] * 4
    assert results[2].stdout == "svc.local\n"
    assert dokku.properties_root.is_symlink()
    assert (disk / app / "tld").read_text() == "svc.local"
    assert (disk / "renamed-app" / "tld").read_text() == "old.local"
    assert not (disk / "old-app").exists()
    assert (disk / "--global").is_dir()


def test_an_operators_link_to_a_property_file_is_read(dokku: DokkuHost, app: str, tmp_path: Path):
    shared = tmp_path / "shared-tld"
    shared.write_text("shared.local")
    dokku.property_file(app, "tld").parent.mkdir(parents=True)
    dokku.property_file(app, "tld").symlink_to(shared)

    result = dokku.trigger("network-get-property", app, "tld")

    assert (result.returncode, result.stdout, result.stderr) == (0, "shared.local\n", "")


@pytest.mark.usefixtures("docker_client")
def test_a_records_folder_moved_by_root_keeps_its_records(
    dokku: DokkuHost, network_name: str, tmp_path: Path
):
    disk = tmp_path / "other-disk" / "networks"
    disk.mkdir(parents=True)
    records_folder(dokku).parent.mkdir(parents=True)
    records_folder(dokku).symlink_to(disk)

    created = dokku.command("create", network_name, "--label", f"{RESOURCE_LABEL}={OWNER}")
    recorded = sorted(os.listdir(disk))
    destroyed = dokku.command("destroy", network_name, "--force")

    assert [(result.returncode, result.stderr) for result in (created, destroyed)] == [(0, "")] * 2
    assert recorded == [f"{network_name}.json"]
    assert os.listdir(disk) == []


def test_an_app_folder_moved_by_root_gets_its_ip_files(dokku: DokkuHost, tmp_path: Path):
    disk = tmp_path / "other-disk" / "node-js-app"
    disk.mkdir(parents=True)
    (dokku.dokku_root / "node-js-app").symlink_to(disk)

    written = dokku.trigger("network-write-ipaddr", "node-js-app", "web", "1", "10.0.0.9")
    listed = dokku.trigger("network-get-listeners", "node-js-app", "web")

    assert [(result.returncode, result.stderr) for result in (written, listed)] == [(0, "")] * 2
    assert listed.stdout == "10.0.0.9:5000\n"
    assert (disk / "IP.web.1").read_text() == "10.0.0.9"


# --- the rule in one process: links of root or of the user it runs as ----------------------------------


def test_a_process_not_run_as_root_follows_its_own_links_and_roots_only(
    host_paths: tuple[Path, Path], tmp_path: Path, mocker
):
    """A process run as the Dokku user cannot be made to write what it could not write anyway:
    its own links are followed (mocked uid: the test runs as root)."""
    _, lib_root = host_paths
    mocker.patch("network_plugin.files.os.geteuid", return_value=DOKKU_USER)
    target = tmp_path / "target"
    target.mkdir()
    (target / "tld").write_text("svc.local")
    own = plant_link(lib_root / "own", target)
    roots = plant_link(lib_root / "roots", target, uid=0)
    foreign = plant_link(lib_root / "foreign", target, uid=23456)

    assert files.read_value(str(own / "tld")) == "svc.local"
    assert files.read_value(str(roots / "tld")) == "svc.local"
    with pytest.raises(PluginError) as refused:
        files.read_value(str(foreign / "tld"))
    assert refused.value.message == (
        f"Refusing to follow {foreign}: a link owned by uid 23456, not by root or uid {DOKKU_USER}"
    )


def test_a_loop_of_root_owned_links_ends(tmp_path: Path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")

    with pytest.raises(OSError) as looped:
        files.read_value(str(tmp_path / "a" / "tld"))
    assert looped.value.errno == errno.ELOOP


def test_rebuildall_reads_no_container_file_through_an_app_folder_linked_by_the_dokku_user(
    dokku: DokkuHost, app: str, tmp_path: Path
):
    victim = tmp_path / "victim"
    kept = root_only_folder(victim, {"CONTAINER.web.1": "0123456789ab"})
    link = plant_link(dokku.dokku_root / "linked-app", victim)

    result = dokku.command("rebuildall")

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"{WARN}Unable to build the network configuration of linked-app: {refusal(link)[len(WARN) :]}"
    )
    assert state(victim) == kept


def test_a_folder_swapped_for_a_link_after_the_walk_is_not_written_through(
    host_paths: tuple[Path, Path], tmp_path: Path, mocker
):
    """The race of a check then a write: the Dokku user swaps the property folder for a link
    right after the writer walked to it (the swap is made at that point by wrapping the
    writer's first step in the folder: a race cannot be won on demand otherwise). The write
    lands in the folder walked, moved away, never in the link's target."""
    _, lib_root = host_paths
    folder = lib_root / "config" / "network" / "node-js-app"
    folder.mkdir(parents=True)
    victim = tmp_path / "victim"
    kept = root_only_folder(victim, {"tld": "root.local"})
    check = files._holds_at

    def swap_then_check(*args: object) -> bool:
        folder.rename(folder.with_name("moved-away"))
        plant_link(folder, victim)
        return check(*args)

    mocker.patch("network_plugin.files._holds_at", side_effect=swap_then_check)

    assert files.write_atomic(str(folder / "tld"), "svc.local") is True
    assert state(victim) == kept
    assert (folder.with_name("moved-away") / "tld").read_text() == "svc.local"
