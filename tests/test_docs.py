"""The documentation a clone carries stands on its own: its links resolve, and no file points
to a document outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.host import REPO_ROOT, repository_files

DOCUMENTS = ["README.md", "docs/reference.md", "docs/development.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
EXPLICIT_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
# The contract the project was built from is not part of a user's clone. Spelt in pieces, so
# that this file is not itself a mention of the folder.
OUTSIDE_REFERENCES = ("../" + "shared", "SPEC §", "SPEC.md")


def anchors(document: Path) -> set[str]:
    """GitHub's heading anchors (lower case, punctuation dropped, blanks as `-`), and explicit ones."""
    text = document.read_text()
    slugs = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in HEADING.findall(text)}
    return slugs | set(EXPLICIT_ANCHOR.findall(text))


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_relative_link_resolves(name: str):
    document = REPO_ROOT / name
    broken = []
    for target in LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            broken.append(target)
    assert broken == []


def test_no_file_refers_to_documents_outside_the_repository():
    found = [
        f"{name}: {reference}"
        for name in repository_files()
        if name != "tests/test_docs.py" and (REPO_ROOT / name).is_file()
        for reference in OUTSIDE_REFERENCES
        if reference in (REPO_ROOT / name).read_text(errors="replace")
    ]
    assert found == []


LAYOUT_ROW = re.compile(r"^\| (`[^|]+`) \| [^|]+ \| ([^|]*) \|$", re.MULTILINE)


def layout_rows() -> list[tuple[list[str], list[str]]]:
    """(paths, test modules) of each row of docs/development.md's layout table. A bare file name
    in a row's path cell lives in the folder of the path before it (`network_plugin/a.py`, `b.py`)."""
    text = (REPO_ROOT / "docs/development.md").read_text()
    section = text[text.index("## Layout") : text.index("## Tests")]
    rows = []
    for path_cell, tests_cell in LAYOUT_ROW.findall(section):
        paths, folder = [], ""
        for name in re.findall(r"`([^`]+)`", path_cell):
            if "/" in name:
                folder = name.rpartition("/")[0] + "/"
                paths.append(name)
            else:
                paths.append(folder + name)
        rows.append((paths, re.findall(r"`([^`]+)`", tests_cell)))
    return rows


def test_the_layout_lists_every_module_once_with_its_tests():
    rows = layout_rows()
    listed = [path for paths, _ in rows for path in paths if path.startswith("network_plugin/")]
    modules = sorted(path for path in repository_files() if path.startswith("network_plugin/"))
    assert sorted(listed) == modules
    for paths, tests in rows:
        if any(path.startswith("network_plugin/") for path in paths):
            assert tests, f"no tests named for {paths}"
    named = {test for _, tests in rows for test in tests}
    missing = sorted(test for test in named if not (REPO_ROOT / "tests" / test).is_file())
    assert missing == []
    test_modules = [path.rpartition("/")[2] for path in repository_files() if path.startswith("tests/test_")]
    unnamed = sorted(name for name in test_modules if name not in named)
    assert unnamed == []


def test_one_version_which_pyproject_and_the_changelog_follow():
    version_line = re.compile(r'^version = "([^"]+)"$', re.MULTILINE)
    plugin = version_line.findall((REPO_ROOT / "plugin.toml").read_text())
    project = version_line.findall((REPO_ROOT / "pyproject.toml").read_text())
    releases = re.findall(
        r"^## (\S+) \(\d{4}-\d\d-\d\d\)$", (REPO_ROOT / "CHANGELOG.md").read_text(), re.MULTILINE
    )
    assert len(plugin) == 1
    assert project == plugin
    assert releases[0] == plugin[0]
