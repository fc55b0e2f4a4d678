"""`dokku network:report`, `dokku network[:help]`, `dokku help` and the `report` trigger
(docs/reference.md: Commands, Report)."""

from __future__ import annotations

import json
import re

import pytest

from tests.reference import REFERENCE, documented_subcommands

APP = "node-js-app"
FIELDS = sorted(
    [
        "network-app-network",
        "network-app-network-status",
        "network-computed-app-network",
        "network-computed-app-network-pool",
        "network-effective-initial-network",
        "network-global-app-network",
        "network-global-app-network-pool",
        "network-attach-post-create",
        "network-attach-post-deploy",
        "network-bind-all-interfaces",
        "network-computed-attach-post-create",
        "network-computed-attach-post-deploy",
        "network-computed-bind-all-interfaces",
        "network-computed-initial-network",
        "network-computed-tld",
        "network-global-attach-post-create",
        "network-global-attach-post-deploy",
        "network-global-bind-all-interfaces",
        "network-global-initial-network",
        "network-global-tld",
        "network-initial-network",
        "network-static-web-listener",
        "network-tld",
        "network-web-listeners",
        "network-web-listeners-left-out",
    ]
)
GLOBAL_FIELDS = [name for name in FIELDS if name.startswith(("network-computed-", "network-global-"))]
GLOBAL_DEFAULTS = {
    "network-computed-app-network": "false",
    "network-computed-app-network-pool": "10.224.0.0/12",
    "network-computed-bind-all-interfaces": "false",
}
DEFAULTS = {
    **GLOBAL_DEFAULTS,
    "network-app-network-status": "off",
    "network-effective-initial-network": "bridge",
}
NO_APPS_WARNING = " !     You haven't deployed any applications yet\n"
SUBCOMMANDS = documented_subcommands()  # the usage lists them in name order


def label(field):
    words = field.replace("-", " ")
    return f"{words[0].upper()}{words[1:]}:"


def expected_report(app, values=None, fields=FIELDS):
    """The stdout report, built from the layout rules of docs/reference.md (Report)."""
    values = DEFAULTS | (values or {})
    width = max(31, *(len(f"--{field}") for field in fields))
    lines = [f"=====> {app} network information"]
    lines += [f"       {label(field).ljust(width)}{values.get(field, '')}" for field in fields]
    return "\n".join(lines) + "\n"


def report(dokku, *args, env=None):
    return dokku.command("report", *args, env=env)


@pytest.fixture
def configured(dokku, app):
    """An app with app, global and reference-written values, and two web containers."""
    dokku.write_property(app, "attach-post-create", "net-a,net-b")
    dokku.write_property(app, "bind-all-interfaces", "true")
    dokku.write_property(app, "tld", "svc.local\n")
    dokku.write_property("--global", "attach-post-deploy", "net-g")
    dokku.write_property("--global", "initial-network", "net-init")
    dokku.write_property("--global", "tld", "global.local")
    root = dokku.dokku_root / app
    (root / "IP.web.1").write_text("10.0.0.1")
    (root / "PORT.web.1").write_text("8080")
    (root / "IP.web.2").write_text("10.0.0.2")
    return app


CONFIGURED_VALUES = {
    "network-attach-post-create": "net-a,net-b",
    "network-bind-all-interfaces": "true",
    "network-computed-attach-post-create": "net-a,net-b",
    "network-computed-attach-post-deploy": "net-g",
    "network-computed-bind-all-interfaces": "true",
    "network-computed-initial-network": "net-init",
    "network-effective-initial-network": "net-init",
    "network-computed-tld": "svc.local",
    "network-global-attach-post-deploy": "net-g",
    "network-global-initial-network": "net-init",
    "network-global-tld": "global.local",
    "network-tld": "svc.local",
    "network-web-listeners": "10.0.0.1:8080 10.0.0.2:5000",
}
CONFIGURED_GLOBAL_VALUES = {
    "network-computed-attach-post-deploy": "net-g",
    "network-computed-initial-network": "net-init",
    "network-computed-tld": "global.local",
    "network-global-attach-post-deploy": "net-g",
    "network-global-initial-network": "net-init",
    "network-global-tld": "global.local",
}


def test_report_of_new_app_shows_defaults(dokku, app):
    result = report(dokku, app)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected_report(app), "")


def test_global_bind_all_interfaces_reaches_a_new_app(dokku, app):
    # Dokku 0.38.27 stopped writing `false` at post-create: an app-level false hid a global true.
    assert dokku.plugn_trigger("post-create", app).returncode == 0
    assert dokku.command("set", "--global", "bind-all-interfaces", "true").returncode == 0
    values = {
        "network-global-bind-all-interfaces": "true",
        "network-computed-bind-all-interfaces": "true",
    }
    assert report(dokku, app).stdout == expected_report(app, values)
    result = dokku.trigger("network-get-property", app, "bind-all-interfaces")
    assert (result.returncode, result.stdout, result.stderr) == (0, "true\n", "")


def test_report_lines_are_padded_to_longest_flag(dokku, app):
    lines = report(dokku, app).stdout.splitlines()
    width = len("--network-computed-bind-all-interfaces")
    assert lines[1] == "       " + "Network app network:".ljust(width)
    assert lines[10] == "       Network computed bind all interfaces: false"


def test_report_of_configured_app(dokku, configured):
    result = report(dokku, configured)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        expected_report(configured, CONFIGURED_VALUES),
        "",
    )


def test_global_report_has_only_computed_and_global_fields(dokku, configured):
    result = report(dokku, "--global")
    expected = expected_report("--global", CONFIGURED_GLOBAL_VALUES, GLOBAL_FIELDS)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, "")


def test_global_report_on_empty_host(dokku):
    result = report(dokku, "--global")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        expected_report("--global", fields=GLOBAL_FIELDS),
        "",
    )


def test_report_without_app_lists_every_app_in_name_order(dokku):
    for name in ["zeta", "alpha", "beta.app", "alpha-2"]:
        dokku.create_app(name)
    dokku.write_property("beta.app", "tld", "beta.local")
    (dokku.dokku_root / ".ssh").mkdir()
    (dokku.dokku_root / "VHOST").write_text("example.com")
    result = report(dokku)
    beta_values = {"network-tld": "beta.local", "network-computed-tld": "beta.local"}
    expected = "".join(
        [
            expected_report("alpha"),
            expected_report("alpha-2"),
            expected_report("beta.app", beta_values),
            expected_report("zeta"),
        ]
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, "")


def test_report_without_app_on_host_without_apps_warns(dokku):
    result = report(dokku)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", NO_APPS_WARNING)


def test_report_without_app_ignores_folders_that_are_not_apps(dokku):
    (dokku.dokku_root / ".ssh").mkdir()
    (dokku.dokku_root / "ENV").write_text("")
    result = report(dokku)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", NO_APPS_WARNING)


def test_report_without_app_with_info_flag_prints_each_value(dokku):
    for name in ["b-app", "a-app"]:
        dokku.create_app(name)
    dokku.write_property("b-app", "tld", "b.local")
    result = report(dokku, "--network-tld")
    assert (result.returncode, result.stdout, result.stderr) == (0, "\nb.local\n", "")


@pytest.mark.parametrize("field", FIELDS)
def test_info_flag_prints_only_its_value(dokku, configured, field):
    result = report(dokku, configured, f"--{field}")
    expected = (DEFAULTS | CONFIGURED_VALUES).get(field, "")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{expected}\n", "")


def test_info_flag_before_app_name(dokku, configured):
    result = report(dokku, "--network-computed-tld", configured)
    assert (result.returncode, result.stdout) == (0, "svc.local\n")


def test_info_flag_with_global(dokku, configured):
    result = report(dokku, "--global", "--network-global-tld")
    assert (result.returncode, result.stdout, result.stderr) == (0, "global.local\n", "")


def test_unknown_info_flag_lists_valid_flags(dokku, app):
    result = report(dokku, app, "--network-nope")
    valid = ", ".join(f"--{field}" for field in FIELDS)
    stderr = f" !     Invalid flag passed, valid flags: {valid}\n"
    assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr)


def test_app_only_flag_with_global_is_unknown(dokku):
    result = report(dokku, "--global", "--network-tld")
    valid = ", ".join(f"--{field}" for field in GLOBAL_FIELDS)
    stderr = f" !     Invalid flag passed, valid flags: {valid}\n"
    assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr)


def test_two_info_flags_are_refused(dokku, app):
    result = report(dokku, app, "--network-tld", "--network-bind-all-interfaces")
    stderr = " !     network:report command allows only a single flag\n"
    assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr)


def test_json_report_has_legacy_and_stripped_keys(dokku, configured):
    result = report(dokku, configured, "--format", "json")
    assert (result.returncode, result.stderr, result.stdout.count("\n")) == (0, "", 1)
    values = DEFAULTS | CONFIGURED_VALUES
    expected = {field: values.get(field, "") for field in FIELDS}
    expected |= {field.removeprefix("network-"): value for field, value in expected.items()}
    assert json.loads(result.stdout) == expected


def test_json_report_format_option_before_app(dokku, app):
    result = report(dokku, "--format", "json", app)
    assert result.returncode == 0
    assert json.loads(result.stdout)["computed-bind-all-interfaces"] == "false"


def test_global_json_report_has_only_global_and_computed_keys(dokku, configured):
    result = report(dokku, "--global", "--format", "json")
    assert (result.returncode, result.stderr) == (0, "")
    document = json.loads(result.stdout)
    values = DEFAULTS | CONFIGURED_GLOBAL_VALUES
    expected = {field: values.get(field, "") for field in GLOBAL_FIELDS}
    expected |= {field.removeprefix("network-"): value for field, value in expected.items()}
    assert document == expected
    assert "network-global-tld" in document
    assert "global-tld" in document
    assert "network-tld" not in document
    assert "tld" not in document


def test_json_report_without_app_prints_one_object_per_app(dokku):
    for name in ["b-app", "a-app"]:
        dokku.create_app(name)
    dokku.write_property("b-app", "tld", "b.local")
    result = report(dokku, "--format", "json")
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [document["tld"] for document in documents] == ["", "b.local"]


@pytest.mark.parametrize("output_format", ["bad", "text", "JSON"])
def test_unknown_format_is_refused(dokku, app, output_format):
    result = report(dokku, app, "--format", output_format)
    stderr = " !     Invalid format specified, use either stdout or json\n"
    assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr)


def test_format_without_value_is_refused(dokku, app):
    result = report(dokku, app, "--format")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(" !     ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_quiet_report_hides_header_and_keeps_data(dokku, app):
    result = report(dokku, app, env={"DOKKU_QUIET_OUTPUT": "1"})
    expected = expected_report(app).split("\n", 1)[1]
    assert (result.returncode, result.stdout) == (0, expected)


def test_web_listeners_from_ip_and_port_files_in_index_order(dokku, app):
    root = dokku.dokku_root / app
    for index, ip in [("1", "10.0.0.1"), ("2", "10.0.0.2"), ("10", "10.0.0.10")]:
        (root / f"IP.web.{index}").write_text(ip)
    (root / "PORT.web.2").write_text("3000")
    (root / "IP.worker.1").write_text("10.0.1.1")
    result = report(dokku, app, "--network-web-listeners")
    assert result.stdout == "10.0.0.1:5000 10.0.0.2:3000 10.0.0.10:5000\n"


def test_web_listeners_is_static_web_listener_when_set(dokku, app):
    (dokku.dokku_root / app / "IP.web.1").write_text("10.0.0.1")
    dokku.write_property(app, "static-web-listener", "192.168.1.5:8080")
    result = report(dokku, app)
    values = {
        "network-static-web-listener": "192.168.1.5:8080",
        "network-web-listeners": "192.168.1.5:8080",
    }
    assert result.stdout == expected_report(app, values)


def test_report_of_missing_app_is_refused(dokku):
    result = report(dokku, "missing-app")
    assert (result.returncode, result.stdout, result.stderr) == (
        20,
        "",
        " !     App missing-app does not exist\n",
    )


@pytest.mark.parametrize("name", ["UPPER", "a/b", ".."])
def test_report_of_invalid_app_name_is_refused(dokku, name):
    result = report(dokku, name)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        " !     App name must begin with lowercase alphanumeric character,"
        " and may only contain lowercase alphanumerics, dots, and hyphens\n"
    )


def test_report_trigger_prints_same_as_report_command(dokku, configured):
    trigger = dokku.trigger("report", configured)
    command = report(dokku, configured)
    assert (trigger.returncode, trigger.stderr) == (0, "")
    assert trigger.stdout == command.stdout == expected_report(configured, CONFIGURED_VALUES)


def test_report_trigger_of_missing_app_is_refused(dokku):
    result = dokku.trigger("report", "missing-app")
    assert (result.returncode, result.stdout, result.stderr) == (
        20,
        "",
        " !     App missing-app does not exist\n",
    )


# --- help and commands -------------------------------------------------------------------------


def test_network_and_network_help_print_same_usage(dokku):
    bare = dokku.commands("network")
    helped = dokku.commands("network:help")
    assert (bare.returncode, bare.stderr) == (0, "")
    assert (helped.returncode, helped.stderr) == (0, "")
    assert bare.stdout == helped.stdout


def test_usage_describes_the_plugin(dokku):
    lines = dokku.commands("network:help").stdout.splitlines()
    assert "Manage network settings for an app" in lines


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_usage_has_one_line_per_command(dokku, subcommand):
    lines = dokku.commands("network:help").stdout.splitlines()
    matching = [line for line in lines if line.split()[:1] == [f"network:{subcommand}"]]
    assert len(matching) == 1
    assert matching[0].startswith("    network:")


def test_usage_shows_every_option_the_reference_gives(dokku):
    """Each command's usage in network:help is its heading in docs/reference.md, options and all."""
    headings = re.findall(r"^### `(network:[a-z]+[^`]*)`", REFERENCE.read_text(), re.MULTILINE)
    usages = [line.strip() for line in dokku.commands("network:help").stdout.splitlines()]
    for heading in headings:
        assert [usage for usage in usages if usage.startswith(f"{heading}  ")], heading
    assert {"--force", "--format text|json", "--dokku-managed", "--global", "--status"} <= {
        option for heading in headings for option in re.findall(r"--[a-z-]+(?: text\|json)?", heading)
    }


def test_usage_lists_no_other_command(dokku):
    lines = dokku.commands("network").stdout.splitlines()
    commands = [line.split()[0] for line in lines if line.strip().startswith("network:")]
    assert commands == [f"network:{name}" for name in SUBCOMMANDS]


def test_help_prints_short_line(dokku):
    result = dokku.commands("help")
    assert (result.returncode, result.stderr) == (0, "")
    assert [line for line in result.stdout.splitlines() if line] == [
        "    network, Manage network settings for an app"
    ]


def test_help_all_prints_one_line_per_command(dokku):
    result = dokku.commands("help", "--all")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0].rstrip(",") for line in lines] == [f"network:{name}" for name in SUBCOMMANDS]
    assert all(line.startswith("    network:") and ", " in line for line in lines)


def test_commands_of_another_plugin_exit_not_implemented(dokku):
    result = dokku.commands("some:other", "arg")
    assert (result.returncode, result.stdout, result.stderr) == (10, "", "")


def test_commands_not_implemented_exit_follows_environment(dokku):
    result = dokku.commands("some:other", env={"DOKKU_NOT_IMPLEMENTED_EXIT": "42"})
    assert (result.returncode, result.stdout, result.stderr) == (42, "", "")


def test_commands_without_arguments_exit_not_implemented(dokku):
    result = dokku.commands()
    assert (result.returncode, result.stdout, result.stderr) == (10, "", "")


def test_a_stored_value_the_plugin_refuses_is_flagged_by_the_report(dokku, app):
    """A hand-stored `yes` (an operator's, before the switch): the scheduler's network-get-property
    stops every deploy on it, and the report says so rather than showing it without a word."""
    dokku.write_property(app, "bind-all-interfaces", "yes")

    shown = report(dokku, app)
    asked = dokku.trigger("network-get-property", app, "bind-all-interfaces")

    stored = {"network-bind-all-interfaces": "yes", "network-computed-bind-all-interfaces": "yes"}
    assert (shown.returncode, shown.stdout) == (0, expected_report(app, stored))
    assert shown.stderr == (
        f" !     Invalid bind-all-interfaces stored for {app}: yes: network:set refuses it, and the triggers"
        f" that read it stop on it; set it again (dokku network:set {app} bind-all-interfaces <value>) or"
        " unset it\n"
    )
    assert (asked.returncode, asked.stdout) == (1, "")
