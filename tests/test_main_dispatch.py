"""`main` picks the trigger from the program's own name; entry points exist for each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from network_plugin.commands import SUBCOMMANDS
from network_plugin.main import TRIGGERS, target_for
from network_plugin.packaging import generated_links
from tests.reference import documented_subcommands, documented_triggers

REPO = Path(__file__).resolve().parent.parent
# trigger, arguments, the heavy modules it may import (writers take the filelock lock)
FILE_ONLY_TRIGGERS = [
    ("docker-args-process-deploy", ["app", "herokuish"], []),
    ("docker-args-process-build", ["app", "herokuish"], []),
    ("docker-args-process-run", ["app", "herokuish", "latest"], []),
    ("network-get-property", ["app", "tld"], []),
    ("network-get-listeners", ["app", "web"], []),
    ("network-config-exists", ["app"], []),
    ("network-get-static-listeners", ["app", "web"], []),
    ("post-container-create", ["app", "0123456789ab", "app", "deploy", "web"], []),
    ("core-post-deploy", ["app"], []),
    ("report", ["app"], []),
    ("post-delete", ["app"], []),
    ("network-write-ipaddr", ["app", "web", "1", "10.0.0.1"], ["filelock"]),
    ("network-write-port", ["app", "web", "1", "5000"], ["filelock"]),
]
HEAVY_MODULES = ("docker", "typer", "rich", "requests", "click", "filelock")


def test_the_dispatched_triggers_are_the_documented_ones():
    # post-create, post-deploy and network-clear-config are documented as not implemented.
    assert set(TRIGGERS) == documented_triggers()


def test_every_trigger_has_an_executable_entry_point():
    for name in [*TRIGGERS, "commands"]:
        entry = REPO / "triggers" / name
        assert entry.is_file(), name
        assert os.access(entry, os.X_OK), name


def test_subcommands_and_commands_reach_the_command_line():
    assert target_for("/plugins/network/commands") == ("commands:main", False)
    assert target_for("/plugins/network/subcommands/set") == ("commands:main", False)
    assert target_for("/plugins/network/report") == ("triggers:report", False)
    assert target_for("/plugins/network/network-get-ipaddr") == ("docker_triggers:network_get_ipaddr", True)
    assert target_for("/plugins/network/not-a-trigger") is None


def test_generated_links_cover_triggers_commands_and_subcommands():
    links = generated_links()
    assert "install" not in links  # a real file: plugn runs it before links exist
    assert "update" not in links  # committed as a link to install
    assert {f"subcommands/{name}" for name in SUBCOMMANDS} <= set(links)
    assert links["commands"] == "triggers/commands"
    assert sorted(SUBCOMMANDS) == documented_subcommands()


@pytest.mark.parametrize(("trigger", "args", "allowed"), FILE_ONLY_TRIGGERS)
def test_file_only_triggers_never_import_heavy_modules(tmp_path, trigger, args, allowed):
    (tmp_path / "home" / "app").mkdir(parents=True)
    script = (
        "import sys\n"
        "from network_plugin.main import main\n"
        f"code = main([{trigger!r}, *{args!r}])\n"
        f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    env = os.environ | {"DOKKU_ROOT": str(tmp_path / "home"), "DOKKU_LIB_ROOT": str(tmp_path / "lib")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        input="",
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"HEAVY {allowed!r} 0" in result.stderr, result.stderr


def test_a_write_of_the_value_already_there_takes_no_lock(tmp_path):
    """Most redeploys write back the port (and often the IP) a file holds: no filelock import."""
    (tmp_path / "home" / "app").mkdir(parents=True)
    (tmp_path / "home" / "app" / "PORT.web.1").write_text("5000")
    script = (
        "import sys\n"
        "from network_plugin.main import main\n"
        "code = main(['network-write-port', 'app', 'web', '1', '5000'])\n"
        "print('FILELOCK', 'filelock' in sys.modules, code, file=sys.stderr)\n"
    )
    env = os.environ | {"DOKKU_ROOT": str(tmp_path / "home"), "DOKKU_LIB_ROOT": str(tmp_path / "lib")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert "FILELOCK False 0" in result.stderr, result.stderr
