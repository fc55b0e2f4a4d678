"""dokku-network: Dokku's network plugin, in Python.

Modules are kept small and import only the standard library at the top, so
that file-only triggers start as fast as the bare interpreter; `docker` and
`typer` are imported inside the functions that need them.
"""
