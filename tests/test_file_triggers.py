"""The triggers that only read and write files, called as plugn calls them
(docs/reference.md: Files on disk, Triggers)."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest

APP = "node-js-app"
OTHER = "other-app"
APP_NAME_ERROR = (
    " !     App name must begin with lowercase alphanumeric character,"
    " and may only contain lowercase alphanumerics, dots, and hyphens\n"
)
MISSING_APP_ERROR = " !     App missing-app does not exist\n"
DEPRECATED_WARNING = (
    " !     Deprecated: Please specify a processType argument for the network-get-listeners plugin trigger\n"
)
DOCKER_ARGS_TRIGGERS = ["docker-args-process-build", "docker-args-process-deploy", "docker-args-process-run"]
DOCKER_ARGS = " -e 'GREETING=hello world' --label com.example=1 --restart=on-failure:10\n"


def outcome(result):
    return (result.returncode, result.stdout, result.stderr)


@pytest.fixture
def root(dokku, app):
    return dokku.dokku_root / app


# --- post-create, post-delete -------------------------------------------------------------------


def test_post_create_writes_nothing(dokku, app):
    # A new app gets no bind-all-interfaces of its own, so that a global value reaches it;
    # the plugin has no post-create executable at all (plugn skips it, the deploy pays nothing).
    before = dokku.snapshot()
    assert outcome(dokku.plugn_trigger("post-create", app)) == (0, "", "")
    assert not (dokku.plugin_dir / "post-create").exists()
    assert dokku.snapshot() == before


def test_post_delete_removes_property_folder(dokku, app):
    dokku.write_property(app, "tld", "svc.local")
    dokku.write_property(app, "bind-all-interfaces", "false")
    shutil.rmtree(dokku.dokku_root / app)  # Dokku removes the app root first
    assert outcome(dokku.trigger("post-delete", app)) == (0, "", "")
    assert not (dokku.properties_root / app).exists()


def test_post_delete_keeps_other_apps_and_global(dokku, app):
    dokku.write_property(app, "tld", "svc.local")
    dokku.write_property(OTHER, "tld", "other.local")
    dokku.write_property("--global", "tld", "global.local")
    dokku.trigger("post-delete", app)
    assert dokku.property_file(OTHER, "tld").read_text() == "other.local"
    assert dokku.property_file("--global", "tld").read_text() == "global.local"


def test_post_delete_of_app_without_properties_succeeds(dokku):
    assert outcome(dokku.trigger("post-delete", "never-configured")) == (0, "", "")


@pytest.mark.parametrize("name", ["--global", "..", ".", "", "a/b", "../network"])
def test_post_delete_refuses_names_that_are_not_apps(dokku, name):
    dokku.write_property("--global", "tld", "global.local")
    before = dokku.snapshot()
    assert outcome(dokku.trigger("post-delete", name)) == (1, "", APP_NAME_ERROR)
    assert dokku.snapshot() == before


# --- post-app-clone-setup, post-app-rename-setup --------------------------------------------------


@pytest.fixture
def old_and_new(dokku, app):
    """`node-js-app` with properties; `other-app` freshly created (no container yet) with stale
    network files."""
    dokku.write_property(app, "attach-post-create", "net-a,net-b")
    dokku.write_property(app, "bind-all-interfaces", "true")
    dokku.write_property(app, "tld", "svc.local")
    new_root = dokku.create_app(OTHER)
    for name in ["IP.web.1", "PORT.web.1", "IP.worker.2", "PORT.worker.2", "ENV"]:
        (new_root / name).write_text("x")
    dokku.write_property(OTHER, "bind-all-interfaces", "false")  # what post-create wrote
    dokku.write_property(OTHER, "initial-network", "net-x")  # the old app has none: not kept
    return app, OTHER


@pytest.mark.parametrize("trigger", ["post-app-clone-setup", "post-app-rename-setup"])
def test_clone_and_rename_remove_network_files_of_new_app(dokku, old_and_new, trigger):
    old, new = old_and_new
    assert outcome(dokku.trigger(trigger, old, new)) == (0, "", "")
    assert sorted(path.name for path in (dokku.dokku_root / new).iterdir()) == ["ENV"]


@pytest.mark.parametrize("trigger", ["post-app-clone-setup", "post-app-rename-setup"])
def test_clone_and_rename_copy_properties(dokku, old_and_new, trigger):
    old, new = old_and_new
    dokku.trigger(trigger, old, new)
    copied = {path.name: path.read_bytes() for path in (dokku.properties_root / new).iterdir()}
    assert {name: copied[name] for name in copied if not name.startswith(".")} == {
        "attach-post-create": b"net-a,net-b",
        "bind-all-interfaces": b"true",
        "tld": b"svc.local",
    }
    assert all(stat.S_IMODE((dokku.properties_root / new / name).stat().st_mode) == 0o600 for name in copied)


def test_clone_keeps_old_properties(dokku, old_and_new):
    old, new = old_and_new
    dokku.trigger("post-app-clone-setup", old, new)
    assert dokku.property_file(old, "tld").read_bytes() == b"svc.local"
    assert dokku.property_file(old, "attach-post-create").read_bytes() == b"net-a,net-b"


def test_rename_removes_old_properties(dokku, old_and_new):
    old, new = old_and_new
    dokku.trigger("post-app-rename-setup", old, new)
    assert not (dokku.properties_root / old).exists()


def test_clone_copies_reference_written_values(dokku, old_and_new):
    old, new = old_and_new
    dokku.write_property(old, "initial-network", "net-init\n")
    dokku.trigger("post-app-clone-setup", old, new)
    result = dokku.trigger("network-get-property", new, "initial-network")
    assert outcome(result) == (0, "net-init\n", "")


@pytest.mark.parametrize("trigger", ["post-app-clone-setup", "post-app-rename-setup"])
def test_clone_and_rename_to_missing_app_are_refused(dokku, app, trigger):
    dokku.write_property(app, "tld", "svc.local")
    before = dokku.snapshot()
    assert outcome(dokku.trigger(trigger, app, "missing-app")) == (20, "", MISSING_APP_ERROR)
    assert dokku.snapshot() == before


@pytest.mark.parametrize("trigger", ["post-app-clone-setup", "post-app-rename-setup"])
@pytest.mark.parametrize(("old", "new"), [("..", OTHER), ("--global", OTHER), (APP, ".."), (APP, "")])
def test_clone_and_rename_refuse_invalid_names(dokku, old_and_new, trigger, old, new):
    before = dokku.snapshot()
    assert outcome(dokku.trigger(trigger, old, new)) == (1, "", APP_NAME_ERROR)
    assert dokku.snapshot() == before


# --- docker-args-process-* ------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", DOCKER_ARGS_TRIGGERS)
def test_docker_args_without_initial_network_echo_stdin(dokku, app, trigger):
    result = dokku.trigger(trigger, app, "herokuish", "latest", "web", "1", stdin=DOCKER_ARGS)
    assert outcome(result) == (0, DOCKER_ARGS, "")


# Docker's own networks here: the prefix is shown without an engine. Other networks are
# made again first when missing (tests/test_network_records.py).
@pytest.mark.parametrize("trigger", DOCKER_ARGS_TRIGGERS)
def test_docker_args_prefix_app_initial_network(dokku, app, trigger):
    dokku.write_property(app, "initial-network", "host")
    result = dokku.trigger(trigger, app, "herokuish", stdin=DOCKER_ARGS)
    assert outcome(result) == (0, f" --network=host {DOCKER_ARGS}", "")


@pytest.mark.parametrize("trigger", DOCKER_ARGS_TRIGGERS)
def test_docker_args_prefix_global_initial_network(dokku, app, trigger):
    dokku.write_property("--global", "initial-network", "none")
    result = dokku.trigger(trigger, app, "herokuish", stdin=DOCKER_ARGS)
    assert outcome(result) == (0, f" --network=none {DOCKER_ARGS}", "")


def test_docker_args_app_initial_network_wins_over_global(dokku, app):
    dokku.write_property("--global", "initial-network", "none")
    dokku.write_property(app, "initial-network", "host")
    result = dokku.trigger("docker-args-process-deploy", app, "herokuish", stdin=DOCKER_ARGS)
    assert result.stdout == f" --network=host {DOCKER_ARGS}"


def test_docker_args_read_reference_written_initial_network(dokku, app):
    dokku.write_property(app, "initial-network", "host\n")
    result = dokku.trigger("docker-args-process-deploy", app, "herokuish", stdin=DOCKER_ARGS)
    assert outcome(result) == (0, f" --network=host {DOCKER_ARGS}", "")


def test_docker_args_with_empty_stdin_print_only_network(dokku, app):
    dokku.write_property(app, "initial-network", "host")
    result = dokku.trigger("docker-args-process-run", app, "herokuish", stdin="")
    assert outcome(result) == (0, " --network=host ", "")


@pytest.mark.parametrize("network", ["", "net-init"])
def test_dockerfile_build_never_gets_network(dokku, app, network):
    dokku.write_property(app, "initial-network", network)
    result = dokku.trigger("docker-args-process-build", app, "dockerfile", stdin=DOCKER_ARGS)
    assert outcome(result) == (0, DOCKER_ARGS, "")


def test_dockerfile_build_ignores_global_network(dokku, app):
    dokku.write_property("--global", "initial-network", "net-global")
    result = dokku.trigger("docker-args-process-build", app, "dockerfile", stdin=DOCKER_ARGS)
    assert outcome(result) == (0, DOCKER_ARGS, "")


@pytest.mark.parametrize("trigger", ["docker-args-process-deploy", "docker-args-process-run"])
def test_dockerfile_deploy_and_run_get_network(dokku, app, trigger):
    dokku.write_property(app, "initial-network", "host")
    result = dokku.trigger(trigger, app, "dockerfile", stdin=DOCKER_ARGS)
    assert result.stdout == f" --network=host {DOCKER_ARGS}"


@pytest.mark.parametrize("trigger", DOCKER_ARGS_TRIGGERS)
@pytest.mark.parametrize("value", ["net; rm -rf /", "net --privileged", "$(id)", "-net"])
def test_docker_args_refuse_hand_edited_invalid_network(dokku, app, trigger, value):
    dokku.write_property(app, "initial-network", value)
    result = dokku.trigger(trigger, app, "herokuish", stdin=DOCKER_ARGS)
    stderr = f" !     Invalid initial-network stored for {APP}: {value}\n"
    assert outcome(result) == (1, "", stderr)


def test_docker_args_refuse_hand_edited_invalid_global_network(dokku, app):
    dokku.write_property("--global", "initial-network", "a b")
    result = dokku.trigger("docker-args-process-deploy", app, "herokuish", stdin=DOCKER_ARGS)
    assert (result.returncode, result.stdout) == (1, "")
    assert "--network" not in result.stdout + result.stderr.replace("initial-network", "")


@pytest.mark.parametrize("trigger", DOCKER_ARGS_TRIGGERS)
def test_docker_args_of_missing_app_are_refused(dokku, trigger):
    result = dokku.trigger(trigger, "missing-app", "herokuish", stdin=DOCKER_ARGS)
    assert outcome(result) == (20, "", MISSING_APP_ERROR)


def run_bytes(dokku, trigger, args, stdin, env):
    return subprocess.run(
        [str(dokku.plugin_dir / trigger), *args],
        input=stdin,
        env=dokku.env | env,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def utf8_locale(tmp_path_factory):
    """A compiled en_US.UTF-8 locale (the usual Dokku host locale), or skip if it cannot be built."""
    localedef = shutil.which("localedef")
    if localedef is None:
        pytest.skip("localedef is not available")
    folder = tmp_path_factory.mktemp("locales")
    result = subprocess.run(
        [localedef, "-i", "en_US", "-f", "UTF-8", str(folder / "en_US.UTF-8")],
        capture_output=True,
        check=False,
    )
    if not (folder / "en_US.UTF-8").is_dir():
        pytest.skip(f"cannot build en_US.UTF-8: {result.stderr!r}")
    return {"LOCPATH": str(folder), "LANG": "en_US.UTF-8", "LC_ALL": "en_US.UTF-8"}


def test_docker_args_echo_utf8_stdin_unchanged(dokku, app, utf8_locale):
    stdin = " -e 'GREETING=grüß dich' \r\n".encode()
    result = run_bytes(dokku, "docker-args-process-deploy", [app, "herokuish"], stdin, utf8_locale)
    assert (result.returncode, result.stdout, result.stderr) == (0, stdin, b"")


def test_docker_args_echo_non_utf8_stdin_unchanged(dokku, app, utf8_locale):
    dokku.write_property(app, "initial-network", "host")
    stdin = b" -e 'LEGACY=caf\xe9' "
    result = run_bytes(dokku, "docker-args-process-deploy", [app, "herokuish"], stdin, utf8_locale)
    assert (result.returncode, result.stdout, result.stderr) == (0, b" --network=host " + stdin, b"")


# --- network-clear-config, network-config-exists ------------------------------------------------------


def test_clear_config_touches_nothing(dokku, root):
    # nginx calls it at every ps:restore, then rebuilds only when network-config-exists says true.
    names = [
        "IP.web.1",
        "PORT.web.1",
        "IP.worker.3",
        "PORT.worker.3",
        "CONTAINER.web.1",
        "DOKKU_SCALE",
        "ENV",
    ]
    for name in names:
        (root / name).write_text("x")
    before = dokku.snapshot()
    assert outcome(dokku.plugn_trigger("network-clear-config", APP)) == (0, "", "")
    assert dokku.snapshot() == before
    assert outcome(dokku.trigger("network-config-exists", APP)) == (0, "true\n", "")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([], "false"),
        (["IP.web.1"], "false"),
        (["PORT.web.1"], "false"),
        (["IP.web.2", "PORT.web.2"], "false"),
        (["IP.worker.1", "PORT.worker.1"], "false"),
        (["IP.web.1", "PORT.web.1"], "true"),
    ],
)
def test_config_exists_needs_ip_and_port_of_web_1(dokku, root, files, expected):
    for name in files:
        (root / name).write_text("5000" if name.startswith("PORT") else "10.0.0.1")
    assert outcome(dokku.trigger("network-config-exists", APP)) == (0, f"{expected}\n", "")


def test_config_exists_with_static_web_listener(dokku, app):
    dokku.write_property(app, "static-web-listener", "10.0.0.9:80")
    assert outcome(dokku.trigger("network-config-exists", app)) == (0, "true\n", "")


def test_config_exists_of_missing_app_is_refused(dokku):
    assert outcome(dokku.trigger("network-config-exists", "missing-app")) == (20, "", MISSING_APP_ERROR)


# --- network-get-listeners, network-get-static-listeners ---------------------------------------------


def write_container(root, proc, index, ip, port=None):
    (root / f"IP.{proc}.{index}").write_text(ip)
    if port is not None:
        (root / f"PORT.{proc}.{index}").write_text(port)


def test_listeners_in_index_order(dokku, root):
    write_container(root, "web", "10", "10.0.0.10", "5010")
    write_container(root, "web", "2", "10.0.0.2", "5002")
    write_container(root, "web", "1", "10.0.0.1", "5001")
    result = dokku.trigger("network-get-listeners", APP, "web")
    assert outcome(result) == (0, "10.0.0.1:5001 10.0.0.2:5002 10.0.0.10:5010\n", "")


def test_listener_without_port_file_uses_5000(dokku, root):
    write_container(root, "web", "1", "10.0.0.1")
    assert dokku.trigger("network-get-listeners", APP, "web").stdout == "10.0.0.1:5000\n"


def test_listeners_of_other_process_type(dokku, root):
    write_container(root, "web", "1", "10.0.0.1", "5000")
    write_container(root, "worker", "1", "10.0.1.1", "6000")
    write_container(root, "worker", "2", "10.0.1.2")
    result = dokku.trigger("network-get-listeners", APP, "worker")
    assert outcome(result) == (0, "10.0.1.1:6000 10.0.1.2:5000\n", "")


def test_listeners_without_containers_print_empty_line(dokku, app):
    assert outcome(dokku.trigger("network-get-listeners", app, "web")) == (0, "\n", "")


def test_static_web_listener_replaces_web_listeners(dokku, root):
    write_container(root, "web", "1", "10.0.0.1", "5000")
    dokku.write_property(APP, "static-web-listener", "192.168.1.5:8080")
    assert outcome(dokku.trigger("network-get-listeners", APP, "web")) == (0, "192.168.1.5:8080\n", "")


def test_static_web_listener_does_not_change_other_process_types(dokku, root):
    write_container(root, "worker", "1", "10.0.1.1", "6000")
    dokku.write_property(APP, "static-web-listener", "192.168.1.5:8080")
    assert dokku.trigger("network-get-listeners", APP, "worker").stdout == "10.0.1.1:6000\n"


def test_listeners_without_process_type_warn_and_use_web(dokku, root):
    write_container(root, "web", "1", "10.0.0.1", "5001")
    write_container(root, "worker", "1", "10.0.1.1", "6000")
    result = dokku.trigger("network-get-listeners", APP)
    assert outcome(result) == (0, "10.0.0.1:5001\n", DEPRECATED_WARNING)


def test_listeners_of_missing_app_are_refused(dokku):
    assert outcome(dokku.trigger("network-get-listeners", "missing-app", "web")) == (
        20,
        "",
        MISSING_APP_ERROR,
    )


def test_static_listeners_print_static_web_listener(dokku, app):
    dokku.write_property(app, "static-web-listener", "192.168.1.5:8080")
    result = dokku.trigger("network-get-static-listeners", app, "web")
    assert outcome(result) == (0, "192.168.1.5:8080\n", "")


def test_static_listeners_unset_print_empty_line(dokku, app):
    assert outcome(dokku.trigger("network-get-static-listeners", app, "web")) == (0, "\n", "")


# --- network-get-property -----------------------------------------------------------------------------


PROPERTY_DEFAULTS = {
    "attach-post-create": "",
    "attach-post-deploy": "",
    "bind-all-interfaces": "false",
    "initial-network": "",
    "static-web-listener": "",
    "tld": "",
}
GLOBAL_KEYS = [key for key in PROPERTY_DEFAULTS if key != "static-web-listener"]


@pytest.mark.parametrize(("key", "default"), PROPERTY_DEFAULTS.items())
def test_get_property_default(dokku, app, key, default):
    assert outcome(dokku.trigger("network-get-property", app, key)) == (0, f"{default}\n", "")


# A value of each property that its writer accepts, global and the app's.
GLOBAL_VALUES = {
    "attach-post-create": "net-g",
    "attach-post-deploy": "net-g",
    "bind-all-interfaces": "true",
    "initial-network": "net-g",
    "static-web-listener": "10.0.0.1:80",
    "tld": "global.local",
}
APP_VALUES = GLOBAL_VALUES | {
    "attach-post-create": "net-a",
    "attach-post-deploy": "net-a",
    "bind-all-interfaces": "false",
    "initial-network": "net-a",
    "static-web-listener": "10.0.0.2:8080",
    "tld": "app.local",
}


@pytest.mark.parametrize("key", GLOBAL_KEYS)
def test_get_property_falls_back_to_global(dokku, app, key):
    dokku.write_property("--global", key, GLOBAL_VALUES[key])
    assert dokku.trigger("network-get-property", app, key).stdout == f"{GLOBAL_VALUES[key]}\n"


@pytest.mark.parametrize("key", PROPERTY_DEFAULTS)
def test_get_property_app_value_wins(dokku, app, key):
    dokku.write_property("--global", key, GLOBAL_VALUES[key])
    dokku.write_property(app, key, APP_VALUES[key])
    assert dokku.trigger("network-get-property", app, key).stdout == f"{APP_VALUES[key]}\n"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("initial-network", "evil --privileged -v /:/host"),
        ("attach-post-create", "net-a,none"),
        ("bind-all-interfaces", "yes"),
        ("tld", "svc\n\x1b[31mRED"),
        ("static-web-listener", "10.0.0.1:99999"),
    ],
)
def test_get_property_refuses_a_value_its_writer_refuses(dokku, app, key, value):
    dokku.write_property(app, key, value)
    escaped = value.replace("\n", "\\n").replace("\x1b", "\\x1b")
    stderr = f" !     Invalid {key} stored for {app}: {escaped}\n"
    assert outcome(dokku.trigger("network-get-property", app, key)) == (1, "", stderr)


def test_get_property_empty_app_file_means_unset(dokku, app):
    dokku.write_property("--global", "tld", "global.local")
    dokku.write_property(app, "tld", "")
    assert dokku.trigger("network-get-property", app, "tld").stdout == "global.local\n"


def test_static_web_listener_is_never_global(dokku, app):
    dokku.write_property("--global", "static-web-listener", "10.0.0.1:80")
    assert dokku.trigger("network-get-property", app, "static-web-listener").stdout == "\n"


@pytest.mark.parametrize("key", ["foo", "network-tld", "TLD", ""])
def test_get_property_unknown_key_is_refused(dokku, app, key):
    stderr = f" !     Invalid network property specified: {key}\n"
    assert outcome(dokku.trigger("network-get-property", app, key)) == (1, "", stderr)


def test_get_property_of_missing_app_is_refused(dokku):
    assert outcome(dokku.trigger("network-get-property", "missing-app", "tld")) == (20, "", MISSING_APP_ERROR)


# --- network-write-ipaddr, network-write-port ------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    ["10.0.0.1", "172.17.0.2", "fd00::1", "2001:db8::8a2e:370:7334", "::1", "localhost", "Db-1.internal"],
)
def test_write_ipaddr_writes_exact_content(dokku, root, ip):
    assert outcome(dokku.trigger("network-write-ipaddr", APP, "web", "1", ip)) == (0, "", "")
    assert (root / "IP.web.1").read_bytes() == ip.encode()


def test_write_ipaddr_replaces_previous_address(dokku, root):
    (root / "IP.worker.3").write_text("10.0.0.1")
    dokku.trigger("network-write-ipaddr", APP, "worker", "3", "10.0.0.2")
    assert (root / "IP.worker.3").read_bytes() == b"10.0.0.2"


def test_write_ipaddr_then_listeners(dokku, app):
    dokku.trigger("network-write-ipaddr", app, "web", "1", "10.0.0.1")
    dokku.trigger("network-write-port", app, "web", "1", "3000")
    assert dokku.trigger("network-get-listeners", app, "web").stdout == "10.0.0.1:3000\n"


@pytest.mark.parametrize("port", ["1", "5000", "65535"])
def test_write_port_writes_exact_content(dokku, root, port):
    assert outcome(dokku.trigger("network-write-port", APP, "web", "2", port)) == (0, "", "")
    assert (root / "PORT.web.2").read_bytes() == port.encode()


def test_write_port_legacy_process_type_with_underscore(dokku, root):
    assert dokku.trigger("network-write-port", APP, "my_worker", "1", "8080").returncode == 0
    assert (root / "PORT.my_worker.1").read_bytes() == b"8080"


@pytest.mark.parametrize("trigger", ["network-write-ipaddr", "network-write-port"])
def test_an_empty_value_for_a_process_type_too_long_for_a_file_name_removes_nothing_and_succeeds(
    dokku, root, trigger
):
    # Found by hypothesis: no such file can exist, so there is nothing to remove.
    result = dokku.trigger(trigger, APP, "x" * 400, "1", "")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def shown(value: str) -> str:
    """How an error line shows user input: control characters escaped, so it stays one line."""
    return value.replace("\n", "\\n")


def assert_bad_input(dokku, trigger, args, stderr, exit_code=1):
    """Run a trigger with bad input: one error line, no traceback, nothing written anywhere."""
    before = dokku.snapshot()
    result = dokku.trigger(trigger, *args)
    assert "Traceback" not in result.stderr
    assert outcome(result) == (exit_code, "", stderr)
    assert dokku.snapshot() == before


@pytest.mark.parametrize(
    "ip",
    [
        *["10.0.0.256", "10.0.0", "1.2.3.4.5", "host_name", "-host", "a..b"],
        *["10.0.0.1\n", "10.0.0.1 ", "10.0.0.1;id", "1.2.3.4/24", "fe80::1%eth0"],
    ],
)
def test_write_ipaddr_refuses_non_ip(dokku, app, ip):
    assert_bad_input(
        dokku,
        "network-write-ipaddr",
        [app, "web", "1", ip],
        f" !     Invalid IP address or host name specified: {shown(ip)}\n",
    )


@pytest.mark.parametrize("proc", ["web/x", "..", "../web", ".web", "web.1", "", "web x", "wéb"])
@pytest.mark.parametrize("trigger", ["network-write-ipaddr", "network-write-port"])
def test_write_refuses_bad_process_type(dokku, app, trigger, proc):
    value = "10.0.0.1" if trigger == "network-write-ipaddr" else "5000"
    stderr = f" !     Invalid process type specified: {proc}\n"
    assert_bad_input(dokku, trigger, [app, proc, "1", value], stderr)


@pytest.mark.parametrize("index", ["1a", "", "-1", "../1", "1.5", " 1", "\u0661"])
@pytest.mark.parametrize("trigger", ["network-write-ipaddr", "network-write-port"])
def test_write_refuses_index_that_is_not_digits(dokku, app, trigger, index):
    value = "10.0.0.1" if trigger == "network-write-ipaddr" else "5000"
    stderr = f" !     Invalid container index specified: {index}\n"
    assert_bad_input(dokku, trigger, [app, "web", index, value], stderr)


@pytest.mark.parametrize("port", ["0", "65536", "abc", "-1", "99999999", "80 ", "5000\n", "1e3"])
def test_write_port_refuses_port_outside_range(dokku, app, port):
    stderr = f" !     Invalid port specified, must be between 1 and 65535: {shown(port)}\n"
    assert_bad_input(dokku, "network-write-port", [app, "web", "1", port], stderr)


def test_failed_write_keeps_previous_file(dokku, root):
    (root / "PORT.web.1").write_text("5000")
    assert dokku.trigger("network-write-port", APP, "web", "1", "0").returncode == 1
    assert (root / "PORT.web.1").read_bytes() == b"5000"


# --- bad app names and missing apps, every file-only trigger -----------------------------------------------


FILE_TRIGGER_CALLS = [
    ("network-config-exists", []),
    ("network-get-listeners", ["web"]),
    ("network-get-property", ["tld"]),
    ("network-get-static-listeners", ["web"]),
    ("network-write-ipaddr", ["web", "1", "10.0.0.1"]),
    ("network-write-port", ["web", "1", "5000"]),
    ("report", []),
    ("docker-args-process-build", ["herokuish"]),
    ("docker-args-process-deploy", ["herokuish"]),
    ("docker-args-process-run", ["herokuish"]),
]


@pytest.mark.parametrize(("trigger", "rest"), FILE_TRIGGER_CALLS)
@pytest.mark.parametrize("name", ["..", "../../tmp", "a/b", "UPPER", "", "app\nx", "-x", "--global"])
def test_trigger_refuses_invalid_app_name(dokku, trigger, rest, name):
    assert_bad_input(dokku, trigger, [name, *rest], APP_NAME_ERROR)


@pytest.mark.parametrize(("trigger", "rest"), FILE_TRIGGER_CALLS)
def test_trigger_refuses_missing_app(dokku, trigger, rest):
    assert_bad_input(dokku, trigger, ["missing-app", *rest], MISSING_APP_ERROR, exit_code=20)


@pytest.mark.parametrize(("trigger", "rest"), FILE_TRIGGER_CALLS)
def test_trigger_without_arguments_is_refused(dokku, trigger, rest):
    assert_bad_input(dokku, trigger, [], APP_NAME_ERROR)


def test_writes_stay_in_app_root_and_property_folder(dokku, app):
    before = set(dokku.snapshot())
    dokku.trigger("network-write-ipaddr", app, "web", "1", "10.0.0.1")
    dokku.trigger("network-write-port", app, "web", "1", "5000")
    dokku.command("set", app, "tld", "svc.local")
    base = dokku.dokku_root.parent
    property_dir = dokku.properties_root / app
    allowed_folders = {
        str(path.relative_to(base)) for path in [property_dir, *property_dir.parents] if base in path.parents
    }
    created = set(dokku.snapshot()) - before
    assert created
    for path in created:
        inside = (base / path).parent in (dokku.dokku_root / app, property_dir)
        assert inside or path in allowed_folders, path
