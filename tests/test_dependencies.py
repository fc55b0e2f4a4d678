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
    dependencies = tomllib.loads(PYPROJECT)["project"]["dependencies"]
    assert dependencies
    assert project_dependencies(PYPROJECT) == dependencies


def test_prints_one_requirement_per_line_as_install_reads_them():
    result = subprocess.run(
        [sys.executable, "-m", "network_plugin.dependencies", "pyproject.toml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == project_dependencies(PYPROJECT)


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
