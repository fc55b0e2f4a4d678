"""`dokku network:set`: what the operator sees, and what lands in the property store
(docs/reference.md: Properties, Files on disk)."""

from __future__ import annotations

import stat
import subprocess

import pytest

APP = "node-js-app"
APP_NAME_ERROR = (
    " !     App name must begin with lowercase alphanumeric character,"
    " and may only contain lowercase alphanumerics, dots, and hyphens\n"
)
INVALID_PROPERTY_ERROR = (
    " !     Invalid property specified, valid properties include: app-network,"
    " app-network-pool, attach-post-create, attach-post-deploy, bind-all-interfaces,"
    " initial-network, static-web-listener, tld\n"
)
APP_VALUES = [
    ("attach-post-create", "net-a"),
    ("attach-post-deploy", "net-b"),
    ("bind-all-interfaces", "true"),
    ("initial-network", "net-c"),
    ("static-web-listener", "10.0.0.5:8080"),
    ("tld", "svc.cluster.local"),
]
GLOBAL_VALUES = [(key, value) for key, value in APP_VALUES if key != "static-web-listener"]
NETWORK_KEYS = ("attach-post-create", "attach-post-deploy", "initial-network")


def missing(owner, key, name):
    """What network:set says of a network that neither exists nor has a record (none of these do)."""
    if key not in NETWORK_KEYS:
        return ""
    whose = "every app's" if owner == "--global" else f"{owner}'s"
    return (
        f" !     Network {name} does not exist: {whose} next deploy stops on it until it does"
        f" (dokku network:create {name})\n"
    )


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def assert_refused(result, stderr, exit_code=1):
    assert (result.returncode, result.stdout, result.stderr) == (exit_code, "", stderr)


@pytest.mark.parametrize(("key", "value"), APP_VALUES)
def test_set_app_property_prints_setting_line(dokku, app, key, value):
    result = dokku.command("set", app, key, value)
    expected = (0, f"=====> Setting {key} to {value}\n", missing(app, key, value))
    assert (result.returncode, result.stdout, result.stderr) == expected


@pytest.mark.parametrize(("key", "value"), APP_VALUES)
def test_set_app_property_stores_raw_value_without_newline(dokku, app, key, value):
    dokku.command("set", app, key, value)
    assert dokku.property_file(app, key).read_bytes() == value.encode()


@pytest.mark.parametrize(("key", "value"), APP_VALUES)
def test_set_app_property_file_is_0600_in_0755_folder(dokku, app, key, value):
    dokku.command("set", app, key, value)
    path = dokku.property_file(app, key)
    assert (mode(path), mode(path.parent)) == (0o600, 0o755)


def test_property_folder_is_0755_under_restrictive_umask(dokku, app):
    program = dokku.plugin_dir / "subcommands" / "set"
    result = dokku.run(
        "/bin/sh", "-c", 'umask 077; exec "$0" "$@"', str(program), "network:set", app, "tld", "x"
    )
    assert result.returncode == 0
    assert mode(dokku.property_file(app, "tld").parent) == 0o755


@pytest.mark.parametrize(("key", "value"), GLOBAL_VALUES)
def test_set_global_property_writes_global_file(dokku, key, value):
    result = dokku.command("set", "--global", key, value)
    expected = (0, f"=====> Setting {key} to {value}\n", missing("--global", key, value))
    assert (result.returncode, result.stdout, result.stderr) == expected
    path = dokku.property_file("--global", key)
    assert (path.read_bytes(), mode(path), mode(path.parent)) == (value.encode(), 0o600, 0o755)


@pytest.mark.parametrize(("key", "value"), APP_VALUES)
def test_set_without_value_unsets_app_property(dokku, app, key, value):
    dokku.write_property(app, key, value)
    result = dokku.command("set", app, key)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"=====> Unsetting {key}\n", "")
    assert not dokku.property_file(app, key).exists()


@pytest.mark.parametrize(("key", "value"), GLOBAL_VALUES)
def test_set_global_without_value_unsets_global_property(dokku, key, value):
    dokku.write_property("--global", key, value)
    result = dokku.command("set", "--global", key)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"=====> Unsetting {key}\n", "")
    assert not dokku.property_file("--global", key).exists()


def test_unset_of_property_never_set_succeeds(dokku, app):
    result = dokku.command("set", app, "tld")
    assert (result.returncode, result.stdout, result.stderr) == (0, "=====> Unsetting tld\n", "")
    assert not dokku.property_file(app, "tld").exists()


def test_unset_app_property_leaves_global_value(dokku, app):
    dokku.write_property(app, "tld", "app.local")
    dokku.write_property("--global", "tld", "global.local")
    dokku.command("set", app, "tld")
    assert dokku.property_file("--global", "tld").read_text() == "global.local"


def test_set_replaces_previous_value(dokku, app):
    dokku.write_property(app, "tld", "old.local")
    dokku.command("set", app, "tld", "new.local")
    assert dokku.property_file(app, "tld").read_bytes() == b"new.local"


def test_quiet_output_hides_setting_line_but_writes(dokku, app):
    result = dokku.command("set", app, "tld", "svc.local", env={"DOKKU_QUIET_OUTPUT": "1"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert dokku.property_file(app, "tld").read_bytes() == b"svc.local"


def test_quiet_output_hides_unsetting_line_but_deletes(dokku, app):
    dokku.write_property(app, "tld", "svc.local")
    result = dokku.command("set", app, "tld", env={"DOKKU_QUIET_OUTPUT": "1"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not dokku.property_file(app, "tld").exists()


@pytest.mark.parametrize("key", ["attach-post-create", "attach-post-deploy"])
def test_attach_property_stores_several_networks_comma_separated(dokku, app, key):
    result = dokku.command("set", app, key, "net-a", "net-b")
    assert result.stdout == f"=====> Setting {key} to net-a,net-b\n"
    assert dokku.property_file(app, key).read_bytes() == b"net-a,net-b"


def test_attach_property_accepts_comma_separated_argument(dokku, app):
    dokku.command("set", app, "attach-post-create", "net-a,net-b", "net-c")
    assert dokku.property_file(app, "attach-post-create").read_bytes() == b"net-a,net-b,net-c"


def test_attach_post_create_accepts_network_that_does_not_exist_yet(dokku, app):
    result = dokku.command("set", app, "attach-post-create", "not-created-yet")
    assert result.returncode == 0
    assert dokku.property_file(app, "attach-post-create").read_bytes() == b"not-created-yet"


def test_legacy_app_name_with_underscore_can_be_set(dokku):
    dokku.create_app("old_app")
    result = dokku.command("set", "old_app", "tld", "svc.local")
    assert (result.returncode, result.stderr) == (0, "")
    assert dokku.property_file("old_app", "tld").read_bytes() == b"svc.local"


# --- refusals: exact message, exit code, nothing written ---------------------------------------


def assert_refused_without_writes(dokku, args, stderr, exit_code=1):
    before = dokku.snapshot()
    result = dokku.command("set", *args)
    assert_refused(result, stderr, exit_code)
    assert dokku.snapshot() == before


@pytest.mark.parametrize("key", ["foo", "TLD", "network-tld", "tld "])
def test_unknown_property_is_refused(dokku, app, key):
    assert_refused_without_writes(dokku, [app, key, "value"], INVALID_PROPERTY_ERROR)


def test_unknown_global_property_is_refused(dokku):
    assert_refused_without_writes(dokku, ["--global", "foo", "value"], INVALID_PROPERTY_ERROR)


@pytest.mark.parametrize("args", [["10.0.0.1:5000"], []])
def test_global_static_web_listener_is_refused(dokku, args):
    stderr = " !     Property cannot be specified globally\n"
    assert_refused_without_writes(dokku, ["--global", "static-web-listener", *args], stderr)


@pytest.mark.parametrize("key", ["attach-post-create", "attach-post-deploy"])
@pytest.mark.parametrize("network", ["host", "bridge"])
def test_attach_to_docker_builtin_network_is_refused(dokku, app, key, network):
    stderr = f" !     Invalid network name specified for attach: {network}\n"
    assert_refused_without_writes(dokku, [app, key, "net-a", network], stderr)


def test_attach_to_builtin_network_refused_globally(dokku):
    stderr = " !     Invalid network name specified for attach: host\n"
    assert_refused_without_writes(dokku, ["--global", "attach-post-deploy", "host"], stderr)


@pytest.mark.parametrize(
    ("key", "other_key"),
    [("attach-post-create", "attach-post-deploy"), ("attach-post-deploy", "attach-post-create")],
)
def test_network_in_other_attach_property_is_refused(dokku, app, key, other_key):
    dokku.write_property(app, other_key, "net-a")
    stderr = " !     Network name already associated with this app: net-a\n"
    assert_refused_without_writes(dokku, [app, key, "net-a"], stderr)


def test_network_among_several_in_other_attach_property_is_refused(dokku, app):
    dokku.write_property(app, "attach-post-deploy", "net-a,net-b,net-c")
    stderr = " !     Network name already associated with this app: net-b\n"
    assert_refused_without_writes(dokku, [app, "attach-post-create", "net-x", "net-b"], stderr)


def test_network_in_global_other_attach_property_is_refused(dokku, app):
    dokku.write_property("--global", "attach-post-deploy", "net-a,net-g")
    stderr = " !     Network name already associated with this app: net-g\n"
    assert_refused_without_writes(dokku, [app, "attach-post-create", "net-g"], stderr)


def test_network_in_reference_written_other_property_is_refused(dokku, app):
    dokku.write_property(app, "attach-post-deploy", "net-a,net-b\n")
    stderr = " !     Network name already associated with this app: net-b\n"
    assert_refused_without_writes(dokku, [app, "attach-post-create", "net-b"], stderr)


def test_global_attach_conflict_between_global_properties_is_refused(dokku):
    dokku.write_property("--global", "attach-post-create", "net-g")
    stderr = " !     Network name already associated with this app: net-g\n"
    assert_refused_without_writes(dokku, ["--global", "attach-post-deploy", "net-g"], stderr)


def test_global_set_that_makes_an_app_conflict_is_refused_naming_the_apps(dokku, app):
    dokku.create_app("other-app")
    dokku.create_app("third-app")
    dokku.write_property(app, "attach-post-create", "shared1")
    dokku.write_property("other-app", "attach-post-create", "net-x,shared1")
    dokku.write_property("third-app", "attach-post-create", "shared1")
    dokku.write_property("third-app", "attach-post-deploy", "own")  # hides the global value
    stderr = " !     Network name already associated with app node-js-app, other-app: shared1\n"
    assert_refused_without_writes(dokku, ["--global", "attach-post-deploy", "net-g", "shared1"], stderr)


def test_global_set_conflicting_with_no_app_is_stored(dokku, app):
    dokku.write_property(app, "attach-post-create", "shared1")
    dokku.write_property(app, "attach-post-deploy", "own")
    result = dokku.command("set", "--global", "attach-post-deploy", "shared1")
    assert (result.returncode, result.stderr) == (0, missing("--global", "attach-post-deploy", "shared1"))
    assert dokku.property_file("--global", "attach-post-deploy").read_bytes() == b"shared1"


def test_unset_that_would_uncover_a_conflicting_global_value_is_refused(dokku, app):
    dokku.write_property("--global", "attach-post-deploy", "net-g")
    dokku.write_property(app, "attach-post-deploy", "own")
    dokku.write_property(app, "attach-post-create", "net-g")
    stderr = " !     Network name already associated with this app: net-g\n"
    assert_refused_without_writes(dokku, [app, "attach-post-deploy"], stderr)


def test_parallel_sets_of_both_attach_lists_never_share_a_network(dokku, app):
    """The check and the write happen under one lock: of two parallel sets naming one
    network, one wins and the other is refused, every round."""
    program = dokku.plugin_dir / "subcommands" / "set"
    for round_number in range(15):
        name = f"race{round_number}"
        runs = [
            subprocess.Popen(
                [str(program), "network:set", app, key, name],
                env=dokku.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for key in ("attach-post-create", "attach-post-deploy")
        ]
        outcomes = sorted((run.wait(timeout=120), run.stderr.read()) for run in runs)
        for run in runs:
            run.stderr.close()
        won = missing(app, "attach-post-create", name)
        assert outcomes == [(0, won), (1, f" !     Network name already associated with this app: {name}\n")]
        stored = [dokku.property_file(app, key) for key in ("attach-post-create", "attach-post-deploy")]
        assert sorted(path.read_text() for path in stored if path.exists()) == [name]
        for path in stored:
            path.unlink(missing_ok=True)


def test_global_value_overridden_by_app_value_does_not_conflict(dokku, app):
    dokku.write_property("--global", "attach-post-deploy", "net-g")
    dokku.write_property(app, "attach-post-deploy", "net-app")
    result = dokku.command("set", app, "attach-post-create", "net-g")
    assert (result.returncode, result.stderr) == (0, missing(app, "attach-post-create", "net-g"))
    assert dokku.property_file(app, "attach-post-create").read_bytes() == b"net-g"


def test_refused_attach_keeps_old_value(dokku, app):
    dokku.write_property(app, "attach-post-create", "net-old")
    dokku.write_property(app, "attach-post-deploy", "net-a")
    result = dokku.command("set", app, "attach-post-create", "net-new", "net-a")
    assert result.returncode == 1
    assert dokku.property_file(app, "attach-post-create").read_bytes() == b"net-old"


@pytest.mark.parametrize("key", ["attach-post-create", "attach-post-deploy", "initial-network"])
@pytest.mark.parametrize("network", ["-net", ".net", "net/x", "net;rm", "net x", "net$(id)", "nét"])
def test_invalid_docker_network_name_is_refused(dokku, app, key, network):
    stderr = f" !     Invalid network name specified: {network}\n"
    assert_refused_without_writes(dokku, [app, key, network], stderr)


@pytest.mark.parametrize("tld", ["Foo", "-foo", "foo-", "foo..bar", "foo.", ".foo", "foo_bar", "a;b", "a b"])
def test_bad_tld_is_refused(dokku, app, tld):
    stderr = f" !     Invalid tld specified, must be a lowercase DNS name: {tld}\n"
    assert_refused_without_writes(dokku, [app, "tld", tld], stderr)


def test_bad_global_tld_is_refused(dokku):
    stderr = " !     Invalid tld specified, must be a lowercase DNS name: Bad.Tld\n"
    assert_refused_without_writes(dokku, ["--global", "tld", "Bad.Tld"], stderr)


@pytest.mark.parametrize("value", ["yes", "TRUE", "1", "true; id"])
def test_bind_all_interfaces_must_be_true_or_false(dokku, app, value):
    stderr = f" !     Invalid value specified for bind-all-interfaces, must be true or false: {value}\n"
    assert_refused_without_writes(dokku, [app, "bind-all-interfaces", value], stderr)


def test_bind_all_interfaces_refuses_two_words(dokku, app):
    stderr = " !     Invalid value specified for bind-all-interfaces, must be true or false: true false\n"
    assert_refused_without_writes(dokku, [app, "bind-all-interfaces", "true", "false"], stderr)


@pytest.mark.parametrize("value", ["true", "false"])
def test_bind_all_interfaces_accepts_true_and_false(dokku, app, value):
    assert dokku.command("set", app, "bind-all-interfaces", value).returncode == 0
    assert dokku.property_file(app, "bind-all-interfaces").read_bytes() == value.encode()


@pytest.mark.parametrize(
    "listener", ["10.0.0.1", "10.0.0.1:5000", "fd00::1", "[fd00::1]:8080", "web.example.com:80"]
)
def test_static_web_listener_accepts_ip_or_host_port(dokku, app, listener):
    result = dokku.command("set", app, "static-web-listener", listener)
    assert (result.returncode, result.stderr) == (0, "")
    assert dokku.property_file(app, "static-web-listener").read_bytes() == listener.encode()


@pytest.mark.parametrize(
    "listener",
    ["foo", "web.example.com", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:http", "1.2.3.4:80;id", "a b:80"],
)
def test_static_web_listener_must_be_ip_or_host_port(dokku, app, listener):
    stderr = f" !     Invalid static web listener, must be an ip or host:port: {listener}\n"
    assert_refused_without_writes(dokku, [app, "static-web-listener", listener], stderr)


def test_refused_value_keeps_old_value(dokku, app):
    dokku.write_property(app, "tld", "old.local")
    result = dokku.command("set", app, "tld", "Not.Valid")
    assert result.returncode == 1
    assert dokku.property_file(app, "tld").read_bytes() == b"old.local"


@pytest.mark.parametrize("name", ["..", "a/b", "UPPER", "", "app\nx", "-x", ".hidden", "app/../x"])
def test_invalid_app_name_is_refused(dokku, name):
    assert_refused_without_writes(dokku, [name, "tld", "svc.local"], APP_NAME_ERROR)


def test_missing_app_is_refused_with_exit_20(dokku):
    assert_refused_without_writes(
        dokku, ["missing-app", "tld", "svc.local"], " !     App missing-app does not exist\n", 20
    )


def test_missing_app_unset_is_refused(dokku):
    assert_refused_without_writes(
        dokku, ["missing-app", "tld"], " !     App missing-app does not exist\n", 20
    )


def test_refusals_never_print_traceback(dokku, app):
    results = [
        dokku.command("set", app, "foo", "x"),
        dokku.command("set", app, "tld", "Bad"),
        dokku.command("set", "..", "tld", "x"),
        dokku.command("set"),
    ]
    for result in results:
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(" !     ")
        assert result.stderr.count("\n") == 1


# --- files the reference plugin wrote ----------------------------------------------------------


def test_value_with_trailing_newline_is_read_as_value(dokku, app):
    dokku.write_property(app, "tld", "svc.local\n")
    result = dokku.trigger("network-get-property", app, "tld")
    assert (result.returncode, result.stdout) == (0, "svc.local\n")


def test_set_over_reference_written_value_stores_raw_value(dokku, app):
    dokku.write_property(app, "attach-post-create", "net-a\n")
    dokku.command("set", app, "attach-post-create", "net-a", "net-b")
    assert dokku.property_file(app, "attach-post-create").read_bytes() == b"net-a,net-b"


@pytest.mark.usefixtures("test_image")
def test_a_network_that_exists_or_comes_back_is_set_without_a_word(dokku, app, docker_resources):
    existing = docker_resources.network()
    recorded = f"dnt-rec-{existing.name[4:]}"
    assert dokku.command("create", recorded).returncode == 0  # made by the plugin: it has a record
    docker_resources.client.api.remove_network(recorded)  # gone, but it comes back at the next deploy

    for key, name in (("attach-post-create", existing.name), ("initial-network", recorded)):
        result = dokku.command("set", app, key, name)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert dokku.command("destroy", "--force", recorded).returncode in (0, 1)
