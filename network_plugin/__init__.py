"""dokku-network: Dokku's network plugin, in Python.

Modules are kept small and import only the standard library at the top, so
that file-only triggers start as fast as the bare interpreter; `docker` and
`typer` are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import sys


def _stay_in_the_environment_it_started_in() -> None:
    """`.venv` is a link that `install` may switch to a new environment while this process
    runs: its lazy imports (docker, typer) keep coming from the one it started in (kept
    until a later switch), never from a mix of two."""
    prefix = sys.prefix
    real = os.path.realpath(prefix)
    if real != prefix:
        inside = prefix + "/"
        sys.path[:] = [real + path[len(prefix) :] if path.startswith(inside) else path for path in sys.path]


_stay_in_the_environment_it_started_in()
