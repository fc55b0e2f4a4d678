"""Links planted under the plugin's folders (docs/reference.md: Files on disk), and triggers
given arguments that would make them destroy what they set up.

The tests run as root, as `install` (and so `plugin:install` of any plugin) runs the plugin.
A link the Dokku user planted is one owned by another uid (`os.lchown`); a link the operator
made (a folder moved to another disk) is root's.
"""

from __future__ import annotations

import pytest

from tests.host import DokkuHost

WARN = " !     "


@pytest.mark.parametrize("trigger", ["post-app-rename-setup", "post-app-clone-setup"])
def test_setting_up_an_app_as_itself_is_refused_and_changes_nothing(dokku: DokkuHost, app: str, trigger: str):
    dokku.write_property(app, "tld", "svc.local")
    dokku.write_property(app, "attach-post-deploy", "net-a")
    (dokku.dokku_root / app / "IP.web.1").write_text("10.0.0.1")
    before = dokku.snapshot()

    result = dokku.trigger(trigger, app, app)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"{WARN}The new app is the old app: {app}, nothing to set up\n",
    )
    assert dokku.snapshot() == before
