"""How a trigger ends (`main.leave`): its output flushed, then `os._exit` without the
interpreter's teardown; a flush that fails leaves the exit to the interpreter."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from network_plugin import main
from tests.host import DokkuHost


class BrokenStream(io.StringIO):
    def flush(self) -> None:
        raise BrokenPipeError("the reader went away")


def test_leave_flushes_the_output_then_exits_without_teardown(mocker, capsys):
    exited = mocker.patch.object(os, "_exit")
    print("172.17.0.5", end="")  # buffered, not yet written

    main.leave(3)

    exited.assert_called_once_with(3)
    assert capsys.readouterr().out == "172.17.0.5"


def test_a_flush_that_fails_leaves_the_exit_to_the_interpreter(mocker, monkeypatch):
    exited = mocker.patch.object(os, "_exit")
    monkeypatch.setattr("sys.stdout", BrokenStream())

    with pytest.raises(SystemExit) as raised:
        main.leave(0)

    assert raised.value.code == 0
    exited.assert_not_called()


def test_a_trigger_whose_reader_went_away_exits_1_in_silence(dokku: DokkuHost):
    dokku.create_app("app")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [str(dokku.plugin_dir / "network-get-property"), "app", "bind-all-interfaces"],
            env=dokku.env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)

    assert (result.returncode, result.stderr) == (1, "")


def test_every_output_line_of_a_trigger_arrives(dokku: DokkuHost):
    dokku.create_app("app")
    assert dokku.command("set", "app", "static-web-listener", "10.0.0.1:5000").returncode == 0

    for _ in range(3):
        result = dokku.trigger("network-get-listeners", "app", "web")
        assert (result.returncode, result.stdout, result.stderr) == (0, "10.0.0.1:5000\n", "")
