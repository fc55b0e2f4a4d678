"""Atomic writes: a reader sees the old content or the new one, never a torn or empty file."""

from __future__ import annotations

import os
import stat

import pytest

from network_plugin import files


def test_write_atomic_creates_file_with_exact_content_and_mode(tmp_path):
    target = tmp_path / "IP.web.1"
    assert files.write_atomic(str(target), "172.17.0.2") is True
    assert target.read_bytes() == b"172.17.0.2"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["IP.web.1"]


def test_write_atomic_skips_unchanged_content(tmp_path):
    target = tmp_path / "tld"
    files.write_atomic(str(target), "svc.local")
    inode = target.stat().st_ino
    assert files.write_atomic(str(target), "svc.local") is False
    assert target.stat().st_ino == inode


def test_write_atomic_replaces_a_longer_value(tmp_path):
    target = tmp_path / "tld"
    files.write_atomic(str(target), "a-much-longer.value")
    assert files.write_atomic(str(target), "short") is True
    assert target.read_text() == "short"


def test_failed_write_keeps_old_content_and_leaves_no_temp_file(tmp_path, mocker):
    target = tmp_path / "IP.web.1"
    target.write_text("10.0.0.1")
    mocker.patch("network_plugin.files.os.fsync", side_effect=OSError(5, "Input/output error"))
    with pytest.raises(OSError, match="Input/output error"):
        files.write_atomic(str(target), "10.0.0.2")
    assert target.read_text() == "10.0.0.1"
    assert os.listdir(tmp_path) == ["IP.web.1"]


def test_write_atomic_does_not_follow_a_planted_temp_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    monkeypatch.setattr(os, "getpid", lambda: 4242)
    (tmp_path / ".IP.web.1.4242.tmp").symlink_to(victim)
    with pytest.raises(OSError):
        files.write_atomic(str(tmp_path / "IP.web.1"), "10.0.0.1")
    assert victim.read_text() == "precious"


def test_read_value_strips_what_older_plugins_appended(tmp_path):
    (tmp_path / "tld").write_text("svc.local\n")
    assert files.read_value(str(tmp_path / "tld")) == "svc.local"
    assert files.read_value(str(tmp_path / "missing")) == ""


def test_ensure_dir_creates_parents_with_0755(tmp_path):
    target = tmp_path / "config" / "network" / "app"
    files.ensure_dir(str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o755


@pytest.mark.root
def test_files_belong_to_the_dokku_user_when_written_as_root(tmp_path, mocker):
    if os.geteuid() != 0:
        pytest.skip("ownership is only changed when running as root")
    mocker.patch("network_plugin.files.dokku_owner", return_value=(4321, 4322))
    folder = tmp_path / "config"
    files.ensure_dir(str(folder))
    files.write_atomic(str(folder / "tld"), "svc.local")
    assert (folder.stat().st_uid, folder.stat().st_gid) == (4321, 4322)
    assert ((folder / "tld").stat().st_uid, (folder / "tld").stat().st_gid) == (4321, 4322)


@pytest.mark.root
def test_dokku_owner_follows_dokku_system_user(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("only root changes ownership")
    monkeypatch.setenv("DOKKU_SYSTEM_USER", "root")
    monkeypatch.setenv("DOKKU_SYSTEM_GROUP", "root")
    assert files.dokku_owner() == (0, 0)
    monkeypatch.setenv("DOKKU_SYSTEM_USER", "no-such-user-here")
    assert files.dokku_owner() is None


def test_remove_tree_removes_the_folder_but_never_what_a_link_points_to(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    folder = tmp_path / "props" / "node-js-app"
    (folder / "nested").mkdir(parents=True)
    (folder / "tld").write_text("svc.local")
    (folder / "nested" / "deep").write_text("x")
    (folder / "to-outside").symlink_to(outside)
    (folder / "to-file").symlink_to(outside / "keep")

    files.remove_tree(str(folder))
    files.remove_tree(str(folder))  # already gone: nothing to do

    assert not folder.exists()
    assert (outside / "keep").read_text() == "x"


def test_remove_tree_of_a_name_too_long_to_exist_is_a_no_op(tmp_path):
    files.remove_tree(str(tmp_path / ("x" * 300)))


def test_remove_tree_of_a_link_removes_only_the_link(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    (tmp_path / "link").symlink_to(target)
    files.remove_tree(str(tmp_path / "link"))
    assert not (tmp_path / "link").exists()
    assert (target / "keep").read_text() == "x"


def test_a_name_too_long_to_exist_is_read_as_absent_on_the_way_or_at_the_end(tmp_path):
    # A valid app or process type may be longer than a file name (255 bytes): nothing is there.
    long_name = "x" * 300
    assert files.read_value(str(tmp_path / long_name / "tld")) == ""
    assert files.read_value(str(tmp_path / f"IP.{long_name}.1")) == ""
    assert files.list_folder(str(tmp_path / long_name)) == []
    with pytest.raises(OSError, match="File name too long"):
        files.ensure_dir(str(tmp_path / long_name))  # nor can it be made
