"""The installed plugin answers through the paths plugn and Dokku use."""

from __future__ import annotations

from tests.conftest import DokkuHost


def test_get_property_of_new_app_is_default(dokku: DokkuHost) -> None:
    dokku.create_app("node-js-app")
    assert dokku.plugn_trigger("post-create", "node-js-app").returncode == 0
    result = dokku.trigger("network-get-property", "node-js-app", "bind-all-interfaces")
    assert (result.returncode, result.stdout, result.stderr) == (0, "false\n", "")
