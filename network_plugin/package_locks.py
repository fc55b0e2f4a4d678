"""Which lock file in locks/ an interpreter installs from.

tools/lock writes one lock per range of Python minors that resolve alike, named for the
oldest minor of its range (`python3.9.txt`, `python3.10.txt`, ...): an interpreter takes
the one with the highest minor not above its own. `install` reads it with the system
interpreter (standard library only); tools/venv.sh and tools/platform-test run
`python3 -m network_plugin.package_locks [test]` for the test virtualenv's lock.
"""

from __future__ import annotations

import os
import re
import sys

LOCKS_DIR = "locks"
TEST_PREFIX = "test-"


def lock_for(plugin_dir: str, version: tuple[int, int], prefix: str = "") -> str:
    """The path of the lock `python<version>` installs from (prefix "test-" for the test tools)."""
    pattern = re.compile(rf"{re.escape(prefix)}python(\d+)\.(\d+)\.txt")
    folder = os.path.join(plugin_dir, LOCKS_DIR)
    ranges = []
    for name in os.listdir(folder):
        match = pattern.fullmatch(name)
        if match and (int(match[1]), int(match[2])) <= version:
            ranges.append(((int(match[1]), int(match[2])), name))
    if not ranges:
        raise LookupError(f"No lock in {folder} for Python {version[0]}.{version[1]}")
    return os.path.join(folder, max(ranges)[1])


def main(argv: list[str]) -> int:
    """`python3 -m network_plugin.package_locks [test]` (in the plugin folder): this interpreter's lock."""
    prefix = TEST_PREFIX if argv[1:] == ["test"] else ""
    print(os.path.relpath(lock_for(os.getcwd(), sys.version_info[:2], prefix)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
