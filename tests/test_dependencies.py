"""The dependency list `install` reads from pyproject.toml without `tomllib` (Python 3.9, 3.10)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from network_plugin.dependencies import project_dependencies
from tests.host import REPO_ROOT

PYPROJECT = (REPO_ROOT / "pyproject.toml").read_text()


def test_reads_what_tomllib_reads_from_the_projects_own_file():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+: the reference parser
    project = tomllib.loads(PYPROJECT)["project"]
    assert project["dependencies"]
    assert project_dependencies(PYPROJECT) == project["dependencies"]
    for extra, requirements in project["optional-dependencies"].items():
        assert project_dependencies(PYPROJECT, extra) == requirements


@pytest.mark.parametrize("extra", ["", "test"])
def test_prints_one_requirement_per_line_as_install_reads_them(extra: str):
    result = subprocess.run(
        [sys.executable, "-m", "network_plugin.dependencies", "pyproject.toml", *([extra] if extra else [])],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == project_dependencies(PYPROJECT, extra)
    assert result.stdout.strip()


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        ('[project]\nname = "x"\ndependencies = ["a>=1", "b<2"]\n', ["a>=1", "b<2"]),
        (
            '[project]\ndependencies = [  # pinned below\n  "a>=1,<2",  # why\n\n  # gone: "c"\n  "b",\n]\n',
            ["a>=1,<2", "b"],
        ),
        ("[project]\ndependencies = ['a; python_version < \"3.10\"']\n", ['a; python_version < "3.10"']),
        ('[project]\nname = "x"\n[tool.x]\ndependencies = ["not-ours"]\n', []),
        ('[tool.x]\ndependencies = ["not-ours"]\n[project]\ndependencies = []\n', []),
        ('[project.optional-dependencies]\ntest = ["t"]\n[project]\ndependencies = ["a"]\n', ["a"]),
    ],
    ids=["one-line", "comments-and-blank-lines", "marker-in-quotes", "other-table", "empty", "later-table"],
)
def test_reads_the_array_of_the_project_table(pyproject: str, expected: list[str]):
    assert project_dependencies(pyproject) == expected


@pytest.mark.parametrize(
    "pyproject",
    [
        '[project]\ndependencies = ["a",\n',
        '[project]\ndependencies = "a"\n',
        "[project]\ndependencies = [1]\n",
    ],
    ids=["unclosed", "not-an-array", "not-strings"],
)
def test_refuses_what_is_not_an_array_of_strings(pyproject: str):
    with pytest.raises(ValueError, match=r"\[project\] dependencies is not"):
        project_dependencies(pyproject)


def test_reads_an_extra_of_the_optional_dependencies_table():
    pyproject = (
        '[project]\ndependencies = ["a"]\n'
        '[project.optional-dependencies]\ndocs = ["d"]\ntest = [\n  "t1",\n  "t2",\n]\n'
    )
    assert project_dependencies(pyproject, "test") == ["t1", "t2"]
    assert project_dependencies(pyproject, "none") == []
