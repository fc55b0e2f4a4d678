"""network:import checks all of a document before it changes anything, and network:export says
when its document is incomplete (docs/reference.md: network:import, network:export): the
attach-list rule across apps and against a racing network:set, subnets that overlap, size
and shape limits, duplicate keys, Docker's own networks."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from network_plugin import networks, transfer
from network_plugin.error_handler import PluginError
from tests.docker_fixtures import OWNER, RESOURCE_LABEL, DockerResources
from tests.host import DokkuHost
from tests.polling import wait_for

WARN = " !     "
INVALID = f"{WARN}Invalid import document, nothing imported: "
APP = "node-js-app"
OTHER_APP = "other-app"
MIB = 1 << 20
# Subnets of these tests: 10.<second>.x.x, a second octet drawn per run among ranges other tests
# of the project do not use, so that runs on one engine side by side do not take each other's:
# never in app-network's default pool, 10.224.0.0/12 (10.224-10.239), which other tests' apps
# (in other xdist workers, at the same moment) take their subnets from.
SECOND_OCTETS = [octet for octet in range(200, 255) if not 224 <= octet <= 239]
INCOMPLETE = (
    f"{WARN}The export is incomplete: 1 unreadable record(s) or value(s) left out (above);"
    " --allow-partial accepts that"
)
BOGUS_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/dokku-network-test/docker.sock"}


def document(*networks: dict, apps: dict | None = None, **fields: object) -> str:
    return json.dumps({"version": 1, "networks": list(networks), "global": {}, "apps": apps or {}, **fields})


def spec(name: str, *subnets: str) -> dict:
    """A network of a document, labelled so that the test's sweep removes what the import makes."""
    return {
        "name": name,
        "pools": [{"subnet": subnet} for subnet in subnets],
        "labels": {RESOURCE_LABEL: OWNER},
    }


def fresh_name() -> str:
    return f"dnt-{uuid.uuid4().hex[:10]}"


def second_octet() -> int:
    return random.choice(SECOND_OCTETS)


def engine_network(client: docker.DockerClient, subnet: str) -> str:
    """A network on the engine holding `subnet` (removed by docker_resources' sweep)."""
    name = fresh_name()
    client.networks.create(
        name,
        driver="bridge",
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]),
        labels={RESOURCE_LABEL: OWNER},
    )
    return name


def on_engine(client: docker.DockerClient, *names: str) -> list[str]:
    return sorted(
        network["Name"] for network in client.api.networks(names=list(names)) if network["Name"] in names
    )


def stored(dokku: DokkuHost, owner: str, key: str) -> str | None:
    path = dokku.property_file(owner, key)
    return path.read_text() if path.exists() else None


def run_import(dokku: DokkuHost, data: bytes, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """`dokku network:import` of `data` (bytes: a document's size is counted in bytes)."""
    completed = subprocess.run(
        [str(dokku.plugin_dir / "subcommands" / "import"), "network:import"],
        input=data,
        env=dokku.env | (env or {}),
        capture_output=True,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        completed.args, completed.returncode, completed.stdout.decode(), completed.stderr.decode()
    )


def assert_refused(dokku: DokkuHost, text: str, reason: str, env: dict | None = None) -> None:
    """The document is refused with exactly one line, and nothing on the host changed."""
    before = dokku.snapshot()

    result = run_import(dokku, text.encode(), env)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"{INVALID}{reason}\n")
    assert dokku.snapshot() == before


# --- 2: the attach-list rule across apps, under the lock network:set takes ------------------------


def test_a_global_list_that_would_put_a_network_in_both_lists_of_another_app_is_refused(dokku: DokkuHost):
    dokku.create_app(APP)
    dokku.create_app(OTHER_APP)
    assert dokku.command("set", OTHER_APP, "attach-post-deploy", "shared").returncode == 0

    assert_refused(
        dokku,
        json.dumps({"version": 1, "global": {"attach-post-create": "shared"}}),
        f"Network name already associated with app {OTHER_APP}: shared",
    )
    # ...as network:set --global refuses it.
    result = dokku.command("set", "--global", "attach-post-create", "shared")
    assert (result.returncode, result.stderr) == (
        1,
        f"{WARN}Network name already associated with app {OTHER_APP}: shared\n",
    )


def test_an_app_list_of_the_document_is_checked_with_the_global_list_of_the_document(dokku: DokkuHost):
    dokku.create_app(APP)

    text = {
        "version": 1,
        "global": {"attach-post-deploy": "net-g"},
        "apps": {APP: {"attach-post-create": "net-g"}},
    }

    assert_refused(dokku, json.dumps(text), f"Network name already associated with app {APP}: net-g")


def test_an_app_whose_own_value_hides_the_global_list_does_not_stop_the_import(dokku: DokkuHost):
    dokku.create_app(APP)
    dokku.write_property(APP, "attach-post-create", "own")
    dokku.write_property(APP, "attach-post-deploy", "shared")

    result = dokku.command(
        "import", stdin=json.dumps({"version": 1, "global": {"attach-post-create": "shared"}})
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert stored(dokku, "--global", "attach-post-create") == "shared"


def holds_flock(pid: int, path: Path) -> bool:
    """Whether process `pid` holds a flock(2) lock on `path` (/proc/locks)."""
    inode = str(path.stat().st_ino)
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # `1: FLOCK  ADVISORY  WRITE 1234 00:2f:5678 0 EOF`
        if fields[1] == "FLOCK" and fields[4] == str(pid) and fields[5].rpartition(":")[2] == inode:
            return True
    return False


def has_open(pid: int, path: Path) -> bool:
    folder = Path(f"/proc/{pid}/fd")
    try:
        return any(os.path.realpath(link) == str(path.resolve()) for link in folder.iterdir())
    except FileNotFoundError:  # it ended meanwhile
        return False


def test_a_network_set_racing_an_import_whose_engine_step_is_slow_never_makes_both_lists_equal(
    dokku: DokkuHost, docker_resources: DockerResources, mocker
):
    """The import runs here, its engine step held until the racing network:set has either
    finished (what an import holding no lock allows) or is waiting for the import's lock."""
    dokku.create_app(APP)
    name = fresh_name()
    text = document(spec(name), apps={APP: {"attach-post-create": name}})
    lock = dokku.properties_root / "--global" / ".lock"
    make = networks.make
    racing: list[subprocess.Popen[str]] = []

    def slow_make(network: str, options: object) -> bool:
        racer = subprocess.Popen(
            [str(dokku.plugin_dir / "subcommands" / "set"), "network:set", APP, "attach-post-deploy", name],
            env=dokku.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        racing.append(racer)
        wait_for(
            lambda: (
                racer.poll() is not None
                or (lock.exists() and holds_flock(os.getpid(), lock) and has_open(racer.pid, lock))
            ),
            "network:set to finish or to wait for the import's lock",
            timeout=120,
        )
        return make(network, options)

    mocker.patch.object(networks, "make", side_effect=slow_make)

    transfer.import_document(text.encode())

    (racer,) = racing
    _, stderr = racer.communicate(timeout=120)
    lists = [stored(dokku, APP, key) for key in ("attach-post-create", "attach-post-deploy")]
    assert lists == [name, None]
    assert (racer.returncode, stderr) == (1, f"{WARN}Network name already associated with this app: {name}\n")
    assert on_engine(docker_resources.client, name) == [name]


# --- 3: subnets that overlap, found before anything is made ---------------------------------------


def test_networks_of_the_document_whose_subnets_overlap_are_refused_before_any_is_made(
    dokku: DokkuHost, docker_client: docker.DockerClient
):
    octet = second_octet()
    first, second = fresh_name(), fresh_name()
    text = document(spec(first, f"10.{octet}.0.0/16"), spec(second, f"10.{octet}.1.0/24"))

    reason = (
        f"subnet 10.{octet}.1.0/24 of network {second} overlaps subnet 10.{octet}.0.0/16 of network {first}"
    )

    assert_refused(dokku, text, reason)
    assert on_engine(docker_client, first, second) == []


def test_a_network_whose_subnet_overlaps_one_on_the_engine_is_refused_before_any_is_made(
    dokku: DokkuHost, docker_resources: DockerResources
):
    octet = second_octet()
    taken = engine_network(docker_resources.client, f"10.{octet}.7.0/24")
    first, second = fresh_name(), fresh_name()
    text = document(spec(first, f"10.{octet}.9.0/24"), spec(second, f"10.{octet}.0.0/16"))

    reason = (
        f"subnet 10.{octet}.0.0/16 of network {second} overlaps subnet 10.{octet}.7.0/24 of network {taken}"
        " on the engine"
    )

    assert_refused(dokku, text, reason)
    assert on_engine(docker_resources.client, first, second) == []


def test_a_network_the_engine_still_refuses_is_named_with_what_the_import_made_and_a_second_import_finishes(
    dokku: DokkuHost, docker_resources: DockerResources, mocker, capsys
):
    """Another network takes the second network's subnet after the check (a race)."""
    dokku.create_app(APP)
    octet = second_octet()
    first, second = fresh_name(), fresh_name()
    text = document(
        spec(first, f"10.{octet}.1.0/24"),
        spec(second, f"10.{octet}.2.0/24"),
        apps={APP: {"attach-post-create": second}},
    )
    make = networks.make
    intruders = []

    def racing_make(network: str, options: object) -> bool:
        if network == second:
            intruders.append(engine_network(docker_resources.client, f"10.{octet}.2.0/24"))
        return make(network, options)

    mocker.patch.object(networks, "make", side_effect=racing_make)

    with pytest.raises(PluginError) as refused:
        transfer.import_document(text.encode())

    message = refused.value.message
    assert message.startswith(f"Network {second} was not created (Docker engine error: "), message
    assert message.endswith(f"): this import created {first} before it and set no property; import again")
    assert capsys.readouterr().out == f"-----> Creating network {first}\n"
    assert on_engine(docker_resources.client, first, second) == [first]
    assert stored(dokku, APP, "attach-post-create") is None

    docker_resources.client.api.remove_network(intruders[0])
    mocker.stopall()
    again = dokku.command("import", stdin=text)

    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.splitlines() == [
        f"       Network {first} exists",
        f"-----> Creating network {second}",
        f"-----> Set network properties of {APP}: attach-post-create={second}",
    ]
    assert on_engine(docker_resources.client, first, second) == sorted([first, second])


def test_an_engine_out_of_reach_is_its_own_line_not_a_bad_document(dokku: DokkuHost):
    before = dokku.snapshot()

    result = run_import(dokku, document(spec(fresh_name(), "10.201.0.0/24")).encode(), BOGUS_ENGINE)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"{WARN}Unable to reach the Docker engine at ")
    assert len(result.stderr.splitlines()) == 1
    assert dokku.snapshot() == before


# --- 6: size limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "accepted"), [(16 * MIB, True), (16 * MIB + 1, False)])
def test_a_document_larger_than_16_mib_is_refused(dokku: DokkuHost, size: int, accepted: bool):
    dokku.create_app(APP)
    text = json.dumps({"version": 1, "apps": {APP: {"tld": "svc.local"}}})
    padded = text + " " * (size - len(text))

    if accepted:
        result = dokku.command("import", stdin=padded)
        assert (result.returncode, result.stderr) == (0, "")
        assert stored(dokku, APP, "tld") == "svc.local"
    else:
        assert_refused(dokku, padded, "larger than 16 MiB")


def test_an_endless_document_is_refused_without_reading_it_all(dokku: DokkuHost):
    def limit_memory() -> None:  # a regression must not take the machine's memory with it
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    with open("/dev/zero", "rb") as zeros:
        result = subprocess.run(
            [str(dokku.plugin_dir / "subcommands" / "import"), "network:import"],
            stdin=zeros,
            env=dokku.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=limit_memory,
        )

    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"{INVALID}larger than 16 MiB\n")


def test_a_huge_value_is_echoed_cut(dokku: DokkuHost):
    dokku.create_app(APP)
    tld = "A" * (10 * MIB)

    result = dokku.command("import", stdin=document(apps={APP: {"tld": tld}}))

    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{INVALID}{APP}: Invalid tld specified, must be a lowercase DNS name: AAAA")
    reason = f"{APP}: Invalid tld specified, must be a lowercase DNS name: {tld}"
    assert line.endswith(f"... ({len(reason)} characters)")
    assert len(line) < 600


def test_apps_that_do_not_exist_are_one_warning(dokku: DokkuHost):
    dokku.create_app(APP)
    gone = [f"gone-{index:03}" for index in range(312)]

    result = dokku.command(
        "import",
        stdin=document(apps={APP: {"tld": "svc.local"}, **{app: {"tld": "x.local"} for app in gone}}),
    )

    assert result.returncode == 0
    assert result.stdout == f"-----> Set network properties of {APP}: tld=svc.local\n"
    assert result.stderr == (
        f"{WARN}312 apps do not exist, their network properties are not imported: {', '.join(gone[:10])}, …\n"
    )


def test_networks_without_a_record_are_one_export_warning(dokku: DokkuHost):
    dokku.create_app(APP)
    names = [f"by-hand-{index:02}" for index in range(12)]
    dokku.write_property(APP, "attach-post-deploy", ",".join(names))

    result = dokku.command("export")

    assert result.returncode == 0
    assert result.stderr == (
        f"{WARN}12 networks have no record (network:create did not make them), they are not exported:"
        f" {', '.join(names[:10])}, …\n"
    )


def test_200k_apps_that_do_not_exist_are_one_warning(dokku: DokkuHost):
    """A 6 MiB document; each missing app was looked up in a list of the others (HEAD before this
    test: 20k took 5 s, growing with the square)."""
    gone = [f"gone-{index:06}" for index in range(200_000)]

    result = dokku.command(
        "import", stdin=json.dumps({"version": 1, "apps": {app: {"tld": "x.local"} for app in gone}})
    )

    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == (
        f"{WARN}200000 apps do not exist, their network properties are not imported:"
        f" {', '.join(gone[:10])}, …\n"
    )


# --- 7: the duplicate-network check is linear ------------------------------------------------------


def test_a_network_listed_twice_among_200k_is_found(dokku: DokkuHost):
    """Before, each name was counted in the whole list: 200k names took far longer than the
    run's bound (40k took 18 s, growing with the square)."""
    names = [f"n-{index:06}" for index in range(200_000)]
    text = json.dumps({"version": 1, "networks": [{"name": name} for name in [*names, names[-1]]]})

    assert_refused(dokku, text, f"network {names[-1]} is listed twice")


# --- 8: a document nested too deep ----------------------------------------------------------------


def test_a_document_nested_100k_deep_is_invalid_json(dokku: DokkuHost):
    assert_refused(dokku, "[" * 100_000 + "]" * 100_000, "not JSON (nested too deeply)")


# --- 8: standard input closed ---------------------------------------------------------------------


def test_an_import_with_standard_input_closed_says_so(dokku: DokkuHost):
    program = dokku.plugin_dir / "subcommands" / "import"

    result = subprocess.run(
        ["sh", "-c", '"$0" network:import <&-', str(program)],
        env=dokku.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"{INVALID}no document on standard input (dokku network:import < file)\n"


# --- 9: duplicate keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"version": 2, "version": 1}', '"version"'),
        ('{"version": 1, "apps": {"node-js-app": {"tld": "a.local", "tld": "b.local"}}}', '"tld"'),
        ('{"version": 1, "apps": {"node-js-app": {}, "node-js-app": {"tld": "b.local"}}}', '"node-js-app"'),
    ],
)
def test_a_key_given_twice_is_refused(dokku: DokkuHost, text: str, key: str):
    dokku.create_app(APP)

    assert_refused(dokku, text, f"key {key} given twice")


def test_a_record_with_a_key_given_twice_is_not_read(dokku: DokkuHost):
    folder = dokku.lib_root / "data" / "network" / "networks"
    folder.mkdir(parents=True)
    (folder / "twice.json").write_text(
        '{"version": 1, "name": "twice", "driver": "macvlan", "driver": "bridge"}'
    )

    result = dokku.command("export", "--allow-partial")

    assert result.returncode == 0
    assert json.loads(result.stdout)["networks"] == []
    assert (
        result.stderr
        == f'{WARN}Ignoring the record of network twice ({folder}/twice.json): key "driver" given twice\n'
    )


# --- 10: an incomplete export fails unless --allow-partial -----------------------------------------


@pytest.fixture
def unreadable_record(dokku: DokkuHost) -> Path:
    dokku.create_app(APP)
    dokku.write_property(APP, "tld", "svc.local")
    folder = dokku.lib_root / "data" / "network" / "networks"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text('{"version": 1, "name": "broken", "driver": ')
    return folder / "broken.json"


def test_an_export_that_left_a_record_out_prints_the_document_and_fails(
    dokku: DokkuHost, unreadable_record: Path
):
    result = dokku.command("export")

    assert result.returncode == 1
    assert json.loads(result.stdout)["apps"] == {APP: {"tld": "svc.local"}}
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{WARN}Ignoring the record of network broken ({unreadable_record}): ")
    assert lines[1:] == [INCOMPLETE]


def test_an_export_that_left_a_value_out_fails(dokku: DokkuHost):
    dokku.create_app(APP)
    dokku.write_property(APP, "tld", "Not A Name")

    result = dokku.command("export")

    assert result.returncode == 1
    assert json.loads(result.stdout)["apps"] == {}
    assert result.stderr.splitlines() == [
        f"{WARN}Not exporting tld of {APP}: Invalid tld specified, must be a lowercase DNS name: Not A Name",
        INCOMPLETE,
    ]


def test_allow_partial_exports_what_could_be_read_with_exit_0(dokku: DokkuHost, unreadable_record: Path):
    failed = dokku.command("export")

    result = dokku.command("export", "--allow-partial")

    assert (result.returncode, result.stdout) == (0, failed.stdout)
    assert result.stderr == failed.stderr.splitlines(keepends=True)[0]


def test_an_export_of_one_app_fails_only_for_the_records_it_would_hold(
    dokku: DokkuHost, unreadable_record: Path
):
    result = dokku.command("export", "--app", APP)

    assert result.returncode == 0
    assert json.loads(result.stdout)["apps"] == {APP: {"tld": "svc.local"}}
    assert result.stderr.startswith(f"{WARN}Ignoring the record of network broken ")
    assert len(result.stderr.splitlines()) == 1

    dokku.write_property(APP, "attach-post-create", "broken")
    named = dokku.command("export", "--app", APP)

    assert named.returncode == 1
    assert named.stderr.splitlines()[1:] == [INCOMPLETE]


# --- 11: Docker's own networks --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bridge", "host", "none", "default"])
def test_a_record_of_one_of_dockers_own_networks_is_not_read(dokku: DokkuHost, name: str):
    folder = dokku.lib_root / "data" / "network" / "networks"
    folder.mkdir(parents=True)
    (folder / f"{name}.json").write_text(json.dumps({"version": 1, "name": name, "driver": "bridge"}))

    result = dokku.command("export", "--allow-partial")

    assert result.returncode == 0
    assert json.loads(result.stdout)["networks"] == []
    assert result.stderr == (
        f"{WARN}Ignoring the record of network {name} ({folder}/{name}.json): Invalid network name specified:"
        f" {name}, one of Docker's own networks\n"
    )


@pytest.mark.parametrize("name", ["bridge", "host", "none", "default"])
def test_an_import_naming_one_of_dockers_own_networks_is_refused_before_the_engine(
    dokku: DokkuHost, name: str
):
    assert_refused(
        dokku,
        document({"name": name}),
        f"Invalid network name specified: {name}, one of Docker's own networks",
        env=BOGUS_ENGINE,
    )


@pytest.mark.parametrize("name", ["bridge", "host", "none", "default"])
def test_network_create_of_one_of_dockers_own_networks_is_refused_before_the_engine(
    dokku: DokkuHost, name: str
):
    before = dokku.snapshot()

    result = dokku.command("create", name, env=BOGUS_ENGINE)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"{WARN}Invalid network name specified: {name}, one of Docker's own networks\n"
    assert dokku.snapshot() == before


# --- an empty value unsets ------------------------------------------------------------------------


def test_an_empty_value_in_the_document_unsets_the_property(dokku: DokkuHost):
    dokku.create_app(APP)
    dokku.write_property(APP, "tld", "svc.local")

    result = dokku.command("import", stdin=document(apps={APP: {"tld": ""}}))

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"-----> Set network properties of {APP}: tld=\n"
    assert stored(dokku, APP, "tld") is None
