"""dokku-network: Dokku's network plugin, in Python.

Modules are kept small and import only the standard library at the top, so
that file-only triggers start as fast as the bare interpreter; `docker`,
`typer` and `filelock` are imported inside the functions that need them, which
call `use_site_packages()` first.
"""

from __future__ import annotations

import os
import sys


def _target(folder: str) -> str:
    """Where the link `folder` points (one readlink, a tenth of realpath's cost), or `folder`."""
    try:
        return os.path.join(os.path.dirname(folder), os.readlink(folder))
    except OSError:  # not a link
        return folder


def _environment() -> str:
    """The environment this interpreter runs from: its own (`.venv/bin/python3`, as `commands`
    and the `/bin/sh` preambles start it), else the plugin's `.venv` (a trigger file that the
    environment's base interpreter runs itself, packaging.trigger_file)."""
    folder = os.path.dirname(os.path.dirname(sys.executable))
    if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
        return folder
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv")


# `.venv`, a link that `install` may switch to a new environment while this process runs,
# and the folder it pointed to at the start.
_ENVIRONMENT = _environment()
_STARTED_IN = _target(_ENVIRONMENT)
_site_packages_added = False


def _stay_in_the_environment_it_started_in() -> None:
    """Lazy imports (docker, typer) keep coming from the environment the process started in
    (kept until a later switch), never from a mix of two."""
    if sys.prefix != _ENVIRONMENT or _STARTED_IN == _ENVIRONMENT:
        return
    inside = _ENVIRONMENT + "/"
    sys.path[:] = [
        _STARTED_IN + path[len(_ENVIRONMENT) :] if path.startswith(inside) else path for path in sys.path
    ]


def use_site_packages() -> None:
    """Put the environment's packages on `sys.path`, where a trigger started without them.

    Triggers run with `-S`: `site` (its `.pth` files, a distribution's `sitecustomize`) costs
    each ~1.5 ms, and most of them import nothing from the environment. The code that imports
    `docker`, `typer` or `filelock` calls this first.
    """
    global _site_packages_added  # noqa: PLW0603 - once per process
    if _site_packages_added or not sys.flags.no_site:
        return
    # The packages of the folder `.venv` pointed to at the start, where `venv` lays them out:
    # `site.main()` would follow the link as it is now, and Debian's `site.getsitepackages()`
    # names dist-packages folders for any prefix but the running environment's.
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    packages = os.path.join(_STARTED_IN, "lib", version, "site-packages")
    if not os.path.isfile(os.path.join(_STARTED_IN, "pyvenv.cfg")) or not os.path.isdir(packages):
        # No environment, or one of another Python (the host's was upgraded since install).
        from network_plugin.error_handler import PluginError

        raise PluginError("The network plugin is not installed: run its install trigger")
    import site

    site.addsitedir(packages)
    _site_packages_added = True


_stay_in_the_environment_it_started_in()
