"""A writer killed between its temp write and its rename: the old content stays
(docs/reference.md: Files on disk).

The writer is a forked child running the plugin's own entry point; only in that
child, `os.replace` (the rename `files.write_atomic` does) is swapped for a stall
that tells the parent where the temp file is. The parent then SIGKILLs it, as
an OOM killer or a power cut would, and reads through the installed plugin.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from network_plugin.main import main
from tests.host import DokkuHost

APP = "node-js-app"
LISTENERS = "network-get-listeners"


def kill_before_rename(argv: list[str]) -> Path:
    """Run `main(argv)` in a child, SIGKILL it when it is about to rename; return its temp file."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)

            def stall(source: str, target: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
                # The rename happens in the target's folder descriptor: the temp file's path is there.
                folder = os.readlink(f"/proc/self/fd/{src_dir_fd}")
                os.write(write_end, f"{os.path.join(folder, source)}\n".encode())
                while True:
                    time.sleep(60)

            os.replace = stall
            main(argv)
        finally:
            os._exit(99)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        temp = pipe.readline().strip()  # '' when the child ended without renaming anything
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert temp, "the writer finished without reaching its rename"
    return Path(temp)


def temp_files(dokku: DokkuHost) -> list[Path]:
    return sorted(path for path in dokku.dokku_root.parent.rglob("*") if path.name.endswith(".tmp"))


@pytest.fixture
def root(dokku: DokkuHost) -> Path:
    root = dokku.create_app(APP)
    (root / "IP.web.1").write_text("10.0.0.1")
    (root / "PORT.web.1").write_text("5000")
    dokku.write_property(APP, "tld", "old.example")
    dokku.write_property("--global", "tld", "global-old.example")
    return root


# (argv of the killed writer, file it writes, old content, new content,
#  reader trigger args, what the reader prints before, and after the next write)
CASES = {
    "property": (
        ["/plugin/subcommands/set", "network:set", APP, "tld", "new.example"],
        "lib:node-js-app/tld",
        "old.example",
        "new.example",
        ("network-get-property", APP, "tld"),
        "old.example\n",
        "new.example\n",
    ),
    "global-property": (
        ["/plugin/subcommands/set", "network:set", "--global", "tld", "global-new.example"],
        "lib:--global/tld",
        "global-old.example",
        "global-new.example",
        ("network-get-property", "other-app", "tld"),
        "global-old.example\n",
        "global-new.example\n",
    ),
    "ip": (
        ["/plugin/network-write-ipaddr", APP, "web", "1", "10.0.0.2"],
        "root:IP.web.1",
        "10.0.0.1",
        "10.0.0.2",
        (LISTENERS, APP, "web"),
        "10.0.0.1:5000\n",
        "10.0.0.2:5000\n",
    ),
    "port": (
        ["/plugin/network-write-port", APP, "web", "1", "8080"],
        "root:PORT.web.1",
        "5000",
        "8080",
        (LISTENERS, APP, "web"),
        "10.0.0.1:5000\n",
        "10.0.0.1:8080\n",
    ),
}


def target_path(dokku: DokkuHost, where: str) -> Path:
    place, _, name = where.partition(":")
    return dokku.properties_root / name if place == "lib" else dokku.dokku_root / APP / name


def installed_argv(argv: list[str]) -> tuple[str, list[str]]:
    """(`trigger` or `command` name, its arguments) of an in-process argv, for DokkuHost."""
    program = os.path.basename(argv[0])
    return (program, argv[2:]) if "/subcommands/" in argv[0] else (program, argv[1:])


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_killed_writer_leaves_old_content_and_next_write_succeeds(dokku, root, case):
    argv, where, old, new, reader, before, after = case
    dokku.create_app("other-app")
    target = target_path(dokku, where)

    temp = kill_before_rename(argv)

    # The writer got as far as a complete temp file next to the target, and no further.
    assert temp.parent == target.parent
    assert temp.read_text() == new
    assert target.read_text() == old
    # Readers see the old value, never the temp file.
    assert (dokku.trigger(*reader).returncode, dokku.trigger(*reader).stdout) == (0, before)
    report = dokku.command("report", APP, "--format", "json")
    assert report.returncode == 0 and report.stderr == ""

    # The killed writer's lock died with it: the next write goes through (a lock left held
    # would end it with "Timed out ... waiting for the lock", however fast the machine).
    program, args = installed_argv(argv)
    run = dokku.command if "/subcommands/" in argv[0] else dokku.trigger
    result = run(program, *args)
    assert (result.returncode, result.stderr) == (0, "")
    assert target.read_text() == new
    assert dokku.trigger(*reader).stdout == after
    # ...and it swept the dead writer's temp file away.
    assert temp_files(dokku) == []


def test_killed_first_write_leaves_nothing_readers_could_take_for_a_value(dokku, root):
    temp = kill_before_rename(["/plugin/network-write-ipaddr", APP, "web", "2", "10.0.0.2"])
    assert temp.read_text() == "10.0.0.2"
    assert not (root / "IP.web.2").exists()
    assert dokku.trigger(LISTENERS, APP, "web").stdout == "10.0.0.1:5000\n"
    assert dokku.trigger("network-config-exists", APP).stdout == "true\n"

    temp = kill_before_rename(["/plugin/subcommands/set", "network:set", APP, "initial-network", "net-a"])
    assert temp.read_text() == "net-a"
    assert dokku.trigger("network-get-property", APP, "initial-network").stdout == "\n"
    args = dokku.trigger("docker-args-process-deploy", APP, "herokuish", stdin=" -e A=1")
    assert (args.returncode, args.stdout, args.stderr) == (0, " -e A=1", "")

    assert dokku.trigger("network-write-ipaddr", APP, "web", "2", "10.0.0.3").returncode == 0
    assert dokku.trigger(LISTENERS, APP, "web").stdout == "10.0.0.1:5000 10.0.0.3:5000\n"
    # Only the temp file of the written target is swept: the other one waits for its own write.
    assert [path.name for path in temp_files(dokku)] == [temp.name]
    assert dokku.command("set", APP, "initial-network", "net-b").returncode == 0
    assert temp_files(dokku) == []


def test_sweep_keeps_files_that_are_not_temp_files_of_the_target(dokku, root):
    keep = [".tld.tmp", ".tld.backup.tmp", "tld.1.tmp", ".tld.12x.tmp", ".tls.12.tmp", ".tld.12.tmp.orig"]
    folder = dokku.properties_root / APP
    for name in keep:
        (folder / name).write_text("x")
    (folder / ".tld.4242.tmp").write_text("stale")

    result = dokku.command("set", APP, "tld", "new.example")

    assert (result.returncode, result.stderr) == (0, "")
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted([*keep, ".lock", "tld"])
