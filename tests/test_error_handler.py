"""Every failure becomes one ` !     ` line and an exit code, never a traceback."""

from __future__ import annotations

import docker.errors
import pytest
import requests.exceptions
import urllib3.exceptions

from network_plugin.error_handler import PluginError, run


def test_plugin_error_prints_message_and_uses_its_exit_code(capsys):
    def action(args):
        raise PluginError("App nope does not exist", 20)

    assert run(action, []) == 20
    assert capsys.readouterr().err == " !     App nope does not exist\n"


def test_control_characters_in_messages_stay_on_one_line(capsys):
    def action(args):
        raise PluginError("Invalid network name specified: a\nb\x1b[31m")

    assert run(action, []) == 1
    assert capsys.readouterr().err == " !     Invalid network name specified: a\\nb\\x1b[31m\n"


def test_os_error_names_the_file(capsys):
    def action(args):
        raise PermissionError(13, "Permission denied", "/var/lib/dokku/config/network/app/tld")

    assert run(action, []) == 1
    assert capsys.readouterr().err == " !     Permission denied: /var/lib/dokku/config/network/app/tld\n"


def test_unexpected_exception_is_one_line_without_traceback(capsys):
    def action(args):
        raise KeyError("boom")

    assert run(action, []) == 1
    error = capsys.readouterr().err
    assert error == " !     Unexpected error: KeyError: 'boom'\n"


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_of_the_action_is_returned(code):
    assert run(lambda args: code, []) == code


def test_engine_connection_errors_are_named_as_such(capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")

    def action(args):
        raise requests.exceptions.ConnectionError("Connection aborted.")

    assert run(action, []) == 1
    assert capsys.readouterr().err == (
        " !     Unable to reach the Docker engine at tcp://10.0.0.1:2375 (DOCKER_HOST): Connection aborted.\n"
    )


def test_an_unreachable_engine_is_its_address_and_the_system_reason(capsys, monkeypatch):
    """Never the HTTP library's `('Connection aborted.', FileNotFoundError(2, ...))`: the socket
    tried and the system's words, found down the chain requests and urllib3 build."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    refused = ConnectionRefusedError(111, "Connection refused")
    new_connection = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection")
    new_connection.__cause__ = refused
    retries = urllib3.exceptions.MaxRetryError(None, "/version", new_connection)

    def action(args):
        raise requests.exceptions.ConnectionError(retries)

    assert run(action, []) == 1
    assert capsys.readouterr().err == (
        " !     Unable to reach the Docker engine at unix:///var/run/docker.sock (DOCKER_HOST unset):"
        " Connection refused\n"
    )


def test_engine_api_errors_show_the_engine_explanation(capsys):
    def action(args):
        raise docker.errors.APIError("500 Server Error", explanation="conflict: network busy")

    assert run(action, []) == 1
    assert capsys.readouterr().err == " !     Docker engine error: conflict: network busy\n"
