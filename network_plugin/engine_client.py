"""The docker SDK's client of the engine, the one place the SDK is imported to make it.

Its error answers are raised as `EngineAPIError`, which the code on both paths of a trigger
(cold: this client; warm: the watcher's, through `network_plugin.warm`) catches without
importing the SDK.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from network_plugin.error_handler import EngineAPIError, EngineUnreachable


class EngineClient(docker.APIClient):
    """The SDK's client, verifying a TLS engine with DOCKER_CERT_PATH's CA only.

    requests puts a host-wide REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in place of a session's own CA,
    which fails every call to an engine whose certificate that bundle does not sign.
    """

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings

    def _raise_for_status(self, response: Any) -> None:
        try:
            super()._raise_for_status(response)
        except docker.errors.APIError as error:
            raise EngineAPIError(error.status_code, str(error.explanation or error)) from error


def connect() -> EngineClient:
    """A client of the engine DOCKER_HOST (or the local socket) names; EngineUnreachable when
    none can be made."""
    try:
        client = EngineClient(**docker.utils.kwargs_from_env())
    except docker.errors.DockerException as error:
        raise EngineUnreachable(error) from error
    if client.base_url.startswith("http+docker://"):
        # A unix socket (or ssh): no proxy, netrc or CA bundle of the environment applies, yet
        # requests would look them up on every call (~0.15 ms of a ~0.65 ms one).
        client.trust_env = False
    return client
