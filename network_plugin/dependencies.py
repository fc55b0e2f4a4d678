"""The plugin's dependencies: `[project].dependencies` (and extras) of its pyproject.toml.

`install` runs this with the plugin's fresh interpreter, which may be Python 3.9
or 3.10 (Debian 11, Ubuntu 22.04): those have no `tomllib`, and nothing but the
standard library is installed yet. The array is read with the standard library:
TOML's quoted strings, commas, newlines and comments inside it are those of a
Python list literal once the comments are dropped.
"""

from __future__ import annotations

import ast
import sys

PROJECT_TABLE = "[project]"
DEPENDENCIES_KEY = "dependencies"
EXTRAS_TABLE = "[project.optional-dependencies]"
QUOTES = "\"'"


def _without_comment(line: str) -> str:
    """`line` up to a `#` that is not inside a quoted string."""
    quote = ""
    for position, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in QUOTES:
            quote = char
        elif char == "#":
            return line[:position]
    return line


def project_dependencies(pyproject: str, extra: str = "") -> list[str]:
    """The requirement strings of `[project].dependencies`, or of an extra ([] when absent)."""
    if extra:
        return string_array(pyproject, EXTRAS_TABLE, extra)
    return string_array(pyproject, PROJECT_TABLE, DEPENDENCIES_KEY)


def string_array(pyproject: str, wanted_table: str, wanted_key: str) -> list[str]:
    """The array of strings `wanted_key` of the table `wanted_table` (`[name]`)."""
    name = f"{wanted_table} {wanted_key}"
    table = ""
    array: list[str] = []
    for raw_line in pyproject.splitlines():
        line = _without_comment(raw_line).strip()
        if array:
            array.append(line)
        elif line.startswith("["):
            table = line
        elif table == wanted_table and line.partition("=")[0].strip() == wanted_key:
            array.append(line.partition("=")[2].strip())  # literal_eval of 3.9 refuses a leading blank
        if array:
            try:
                value = ast.literal_eval("\n".join(array))
            except SyntaxError:
                continue  # the array goes on over the next lines
            if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
                raise ValueError(f"{name} is not an array of strings")
            return value
    if array:
        raise ValueError(f"{name} is not closed")
    return []


def main(argv: list[str]) -> int:
    """`python -m network_plugin.dependencies <pyproject.toml> [<extra>]`: one requirement per line."""
    with open(argv[1], encoding="utf-8") as handle:
        print("\n".join(project_dependencies(handle.read(), argv[2] if len(argv) > 2 else "")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
