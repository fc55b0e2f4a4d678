"""The triggers' entry points that install makes (docs/reference.md: Install and update): a
file that the environment's interpreter runs itself (no /bin/sh), a link to `triggers/` where
no `#!` line can name it; an entry point install made and no longer makes goes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from network_plugin import packaging
from network_plugin.main import TRIGGERS
from tests.host import DokkuHost, made_by_install

NOT_INSTALLED = " !     The network plugin is not installed: run its install trigger\n"


def test_every_trigger_is_a_file_its_environments_interpreter_runs(dokku: DokkuHost):
    interpreter = packaging.environment_interpreter(str(dokku.plugin_dir))

    assert interpreter is not None
    assert os.path.isabs(interpreter) and "/.venvs/" not in interpreter  # the name it was made with
    for trigger in set(TRIGGERS) - set(packaging.ROOT_TRIGGERS):
        assert made_by_install(dokku.plugin_dir, trigger), trigger
        assert (dokku.plugin_dir / trigger).read_text().startswith(f"#!{interpreter} -EsS\n")
        assert os.access(dokku.plugin_dir / trigger, os.X_OK)
    assert os.readlink(dokku.plugin_dir / "commands") == "triggers/commands"


def fake_plugin(folder: Path, python3_target: str | None) -> Path:
    """A plugin folder whose `.venv/bin/python3` links to `python3_target` (None: a plain file)."""
    bin_dir = folder / ".venvs" / "abc" / "bin"
    bin_dir.mkdir(parents=True)
    (folder / ".venv").symlink_to(".venvs/abc")
    if python3_target is None:
        (bin_dir / "python3").write_text("")
    else:
        (bin_dir / "python").symlink_to(python3_target)
        (bin_dir / "python3").symlink_to("python")
    return folder


@pytest.mark.parametrize(
    "python3_target",
    [None, "/nonexistent/python3", f"/opt/{'x' * 100}/python3", "/opt/my python/python3"],
    ids=["not-a-link", "missing", "too-long-for-a-#!-line", "a-blank-in-it"],
)
def test_a_trigger_is_a_link_where_no_line_can_name_its_interpreter(tmp_path: Path, python3_target):
    plugin = fake_plugin(tmp_path, python3_target)

    packaging.make_entry_points(str(plugin))

    assert os.readlink(plugin / "network-get-property") == "triggers/network-get-property"
    assert packaging.environment_interpreter(str(plugin)) is None


def test_links_become_files_and_what_install_no_longer_makes_goes(tmp_path: Path):
    interpreter = shutil.which("python3")
    assert interpreter
    plugin = fake_plugin(tmp_path, interpreter)
    (plugin / "triggers").mkdir()
    kept = "#!/bin/sh\n# the repository's own\n"
    (plugin / "triggers" / "network-get-property").write_text(kept)
    (plugin / "network-get-property").symlink_to("triggers/network-get-property")  # an older install
    gone = packaging.trigger_file("post-deploy", interpreter)  # a trigger an older version made
    (plugin / "post-deploy").write_text(gone)
    (plugin / "notes").write_text("the operator's\n")

    changed = packaging.make_entry_points(str(plugin))

    assert made_by_install(plugin, "network-get-property")
    assert (plugin / "triggers" / "network-get-property").read_text() == kept  # not written through the link
    assert not os.path.lexists(plugin / "post-deploy")
    assert (plugin / "notes").read_text() == "the operator's\n"
    assert changed == len(packaging.generated_links()) + 1  # every entry made, one removed
    assert packaging.make_entry_points(str(plugin)) == 0  # made already: nothing changes


def copy_of_the_plugin(dokku: DokkuHost, folder: Path) -> Path:
    """The installed plugin copied elsewhere, as a folder moved to another disk would be."""
    moved = folder / "moved" / "network"
    shutil.copytree(dokku.plugin_dir.resolve(), moved, symlinks=True)
    return moved


def test_a_plugin_folder_moved_elsewhere_still_runs_its_triggers(dokku: DokkuHost, tmp_path: Path):
    dokku.create_app("app")
    moved = copy_of_the_plugin(dokku, tmp_path)

    result = subprocess.run(
        [str(moved / "network-get-property"), "app", "bind-all-interfaces"],
        env=dokku.env, capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert (result.returncode, result.stdout, result.stderr) == (0, "false\n", "")


def test_without_its_environment_a_reader_answers_and_a_trigger_needing_it_says_so(
    dokku: DokkuHost, tmp_path: Path
):
    dokku.create_app("app")
    assert dokku.command("set", "app", "attach-post-create", "app-net").returncode == 0
    moved = copy_of_the_plugin(dokku, tmp_path)
    (moved / ".venv").unlink()

    def run(*argv: str) -> tuple[int, str, str]:
        command = [str(moved / argv[0]), *argv[1:]]
        result = subprocess.run(command, env=dokku.env, capture_output=True, text=True, check=False)
        return result.returncode, result.stdout, result.stderr

    created = ("post-container-create", "app", "0123456789ab", "app", "deploy", "web")
    assert run("network-get-property", "app", "attach-post-create") == (0, "app-net\n", "")
    assert run(*created) == (1, "", NOT_INSTALLED)
    assert run("network-write-port", "app", "web", "1", "5000") == (1, "", NOT_INSTALLED)
