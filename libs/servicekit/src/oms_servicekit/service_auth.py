"""A service's own credentials for the calls it makes to other services.

Service-to-service calls carry their own token (never a forwarded user's): the issuer
mints one for the calling service with just the roles it needs (the notifier's board
reads orders, so ``orders:read``), and the platform hands it over as ``SERVICE_TOKEN`` or,
better, as a file (``SERVICE_TOKEN_FILE``, e.g. a mounted Kubernetes secret that a token
refresher rewrites): the file is read again whenever it changes, so rotation needs no
restart. With no token in ``AUTH_MODE=dev`` the call names the service in ``X-Operator``,
so peers' audit rows and logs still say who asked.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from oms_servicekit.auth import OPERATOR_HEADER

log = logging.getLogger(__name__)


class ServiceCredentialSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    #: The service's bearer token for calls to other services (static).
    service_token: str = ""
    #: A file holding the token, read again when it changes (takes precedence).
    service_token_file: str = ""
    auth_mode: str = "dev"


class ServiceCredentials:
    """The headers that identify this service to a peer."""

    def __init__(self, service_name: str, settings: ServiceCredentialSettings | None = None):
        self.service_name = service_name
        self.settings = settings or ServiceCredentialSettings()
        self._file_token: str = ""
        self._file_stamp: tuple[int, int] | None = None

    def headers(self) -> dict[str, str]:
        token = self._token()
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.settings.auth_mode == "dev":
            return {OPERATOR_HEADER: f"service:{self.service_name}"}
        return {}

    def _token(self) -> str:
        path = self.settings.service_token_file
        if not path:
            return self.settings.service_token.strip()
        try:
            stat = os.stat(path)
        except OSError as exc:
            log.warning("service token file unreadable: %s", type(exc).__name__)
            return self.settings.service_token.strip()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._file_stamp:
            self._file_token = Path(path).read_text(encoding="utf-8").strip()
            self._file_stamp = stamp
        return self._file_token
