"""Credentials for the operator's own Prometheus (``run --prometheus-url``).

Managed Prometheus services and proxies in front of Thanos or Mimir want a bearer token,
basic auth, a tenant header and a private CA. These are the operator's secrets, so they
go only to the origin (scheme, host, port) of the operator's own Prometheus URL: a URL a
ModelServing or a policy names elsewhere is queried without them, even when a policy
allows it, so a tenant cannot collect them with a server of its own. Secret files are
read on every request, so a rotated token is used as soon as it is written.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from yarl import URL


class AuthError(ValueError):
    """A credential file that cannot be read or used."""


@dataclass(frozen=True)
class PrometheusAuth:
    url: str  # the operator's own Prometheus; credentials go to its origin only
    bearer_token_file: str | None = None
    username: str | None = None
    password_file: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_file: str | None = None
    insecure_skip_verify: bool = False

    def problems(self) -> list[str]:
        """What is wrong with these settings, before anything is sent."""
        out = []
        if self.bearer_token_file and (self.username or self.password_file):
            out.append("a bearer token and basic auth exclude each other")
        if bool(self.username) != bool(self.password_file):
            out.append("basic auth needs both --prometheus-username and --prometheus-password-file")
        for name in self.headers:
            if name.lower() == "authorization":
                out.append("set Authorization with a bearer token or basic auth, not a header")
        for path in (self.bearer_token_file, self.password_file, self.ca_file):
            if path and not Path(path).is_file():
                out.append(f"{path}: no such file")
        if self.ca_file and self.insecure_skip_verify:
            out.append("a CA file and --prometheus-insecure-skip-verify exclude each other")
        return out

    @property
    def configured(self) -> bool:
        return bool(
            self.bearer_token_file
            or self.username
            or self.headers
            or self.ca_file
            or self.insecure_skip_verify
        )

    def applies_to(self, url: str) -> bool:
        """Whether ``url`` is the operator's own Prometheus (same origin)."""
        try:
            return URL(url).origin() == URL(self.url).origin()
        except ValueError:
            return False

    def request_headers(self) -> dict[str, str]:
        out = dict(self.headers)
        if self.bearer_token_file:
            out["Authorization"] = f"Bearer {_read(self.bearer_token_file)}"
        elif self.username and self.password_file:
            pair = f"{self.username}:{_read(self.password_file)}".encode()
            out["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        return out

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What aiohttp's ``ssl`` argument takes: a context trusting the CA file,
        False to skip verification, True for the system's trust store."""
        if self.insecure_skip_verify:
            return False
        if self.ca_file:
            try:
                return ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as error:
                raise AuthError(f"{self.ca_file}: {error}") from None
        return True


def _read(path: str) -> str:
    try:
        value = Path(path).read_text().strip()
    except OSError as error:
        raise AuthError(f"{path}: {error.strerror or error}") from None
    if not value or "\n" in value:
        raise AuthError(f"{path}: expected one line")
    return value
