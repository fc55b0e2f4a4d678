"""Hostile arguments and hand-edited files (docs/reference.md): the documented result, or one ` !     ` line.

For every command and file trigger, arguments are drawn from nasty alphabets:
path separators, `..`, newlines, NUL (in-process only: argv cannot carry it),
shell metacharacters, terminal escapes, unicode, 300-character strings. Each
example runs on a fresh host folder through `network_plugin.main.main`, as the
installed entry points do; a few cases also go through the installed plugin.

Whatever happens, nothing is written outside `<DOKKU_LIB_ROOT>/config/network/<app>`
and `<DOKKU_ROOT>/<app>`, and no value that is not a Docker network name reaches
`docker-args-*` output.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from network_plugin.main import main
from network_plugin.properties import DOCKER_NETWORKS
from tests.host import LEAKY_VARIABLES
from tests.test_cli_report_help import FIELDS as REPORT_FIELDS

APP = "node-js-app"
WARN = " !     "
APP_NAME_ERROR = (
    " !     App name must begin with lowercase alphanumeric character,"
    " and may only contain lowercase alphanumerics, dots, and hyphens\n"
)
KEYS = [
    "app-network",
    "attach-post-create",
    "attach-post-deploy",
    "bind-all-interfaces",
    "initial-network",
    "static-web-listener",
    "tld",
]
DEFAULTS = dict.fromkeys(KEYS, "") | {"app-network": "false", "bind-all-interfaces": "false"}

# The documented rules (docs/reference.md: Apps and names, Properties, Triggers), written
# independently of network_plugin.validation.
APP_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
PROCESS_TYPE = re.compile(r"[A-Za-z0-9_-]+")
NAME_MAX = 255
INDEX = re.compile(r"0|[1-9][0-9]{0,8}")  # as a number is written: `01` would name `1` twice
NETWORK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@-]*")
DNS_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
PORT = re.compile(r"[1-9][0-9]{0,4}")

PIECES = [
    "/",
    "..",
    ".",
    "\n",
    "\r",
    "\t",
    " ",
    "\x00",
    "$(id)",
    "`id`",
    ";",
    "|",
    "&&",
    "'",
    '"',
    "*",
    "~",
    "-",
    "--",
    "\\",
    "é",
    "İ",
    "\u202e",
    "\u2028",
    "\u200b",
    "\U0001f4a5",
    "\x1b[31m",
    ":",
    ",",
    "%",
    "[",
    "]",
    "{",
    "}",
    ">",
    "=",
    "a",
    "Z",
    "0",
    "9",
    "_",
    "net-a",
    "web",
    "10.0.0.1",
    "::1",
    APP,
    "--global",
    "host",
    "bridge",
    "none",
    "container:",
    "x" * 300,
]
SPECIALS = ["", ".", "..", "/", "../x", "a/../../b", "--global", "-", "x" * 300, "--network-tld", "-h"]


def nasty(*, nul: bool = True) -> st.SearchStrategy[str]:
    strategy = st.one_of(
        st.lists(st.sampled_from(PIECES), max_size=6).map("".join),
        st.text(max_size=12),
        st.sampled_from(SPECIALS),
    )
    return strategy if nul else strategy.filter(lambda value: "\x00" not in value)


def sometimes(value: str, *, nul: bool = True) -> st.SearchStrategy[str]:
    """Mostly the nasty strategy, often a good value so that later arguments get checked too."""
    return st.one_of(st.just(value), nasty(nul=nul))


HOSTILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- the host, the run and the checks ----------------------------------------------------------


@dataclass
class Host:
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def network(self) -> Path:
        return self.root / "lib" / "config" / "network"

    def property(self, app: str, key: str, content: str) -> None:
        folder = self.network / app
        folder.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(content.encode("utf-8", "surrogatepass"))

    def snapshot(self) -> dict[str, tuple[int, int, bytes | None]]:
        return snapshot(self.root)


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        state[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), content)
    return state


@contextlib.contextmanager
def fresh_host() -> Iterator[Host]:
    """A host with app `node-js-app` and the global property folder, as after `install`."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        host = Host(Path(folder))
        (host.home / APP).mkdir(parents=True)
        (host.network / "--global").mkdir(parents=True)
        patch.setenv("DOKKU_ROOT", str(host.home))
        patch.setenv("DOKKU_LIB_ROOT", str(host.root / "lib"))
        for name in LEAKY_VARIABLES:
            patch.delenv(name, raising=False)
        yield host


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    changed: set[str]


def run(host: Host, capsys, program: str, *args: str, stdin: bytes = b"") -> Outcome:
    before = host.snapshot()
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main([f"/var/lib/dokku/plugins/enabled/network/{program}", *args])
    captured = capsys.readouterr()
    after = host.snapshot()
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    return Outcome(code, captured.out, captured.err, changed)


def assert_one_error_line(outcome: Outcome) -> None:
    assert outcome.code != 0
    assert outcome.err.startswith(WARN)
    assert outcome.err.endswith("\n")
    assert len(outcome.err.splitlines()) == 1, outcome.err


def assert_well_behaved(outcome: Outcome, *, warnings: tuple[str, ...] = ()) -> None:
    assert "Traceback" not in outcome.out + outcome.err
    if outcome.code == 0:
        assert outcome.err in ("", *warnings)
    else:
        assert_one_error_line(outcome)


def assert_confined(changed: set[str], *apps: str, home: str = "home", lib: str = "lib") -> None:
    """Every path created, changed or removed lies in a property folder or app root of `apps`."""
    allowed = []
    for app in apps:
        if APP_NAME.fullmatch(app) or app == "--global":
            allowed.append(f"{lib}/config/network/{app}")
        if APP_NAME.fullmatch(app):
            allowed.append(f"{home}/{app}")
    for path in changed:
        assert any(path == place or path.startswith(f"{place}/") for place in allowed), (apps, path)


def assert_app_refused(outcome: Outcome, app: str) -> bool:
    """True when `app` is not an existing app, after checking the refusal is the documented one."""
    if app == APP:
        return False
    if APP_NAME.fullmatch(app):
        assert (outcome.code, outcome.err) == (20, f" !     App {app} does not exist\n")
    else:
        assert (outcome.code, outcome.err) == (1, APP_NAME_ERROR)
    assert outcome.changed == set()
    return True


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return "%" not in value  # a scoped IPv6 address names a host interface: no proxy can use it


def is_port(value: str) -> bool:
    return bool(PORT.fullmatch(value)) and 1 <= int(value) <= 65535


def is_dns_name(value: str) -> bool:
    """DNS_NAME within DNS's limits: labels of at most 63 characters, 253 in all."""
    return bool(DNS_NAME.fullmatch(value)) and len(value) <= 253 and max(map(len, value.split("."))) <= 63


def is_host(value: str) -> bool:
    """An IP address, or a host name (whose last label is not all digits: that is a broken IP)."""
    if is_ip(value):
        return True
    return value.isascii() and is_dns_name(value.lower()) and not value.rpartition(".")[2].isdigit()


def is_listener(value: str) -> bool:
    if is_ip(value):
        return True
    host, _, port = value.rpartition(":")
    if not is_port(port) or not host:
        return False
    if host.startswith("[") and host.endswith("]"):
        return ":" in host and is_ip(host[1:-1])
    return is_host(host)


def is_app_network(value: str) -> bool:
    """A network name, not Docker's `container:<id>` mode (docs/reference.md: Apps and names)."""
    return bool(NETWORK_NAME.fullmatch(value)) and not value.startswith("container:")


def is_valid_value(key: str, value: str) -> bool:
    """May `value` be stored for `key` (docs/reference.md: Properties)?"""
    if key in ("attach-post-create", "attach-post-deploy"):
        names = [name for name in (part.strip() for part in value.split(",")) if name]
        return all(is_app_network(name) and name not in ("host", "bridge", "none") for name in names)
    if key == "initial-network":
        return is_app_network(value)
    if key == "tld":
        return is_dns_name(value) and not value.rpartition(".")[2].isdigit()
    if key in ("app-network", "bind-all-interfaces"):
        return value in ("true", "false")
    return is_listener(value)


# --- network-write-ipaddr, network-write-port -----------------------------------------------------


@HOSTILE
@given(
    trigger=st.sampled_from(["network-write-ipaddr", "network-write-port"]),
    app=sometimes(APP),
    proc=sometimes("web"),
    index=sometimes("1"),
    value=st.one_of(nasty(), st.sampled_from(["10.0.0.2", "fd00::2", "8080", "65535", "65536", "0", ""])),
)
# Found by a run: a process type too long for a file name took the app's lock (making its
# folder and lock file) before the write failed.
@example(trigger="network-write-ipaddr", app=APP, proc="x" * 300, index="1", value="A")
@example(trigger="network-write-port", app=APP, proc="x" * 300, index="1", value="")
def test_write_ipaddr_and_port(capsys, *, trigger, app, proc, index, value):
    with fresh_host() as host:
        outcome = run(host, capsys, trigger, app, proc, index, value)

        assert_well_behaved(outcome)
        assert_confined(outcome.changed, app)
        if assert_app_refused(outcome, app):
            return
        kind = "IP" if trigger == "network-write-ipaddr" else "PORT"
        valid = is_host(value) if kind == "IP" else is_port(value)
        # A name longer than a file name may be (255 bytes) cannot hold a value, and holds none to remove.
        fits = len(f"{kind}.{proc}.{index}".encode()) <= NAME_MAX
        if PROCESS_TYPE.fullmatch(proc) and INDEX.fullmatch(index) and ((valid and fits) or value == ""):
            assert (outcome.code, outcome.out, outcome.err) == (0, "", "")
            target = host.home / APP / f"{kind}.{proc}.{index}"
            assert (target.read_text() if value else os.path.lexists(target)) == (value or False)
        else:
            assert outcome.code == 1
            assert outcome.changed == set()


# --- network:set -------------------------------------------------------------------------------


@HOSTILE
@given(
    app=st.one_of(st.sampled_from([APP, "--global"]), nasty()),
    key=st.one_of(st.sampled_from(KEYS), nasty()),
    values=st.lists(
        st.one_of(nasty(), st.sampled_from(["net-a", "net-a,net-b", "svc.local", "true", "10.0.0.1:80"])),
        max_size=3,
    ),
)
def test_set(capsys, app, key, values):
    with fresh_host() as host:
        outcome = run(host, capsys, "subcommands/set", "network:set", app, key, *values)

        assert_well_behaved(outcome)
        # Every change of an attach list also takes the global lock (docs/reference.md: Properties).
        assert_confined(outcome.changed - {"lib/config/network/--global/.lock"}, app)
        # Whatever was asked, what is stored is valid: it reaches docker command lines later.
        for key_name in KEYS:
            stored = host.network / app / key_name
            if (APP_NAME.fullmatch(app) or app == "--global") and os.path.isfile(stored):
                assert is_valid_value(key_name, stored.read_text()), (key_name, stored.read_text())
        if any(arg.startswith("-") for arg in [app, key, *values] if arg != "--global"):
            return  # an option to the command line parser (`--help`, `--`): only the invariants hold
        if app != "--global" and assert_app_refused(outcome, app):
            return
        if key not in KEYS:
            message = "No property specified" if key == "" else "Invalid property specified, valid properties"
            assert outcome.code == 1 and outcome.err.startswith(f"{WARN}{message}")
            assert outcome.changed == set()
            return
        if app == "--global" and key == "static-web-listener":
            assert (outcome.code, outcome.err) == (1, " !     Property cannot be specified globally\n")
            return
        if key.startswith("attach-"):
            names = [name.strip() for value in values for name in value.split(",")]
            value = ",".join(dict.fromkeys(name for name in names if name))
        else:
            value = " ".join(values)
        target = host.network / app / key
        if not value:
            assert (outcome.code, outcome.out, outcome.err) == (0, f"=====> Unsetting {key}\n", "")
            assert not target.exists()
        elif is_valid_value(key, value):
            assert (outcome.code, outcome.out, outcome.err) == (0, f"=====> Setting {key} to {value}\n", "")
            assert target.read_text() == value
        else:
            assert outcome.code == 1
            assert not target.exists()


# --- reading triggers, with hand-edited files ----------------------------------------------------


@HOSTILE
@given(
    app=sometimes(APP),
    key=st.one_of(st.sampled_from(KEYS), nasty()),
    app_value=nasty(),
    global_value=nasty(),
)
def test_get_property_of_hand_edited_files(capsys, app, key, app_value, global_value):
    with fresh_host() as host:
        if NETWORK_NAME.fullmatch(key) and len(key) < 256:  # a key with `/` or `..` names no file
            host.property(APP, key, app_value)
            host.property("--global", key, global_value)
        outcome = run(host, capsys, "network-get-property", app, key)

        assert_well_behaved(outcome)
        assert outcome.changed == set()
        if assert_app_refused(outcome, app):
            return
        if key not in KEYS:
            assert (outcome.code, outcome.out) == (1, "")
            assert outcome.err.startswith(f"{WARN}Invalid network property specified: ")
            return
        global_part = global_value.strip() if key != "static-web-listener" else ""
        value = app_value.strip() or global_part or DEFAULTS[key]
        if not value or is_valid_value(key, value):
            assert (outcome.code, outcome.out) == (0, f"{value}\n")
        else:
            # Only what its writer would store ever reaches a caller.
            assert (outcome.code, outcome.out) == (1, "")
            assert outcome.err.startswith(f"{WARN}Invalid {key} stored for {APP}: ")


@HOSTILE
@given(
    app=sometimes(APP),
    proc=sometimes("web"),
    files=st.dictionaries(
        st.one_of(
            st.sampled_from(["IP.web.1", "IP.web.2", "PORT.web.1", "IP.web.x", "IP.worker.1"]), nasty()
        ),
        st.one_of(nasty(), st.sampled_from(["10.0.0.1", "::1", "5000"])),
        max_size=4,
    ),
)
def test_get_listeners_never_print_foreign_content(capsys, app, proc, files):
    with fresh_host() as host:
        for name, content in files.items():
            path = host.home / APP / name
            if "/" in name or "\x00" in name or name in ("", ".", "..") or len(name.encode()) > 255:
                continue
            path.write_bytes(content.encode())
        outcome = run(host, capsys, "network-get-listeners", app, proc)

        deprecated = (
            f"{WARN}Deprecated: Please specify a processType argument"
            " for the network-get-listeners plugin trigger\n"
        )
        assert_well_behaved(outcome, warnings=(deprecated,))
        assert outcome.changed == set()
        if assert_app_refused(outcome, app):
            return
        assert outcome.code == 0 and outcome.out.endswith("\n")
        listeners = outcome.out[:-1].split(" ") if outcome.out != "\n" else []
        for listener in listeners:
            # The address is read back with a cheap shape check (hex digits, `.`, `:`): nothing a
            # proxy's config could mistake for syntax ever gets through.
            host_part, _, port = listener.rpartition(":")
            address = host_part[1:-1] if host_part.startswith("[") else host_part
            assert address and set(address) <= set("0123456789abcdefABCDEF.:"), listener
            assert is_port(port), listener


@HOSTILE
@given(
    trigger=st.sampled_from(
        ["docker-args-process-build", "docker-args-process-deploy", "docker-args-process-run"]
    ),
    app=sometimes(APP),
    source=st.one_of(st.sampled_from(["herokuish", "dockerfile", "pack"]), nasty()),
    app_value=st.one_of(nasty(), st.sampled_from(["net-a", "host"])),
    global_value=st.one_of(nasty(), st.sampled_from(["net-g", "none"])),
    stdin=st.text(max_size=40).map(str.encode),
)
def test_docker_args_never_carry_an_invalid_network(
    capsys, *, trigger, app, source, app_value, global_value, stdin
):
    with fresh_host() as host:
        host.property(APP, "initial-network", app_value)
        host.property("--global", "initial-network", global_value)
        outcome = run(host, capsys, trigger, app, source, "tag", "web", "1", stdin=stdin)

        assert_well_behaved(outcome)
        assert outcome.changed == set()
        if assert_app_refused(outcome, app):
            return
        network = app_value.strip() or global_value.strip()
        if (trigger == "docker-args-process-build" and source == "dockerfile") or not network:
            assert (outcome.code, outcome.out) == (0, stdin.decode())
        elif network in DOCKER_NETWORKS:
            expected = f" --network={network} {stdin.decode()}"
            assert (outcome.code, outcome.out) == (0, expected)
        elif is_app_network(network):
            # Any other network is checked on the engine first (made again when recorded; these
            # never were): never passed on unchecked, whether the engine answers or not.
            assert (outcome.code, outcome.out) == (1, "")
            missing = f"{WARN}Network {network} (the initial-network of {APP}) "
            assert outcome.err.startswith((missing, f"{WARN}Unable to reach the Docker engine at "))
        else:
            assert (outcome.code, outcome.out) == (1, "")
            assert outcome.err.startswith(f"{WARN}Invalid initial-network stored for {APP}: ")


@HOSTILE
@given(
    values=st.dictionaries(st.sampled_from(KEYS), nasty(), min_size=1),
    global_values=st.dictionaries(st.sampled_from(KEYS), nasty()),
)
def test_report_of_hand_edited_properties_keeps_its_layout(capsys, values, global_values):
    with fresh_host() as host:
        for key, value in values.items():
            host.property(APP, key, value)
        for key, value in global_values.items():
            host.property("--global", key, value)

        text = run(host, capsys, "subcommands/report", "network:report", APP)
        document = run(host, capsys, "subcommands/report", "network:report", APP, "--format", "json")
        trigger = run(host, capsys, "report", APP)

        for outcome in (text, document, trigger):
            assert (outcome.code, outcome.changed) == (0, set())
            # Each value network:set would refuse is one line on stderr, whatever it holds.
            assert all(line.startswith(f"{WARN}Invalid ") for line in outcome.err.splitlines())
            assert len(outcome.err.splitlines()) <= len(values) + len(global_values)
        lines = text.out.splitlines()
        # One line per field, whatever a hand edit put in a value (newlines, escapes).
        assert lines[0] == "=====> node-js-app network information"
        assert len(lines) == 1 + len(REPORT_FIELDS), lines
        assert all(line.startswith("       ") and line[7:8].isupper() for line in lines[1:])
        assert trigger.out == text.out
        parsed = json.loads(document.out)
        for key, value in values.items():
            assert parsed[f"network-{key}"] == parsed[key] == value.strip()


# --- triggers that take only an app name ----------------------------------------------------------


@HOSTILE
@given(
    trigger=st.sampled_from(
        [
            "post-delete",
            "network-config-exists",
            "report",
            "network-get-static-listeners",
            "post-app-clone-setup",
            "post-app-rename-setup",
        ]
    ),
    app=sometimes(APP),
    other=sometimes("other-app"),
)
def test_app_triggers(capsys, trigger, app, other):
    with fresh_host() as host:
        (host.home / "other-app").mkdir()
        for name in ("IP.web.1", "PORT.web.1", "CONTAINER.web.1"):
            (host.home / APP / name).write_text("1")
        host.property(APP, "tld", "svc.local")
        host.property("--global", "tld", "global.local")
        outcome = run(host, capsys, trigger, app, other)

        assert_well_behaved(outcome)
        if trigger in ("post-app-clone-setup", "post-app-rename-setup"):
            assert_confined(outcome.changed, app, other)
            names_valid = APP_NAME.fullmatch(app) and APP_NAME.fullmatch(other)
            # Only a new app is set up (apps:clone and apps:rename create it just before).
            if names_valid and other == app:
                assert (outcome.code, outcome.changed) == (1, set())
                assert outcome.err == f"{WARN}The new app is the old app: {app}, nothing to set up\n"
            elif names_valid and other == APP:
                assert (outcome.code, outcome.changed) == (1, set())
                assert outcome.err == (
                    f"{WARN}App {APP} already has deployed containers:"
                    " post-app-clone-setup only sets up the new app of apps:clone or apps:rename\n"
                )
            elif names_valid and os.path.isdir(host.home / other):
                assert (outcome.code, outcome.err) == (0, "")
                if (app, other) == (APP, "other-app"):
                    assert (host.network / other / "tld").read_text() == "svc.local"
            else:
                assert outcome.code != 0
                assert outcome.changed == set()
            return
        assert_confined(outcome.changed, app)
        if trigger == "post-delete":
            # Dokku already removed the app root; any valid name only drops its own folder.
            if APP_NAME.fullmatch(app):
                assert outcome.code == 0
            else:
                assert (outcome.code, outcome.err, outcome.changed) == (1, APP_NAME_ERROR, set())
            assert (host.network / "--global" / "tld").read_text() == "global.local"
            return
        if assert_app_refused(outcome, app):
            return
        assert outcome.code == 0


# --- a few cases through the installed plugin (argv cannot hold NUL) ---------------------------------


INSTALLED_CASES = [
    ("trigger", "network-write-ipaddr", APP, "../../../tmp", "1", "10.0.0.1"),
    ("trigger", "network-write-ipaddr", "../var-lib-dokku", "web", "1", "10.0.0.1"),
    ("trigger", "network-write-port", APP, "web", "1/../../x", "80"),
    ("trigger", "network-write-ipaddr", APP, "web", "1", "10.0.0.1\n--privileged"),
    ("trigger", "network-get-property", APP, "../../../etc/passwd"),
    ("trigger", "network-config-exists", ".."),
    ("trigger", "report", "--global"),
    ("trigger", "post-delete", "../home-dokku"),
    ("trigger", "docker-args-process-deploy", APP, "$(reboot)", "`id`", "web;rm", "1"),
    ("command", "set", APP, "initial-network", "net;rm -rf /"),
    ("command", "set", APP, "attach-post-deploy", "net-a,../b"),
    ("command", "set", "--global", "tld", "é.example"),
    ("command", "set", APP, "tld", "x" * 300 + "_"),
    ("command", "set", "..", "tld", "svc.local"),
    ("command", "report", "../" * 20),
    ("command", "report", APP, "--network-tld\n--x"),
]


@pytest.mark.parametrize("case", INSTALLED_CASES, ids=range(len(INSTALLED_CASES)))
def test_installed_plugin_refuses_hostile_arguments(dokku, app, case):
    dokku.write_property(app, "initial-network", "net-a;reboot")  # a hand edit
    (dokku.dokku_root / app / "IP.web.1").write_text("10.0.0.9")
    before = dokku.snapshot()
    kind, name, *args = case

    result = getattr(dokku, kind)(name, *args, stdin=" -e A=1")

    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode != 0
    assert result.stderr.startswith(WARN) and len(result.stderr.splitlines()) == 1, result.stderr
    assert "net-a;reboot" not in result.stdout
    assert dokku.snapshot() == before


def test_installed_listeners_of_a_hostile_process_type_are_empty(dokku, app):
    (dokku.dokku_root / app / "IP.web.1").write_text("10.0.0.9")
    before = dokku.snapshot()
    for proc in ["web/../..", "../node-js-app/IP", "*", "web.1", "$(id)"]:
        result = dokku.trigger("network-get-listeners", app, proc)
        assert (result.returncode, result.stdout, result.stderr) == (0, "\n", "")
    assert dokku.snapshot() == before


def test_installed_docker_args_refuse_hand_edited_network_with_shell_syntax(dokku, app):
    for value in ["net-a --privileged", "net-a\n--privileged", "$(reboot)", "net-a;id", "-net", "é"]:
        dokku.write_property(app, "initial-network", value)
        result = dokku.trigger("docker-args-process-deploy", app, "herokuish", stdin=" -e A=1")
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr.startswith(f"{WARN}Invalid initial-network stored for {app}: ")
        assert len(result.stderr.splitlines()) == 1


# --- network:create: names and address space that would leave apps unreachable ----------------------

CONTAINER_MODE_ERROR = (
    "container:<id> shares another container's network stack, which gives the app no address of its own"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["container:x"], f"Invalid network name specified: container:x, {CONTAINER_MODE_ERROR}"),
        (
            ["net-a", "--subnet", "127.0.0.0/8"],
            "Invalid subnet specified: 127.0.0.0/8,"
            " it overlaps 127.0.0.0/8, loopback space (the host's own addresses)",
        ),
        (
            ["net-a", "--subnet", "169.254.0.0/16"],
            "Invalid subnet specified: 169.254.0.0/16,"
            " it overlaps 169.254.0.0/16, link-local space (never routed)",
        ),
        (
            ["net-a", "--subnet", "224.0.0.0/4"],
            "Invalid subnet specified: 224.0.0.0/4, it overlaps 224.0.0.0/4, multicast space",
        ),
        (
            ["net-a", "--subnet", "0.0.0.0/8"],
            "Invalid subnet specified: 0.0.0.0/8, it overlaps 0.0.0.0/8, unspecified space",
        ),
        (
            ["net-a", "--subnet", "0.0.0.0/0"],
            "Invalid subnet specified: 0.0.0.0/0, it overlaps 0.0.0.0/8, unspecified space",
        ),
        (
            ["net-a", "--subnet", "240.0.0.0/4"],
            "Invalid subnet specified: 240.0.0.0/4, it overlaps 240.0.0.0/4, reserved space",
        ),
        (
            ["net-a", "--subnet", "10.0.0.0/8", "--ip-range", "127.0.0.0/24"],
            "Invalid ip range specified: 127.0.0.0/24,"
            " it overlaps 127.0.0.0/8, loopback space (the host's own addresses)",
        ),
        (
            ["net-a", "--subnet", "10.0.0.0/8", "--gateway", "127.0.0.1"],
            "Invalid gateway specified: 127.0.0.1,"
            " it overlaps 127.0.0.0/8, loopback space (the host's own addresses)",
        ),
        (
            ["net-a", "--ipv6", "--subnet", "fe80::/64"],
            "Invalid subnet specified: fe80::/64, it overlaps fe80::/10, link-local space (never routed)",
        ),
        (
            ["net-a", "--ipv6", "--subnet", "ff05::/64"],
            "Invalid subnet specified: ff05::/64, it overlaps ff00::/8, multicast space",
        ),
        (
            ["net-a", "--ipv6", "--subnet", "::1/128"],
            "Invalid subnet specified: ::1/128, it overlaps ::1/128, loopback space (the host's own address)",
        ),
        (
            ["net-a", "--ipv6", "--subnet", "4000::/64"],
            "Invalid subnet specified: 4000::/64, it lies outside global unicast (2000::/3)"
            " and unique local (fc00::/7) space: reserved",
        ),
        (
            ["net-a", "--ipv6", "--subnet", "fd00::/64", "--gateway", "fd00::1%eth0"],
            "Invalid gateway specified: fd00::1%eth0,"
            " a scoped address (%zone) names one of the host's interfaces",
        ),
        (
            ["net-a", "--ipv6", "--subnet", "fd00::%eth0/64"],
            "Invalid subnet specified: fd00::%eth0/64,"
            " a scoped address (%zone) names one of the host's interfaces",
        ),
    ],
)
def test_create_refuses_what_leaves_apps_unreachable(capsys, args, message):
    with fresh_host() as host:
        outcome = run(host, capsys, "subcommands/create", "network:create", *args)

    assert (outcome.code, outcome.out, outcome.err) == (1, "", f"{WARN}{message}\n")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "initial-network",
            "container:x",
            f"Invalid network name specified: container:x, {CONTAINER_MODE_ERROR}",
        ),
        (
            "attach-post-create",
            "container:x",
            f"Invalid network name specified: container:x, {CONTAINER_MODE_ERROR}",
        ),
        ("attach-post-deploy", "net-a,none", "Invalid network name specified for attach: none"),
        ("attach-post-create", "none", "Invalid network name specified for attach: none"),
    ],
)
@pytest.mark.parametrize("owner", [APP, "--global"])
def test_set_refuses_container_mode_and_none_in_attach_lists(capsys, owner, key, value, message):
    with fresh_host() as host:
        outcome = run(host, capsys, "subcommands/set", "network:set", owner, key, value)

    assert (outcome.code, outcome.out, outcome.err, outcome.changed) == (1, "", f"{WARN}{message}\n", set())


@pytest.mark.parametrize("value", ["host", "none", "bridge", "net-a"])
def test_initial_network_keeps_dockers_own_modes(capsys, value):
    with fresh_host() as host:
        outcome = run(host, capsys, "subcommands/set", "network:set", APP, "initial-network", value)

        # Docker's own modes are no networks to check; net-a is one, and neither exists nor
        # has a record (or the engine is out of reach, and nothing is checked).
        missing = f"{WARN}Network net-a does not exist: {APP}'s next deploy stops on it until it does"
        assert outcome.code == 0
        assert (
            outcome.err in ("", f"{missing} (dokku network:create net-a)\n")
            if value == "net-a"
            else not outcome.err
        )
        assert (host.network / APP / "initial-network").read_text() == value


def test_docker_args_refuse_a_stored_container_mode(capsys):
    with fresh_host() as host:
        host.property(APP, "initial-network", "container:0123abcd")
        outcome = run(host, capsys, "docker-args-process-deploy", APP, "herokuish", stdin=b" -e A=1")

    assert (outcome.code, outcome.out) == (1, "")
    assert outcome.err == f"{WARN}Invalid initial-network stored for {APP}: container:0123abcd\n"


# --- control characters: refused when given, escaped when printed ------------------------------------


@pytest.mark.parametrize("option", ["--label", "--opt"])
@pytest.mark.parametrize(
    ("value", "escaped"),
    [("x=y\n\x1b[31mRED", "x=y\\n\\x1b[31mRED"), ("x=a\tb", "x=a\\tb"), ("x=\u202eevil", "x=\\u202eevil")],
)
def test_create_refuses_control_characters_in_values(capsys, option, value, escaped):
    with fresh_host() as host:
        outcome = run(host, capsys, "subcommands/create", "network:create", "net-a", option, value)

    what = "label" if option == "--label" else "option"
    assert (outcome.code, outcome.out) == (1, "")
    assert outcome.err == f"{WARN}Invalid {what} specified: {escaped}, control characters are not allowed\n"


def test_get_property_refuses_what_its_writer_refuses(capsys):
    with fresh_host() as host:
        host.property(APP, "initial-network", "evil --privileged -v /:/host")
        outcome = run(host, capsys, "network-get-property", APP, "initial-network")

    assert (outcome.code, outcome.out) == (1, "")
    assert outcome.err == f"{WARN}Invalid initial-network stored for {APP}: evil --privileged -v /:/host\n"


def test_get_property_escapes_a_refused_value_in_its_one_line(capsys):
    with fresh_host() as host:
        host.property("--global", "tld", "svc\n\x1b[31mRED")
        outcome = run(host, capsys, "network-get-property", APP, "tld")

    assert (outcome.code, outcome.out) == (1, "")
    assert outcome.err == f"{WARN}Invalid tld stored for {APP}: svc\\n\\x1b[31mRED\n"


def test_report_flag_escapes_a_hand_edited_value(capsys):
    with fresh_host() as host:
        host.property(APP, "tld", "svc\n\x1b[31mRED")
        outcome = run(host, capsys, "subcommands/report", "network:report", APP, "--network-tld")

    assert (outcome.code, outcome.out) == (0, "svc\\n\\x1b[31mRED\n")
    # Flagged, escaped as the value is: network:set would refuse it.
    assert outcome.err == (
        f"{WARN}Invalid tld stored for {APP}: svc\\n\\x1b[31mRED: network:set refuses it, and the"
        f" triggers that read it stop on it; set it again (dokku network:set {APP} tld <value>) or unset it\n"
    )


# --- the low findings: each reproducer of the adversarial pass ---------------------------------------


def test_a_fifo_as_ip_or_container_file_never_blocks_a_trigger(dokku, app):
    """Each run would wait forever on the FIFO (the host's 120 s bound then fails the test);
    it is one line, as a folder in its place is."""
    root = dokku.dokku_root / app
    for name in ("IP.web.1", "IP.web.2", "CONTAINER.web.1"):
        os.mkfifo(root / name)

    listeners = dokku.trigger("network-get-listeners", app, "web")
    build = dokku.trigger("network-build-config", app)
    write = dokku.trigger("network-write-ipaddr", app, "web", "2", "10.0.0.2")

    assert (listeners.returncode, listeners.stdout) == (1, "")
    assert listeners.stderr == f"{WARN}Not a regular file: {root}/IP.web.1\n"
    assert (build.returncode, build.stdout) == (0, "")
    unreadable = f"Not a regular file: {root}/CONTAINER.web.1"
    assert build.stderr == f"{WARN}Unable to build the network configuration of {app}: {unreadable}\n"
    assert (write.returncode, write.stderr) == (0, "")
    assert (root / "IP.web.2").read_text() == "10.0.0.2"  # the FIFO replaced, never written through


@pytest.mark.parametrize(
    ("trigger", "args", "message"),
    [
        (
            "network-write-ipaddr",
            ["web", "1", "\u212aelvin.local"],
            "Invalid IP address or host name specified: \u212aelvin.local",
        ),
        ("network-write-ipaddr", ["web", "01", "10.0.0.1"], "Invalid container index specified: 01"),
        (
            "network-write-ipaddr",
            ["web", "99999999999999999999", "10.0.0.1"],
            "Invalid container index specified: 99999999999999999999",
        ),
        (
            "network-write-port",
            ["web", "1", "0080"],
            "Invalid port specified, must be between 1 and 65535: 0080",
        ),
    ],
)
def test_write_refuses_non_ascii_hosts_and_padded_numbers(capsys, trigger, args, message):
    with fresh_host() as host:
        outcome = run(host, capsys, trigger, APP, *args)

    assert (outcome.code, outcome.out, outcome.err, outcome.changed) == (1, "", f"{WARN}{message}\n", set())


def test_a_padded_index_is_no_second_upstream(capsys):
    with fresh_host() as host:
        (host.home / APP / "IP.web.1").write_text("10.0.0.1")
        (host.home / APP / "IP.web.01").write_text("10.0.0.1")
        outcome = run(host, capsys, "network-get-listeners", APP, "web")

    assert (outcome.code, outcome.out, outcome.err) == (0, "10.0.0.1:5000\n", "")


@pytest.mark.parametrize(
    "tld", ["a" * 64 + ".local", ".".join(["a" * 63] * 4), "123", "svc.1", "\u212a.local", "svc.loca\u212a"]
)
def test_tld_beyond_dns_limits_is_refused(capsys, tld):
    with fresh_host() as host:
        outcome = run(host, capsys, "subcommands/set", "network:set", APP, "tld", tld)

    message = f"Invalid tld specified, must be a lowercase DNS name: {tld}"
    assert (outcome.code, outcome.out, outcome.err, outcome.changed) == (1, "", f"{WARN}{message}\n", set())


def test_tld_within_dns_limits_is_stored(capsys):
    tld = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    with fresh_host() as host:
        outcome = run(host, capsys, "subcommands/set", "network:set", APP, "tld", tld)

        assert (outcome.code, outcome.err) == (0, "")
        assert (host.network / APP / "tld").read_text() == tld


@pytest.mark.root
def test_a_huge_app_label_makes_a_short_warning(host_paths, capsys):
    """The watcher rebuilds the app a container label names: a 10k-character one is cut in the
    warning of a rebuild that fails (DOKKU_ROOT is a link of the Dokku user's, refused). An app
    of that name cannot exist: without a failure its rebuild is nothing at all."""
    from network_plugin.network_config import build_config

    if os.geteuid() != 0:
        pytest.skip("only root refuses a link another user owns")
    dokku_root, _ = host_paths
    dokku_root.rename(dokku_root.with_name("moved"))
    dokku_root.symlink_to(dokku_root.with_name("moved"))
    os.lchown(dokku_root, 12345, 12345)

    result = build_config(["a" * 10000])

    err = capsys.readouterr().err
    assert result.failures == 1
    assert len(err.splitlines()) == 1 and len(err) < 600, err
    assert err.startswith(
        f"{WARN}Unable to build the network configuration of {'a' * 100}... (10000 characters): "
    )


def test_clone_setup_onto_a_deployed_app_changes_nothing(capsys):
    """apps:clone and apps:rename create the new app just before; an app with deployed
    containers is not theirs: its IP files and properties stay."""
    with fresh_host() as host:
        (host.home / "other-app").mkdir()
        host.property("other-app", "tld", "svc.local")
        for name, content in (("CONTAINER.web.1", "abc"), ("IP.web.1", "10.0.0.1"), ("PORT.web.1", "5000")):
            (host.home / APP / name).write_text(content)
        host.property(APP, "initial-network", "net-a")

        outcomes = [
            run(host, capsys, trigger, "other-app", APP)
            for trigger in ("post-app-clone-setup", "post-app-rename-setup")
        ]

    for outcome in outcomes:
        assert (outcome.code, outcome.out, outcome.changed) == (1, "", set())
        assert outcome.err == (
            f"{WARN}App {APP} already has deployed containers:"
            " post-app-clone-setup only sets up the new app of apps:clone or apps:rename\n"
        )


def test_clone_setup_gives_the_new_app_exactly_the_old_apps_properties(capsys):
    with fresh_host() as host:
        (host.home / "new-app").mkdir()
        host.property("new-app", "bind-all-interfaces", "false")  # an older Dokku's post-create
        host.property("new-app", "tld", "new.local")
        host.property(APP, "tld", "svc.local")
        host.property(APP, "attach-post-deploy", "net-a")
        outcome = run(host, capsys, "post-app-clone-setup", APP, "new-app")

        assert (outcome.code, outcome.out, outcome.err) == (0, "", "")
        assert {
            path.name: path.read_text()
            for path in (host.network / "new-app").iterdir()
            if path.name != ".lock"
        } == {
            "tld": "svc.local",
            "attach-post-deploy": "net-a",
        }
