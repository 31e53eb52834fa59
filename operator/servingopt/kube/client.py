"""A thin async Kubernetes API client on aiohttp: the operator's only write path.

Retries with backoff on 429 (honouring Retry-After), 5xx, connection errors and
timeouts; every request has a timeout, so a hung API server cannot wedge a reconcile.
Credentials come from the kubeconfig or the in-cluster service account via the
official client's loaders, and are read again when the API server answers 401 (a
rotated token file, an exec plugin's expired token): once per request at most, and
not more often than every ``renew_interval`` seconds. Counts its writes (``writes``)
for tests and metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl

from servingopt.api.names import is_dns_label

log = logging.getLogger("servingopt.kube")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


class ApiError(Exception):
    """The API server answered with an error status (after retries, where retried)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Login:
    """What a kubeconfig or the pod's service account says, before it becomes a session
    (kopf's login handler turns the same into a ``kopf.ConnectionInfo``)."""

    server: str
    ca_file: str | None = None
    verify: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    scheme: str | None = None  # "Bearer", "Basic"…
    token: str | None = None

    @property
    def authorization(self) -> str | None:
        if not self.token:
            return None
        return f"{self.scheme} {self.token}" if self.scheme else self.token

    def identity(self) -> str:
        """A digest of what authenticates: equal digests, same credentials (a reloaded
        client certificate counts by content, not by its temporary file name)."""
        digest = hashlib.sha256(f"{self.server}\0{self.authorization or ''}".encode())
        for path in (self.cert_file, self.key_file):
            if path:
                with open(path, "rb") as f:
                    digest.update(b"\0" + f.read())
        return digest.hexdigest()


def read_login(kubeconfig: str | None = None, context: str | None = None) -> Login:
    """From a kubeconfig (or $KUBECONFIG / ~/.kube/config), else the in-cluster account.

    Reads every file again on each call: a ``tokenFile`` or the service account's
    token file that was rotated gives the new token, an exec plugin is run again.
    """
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=cfg
        )
    except (config.ConfigException, FileNotFoundError, TypeError):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    header = cfg.get_api_key_with_prefix("authorization") or cfg.api_key.get("BearerToken")
    # Token files often end with a newline; a header cannot carry it.
    parts = str(header).strip().split(" ", 1) if header else []
    scheme, token = (parts[0], parts[1].strip()) if len(parts) == 2 else (None, "".join(parts))
    return Login(
        server=str(cfg.host).rstrip("/"),
        ca_file=cfg.ssl_ca_cert or None,
        verify=bool(cfg.verify_ssl),
        cert_file=cfg.cert_file or None,
        key_file=cfg.key_file or None,
        scheme=scheme,
        token=token or None,
    )


@dataclass(frozen=True)
class Credentials:
    server: str
    ssl_context: ssl.SSLContext | bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    identity: str = ""  # Login.identity() of what they were made from ("" for fixed ones)
    # How to read them again after a 401 (None: they cannot change).
    source: Callable[[], Credentials] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, kubeconfig: str | None = None, context: str | None = None) -> Credentials:
        """From a kubeconfig (or $KUBECONFIG / ~/.kube/config), else the in-cluster account;
        they know how to read themselves again (see :meth:`KubeClient.request`)."""
        return cls.from_login(
            read_login(kubeconfig, context), source=lambda: cls.load(kubeconfig, context)
        )

    @classmethod
    def from_login(
        cls, login: Login, source: Callable[[], Credentials] | None = None
    ) -> Credentials:
        context_ssl = ssl.create_default_context(cafile=login.ca_file)
        if not login.verify:
            context_ssl.check_hostname = False
            context_ssl.verify_mode = ssl.CERT_NONE
        if login.cert_file and login.key_file:
            context_ssl.load_cert_chain(login.cert_file, login.key_file)
        headers = {"Authorization": login.authorization} if login.authorization else {}
        return cls(login.server, context_ssl, headers, login.identity(), source)


class ScopeViolation(ApiError):
    """A request servingopt refuses to send: a malformed path, or a namespaced request
    outside the namespace the client is scoped to (never reaches the API server)."""

    def __init__(self, message: str) -> None:
        super().__init__(403, "ScopeViolation", message)


class ApiClient:
    """get / list / apply / patch / create / delete on top of one ``request`` method."""

    field_manager: str = "servingopt"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def write_count(self) -> int:
        raise NotImplementedError

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.request("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        items: list[dict[str, Any]] = (await self.request("GET", path, params=params)).get(
            "items", []
        )
        return items

    async def apply(
        self, path: str, body: Mapping[str, Any], *, manager: str | None = None, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply (JSON is YAML) as ``manager`` (default: the field manager)."""
        params = {"fieldManager": manager or self.field_manager, "force": str(force).lower()}
        return await self.request("PATCH", path, params=params, body=body, content_type=APPLY)

    async def merge_patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        params = {"fieldManager": self.field_manager}
        return await self.request("PATCH", path, params=params, body=body, content_type=MERGE)

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        params = {"fieldManager": self.field_manager}
        return await self.request("POST", path, params=params, body=body)

    async def delete(self, path: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            await self.request("DELETE", path, body={"propagationPolicy": "Background"})
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True


class KubeClient(ApiClient):
    """Requests against one API server, with retries, timeouts and credentials that are
    read again when the server stops accepting them."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        field_manager: str = "servingopt",
        timeout: float = 10.0,
        backoffs: Sequence[float] = (0.2, 0.5, 1.0, 2.0),
        max_retry_after: float = 10.0,
        renew_interval: float = 5.0,
    ) -> None:
        self.credentials = credentials
        self.field_manager = field_manager
        self.timeout = timeout
        self.backoffs = tuple(backoffs)
        self.max_retry_after = max_retry_after
        self.renew_interval = renew_interval
        self.writes: Counter[str] = Counter()  # "PATCH deployments" -> count
        self.requests = 0
        self.renewals = 0  # times the credentials were read again after a 401
        self._renewed_at: float | None = None  # monotonic time of the last reading
        self._renew_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    @property
    def write_count(self) -> int:
        return sum(self.writes.values())

    @classmethod
    def for_url(cls, url: str, **kwargs: Any) -> KubeClient:
        return cls(Credentials(server=str(url).rstrip("/")), **kwargs)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # No credentials in the session: each request carries those current when it is
        # sent, so renewed ones apply at once without closing connections in use.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call with retries; returns the decoded JSON body. A 401 is answered
        once by reading the credentials again (see :meth:`_renewed`)."""
        check_path(path)
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        used = self.credentials
        try:
            return await self._send(used, method, path, params, data, headers)
        except ApiError as error:
            if error.status != 401:
                raise
            fresh = await self._renewed(used, error)
            if fresh is None:
                raise
        return await self._send(fresh, method, path, params, data, headers)

    async def _renewed(self, used: Credentials, error: ApiError) -> Credentials | None:
        """Credentials worth retrying a request refused with 401, or None.

        Another request may have renewed them already; otherwise they are read again,
        but not more often than ``renew_interval``: credentials the server revoked
        cost one refused request per call, never a loop.
        """
        async with self._renew_lock:
            current = self.credentials
            if current is not used:
                return current if current.identity != used.identity else None
            if used.source is None:
                return None
            now = time.monotonic()
            if self._renewed_at is not None and now - self._renewed_at < self.renew_interval:
                return None
            self._renewed_at = now
            self.renewals += 1
            log.warning("the API server refused the credentials (%s); reading them again", error)
            try:
                fresh = await asyncio.to_thread(used.source)
            except Exception as exc:  # a missing file, a failing exec plugin: keep the 401
                log.warning("reading the credentials again failed: %s", exc)
                return None
            if fresh.identity == used.identity:
                log.warning("the credentials read again are the same; not retrying")
                return None
            self.credentials = fresh
            return fresh

    async def _send(
        self,
        credentials: Credentials,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        data: str | None,
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """The request with ``credentials``, retried on throttling and server errors."""
        # encoded=True: the path is sent as built; nothing may re-normalise its segments.
        url = yarl.URL(credentials.server.rstrip("/") + path, encoded=True)
        last: ApiError | None = None
        for attempt in range(len(self.backoffs) + 1):
            if attempt:
                delay = self.backoffs[attempt - 1]
                await asyncio.sleep(delay)
            self.requests += 1
            try:
                async with self._client().request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers={**credentials.headers, **headers},
                    ssl=credentials.ssl_context,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    text = await resp.text()
                    if resp.status < 400:
                        if method in WRITE_METHODS:
                            self.writes[f"{method} {_resource_of(path)}"] += 1
                            log.debug("%s %s -> %s", method, path, resp.status)
                        return json.loads(text) if text else {}
                    error = _error(resp.status, text)
                    if resp.status not in RETRY_STATUSES:
                        raise error
                    last = error
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                    if retry_after is not None and attempt < len(self.backoffs):
                        await asyncio.sleep(min(retry_after, self.max_retry_after))
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = ApiError(0, type(exc).__name__, str(exc) or "request failed")
        assert last is not None
        raise last


class NamespacedClient(ApiClient):
    """The API client as one ModelServing's reconcile sees it: requests to objects of
    another namespace are refused before they are sent; cluster-scoped objects may be
    read, never written."""

    def __init__(self, parent: ApiClient, namespace: str) -> None:
        if not is_dns_label(namespace):
            raise ScopeViolation(f"refused namespace {namespace!r}: not an RFC 1123 label")
        self.parent = parent
        self.namespace = namespace
        self.field_manager = parent.field_manager

    @property
    def write_count(self) -> int:
        return self.parent.write_count

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        check_scope(method, path, self.namespace)
        return await self.parent.request(
            method, path, params=params, body=body, content_type=content_type
        )


def scoped(client: ApiClient, namespace: str) -> ApiClient:
    """``client`` restricted to ``namespace`` (a client scoped elsewhere is refused)."""
    if isinstance(client, NamespacedClient):
        if client.namespace != namespace:
            raise ScopeViolation(
                f"refused namespace {namespace!r}: client is scoped to {client.namespace!r}"
            )
        return client
    return NamespacedClient(client, namespace)


_SEGMENT = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]*")


def check_path(path: str) -> list[str]:
    """The segments of an API path; ScopeViolation when it is not a plain path of
    names (an empty, ``.`` or ``..`` segment, escapes, a query or a fragment)."""
    if not path.startswith("/"):
        raise ScopeViolation(f"refused request path {path!r}: not absolute")
    parts = path[1:].split("/")
    for part in parts:
        if _SEGMENT.fullmatch(part) is None or part in (".", ".."):
            raise ScopeViolation(f"refused request path {path!r}: bad segment {part!r}")
    return parts


def namespace_of(parts: Sequence[str]) -> tuple[str | None, bool]:
    """(namespace, is_namespaced) of a checked path: ``/api/v1/namespaces/NS/...`` and
    ``/apis/GROUP/VERSION/namespaces/NS/...`` are namespaced; the rest (including the
    Namespace object ``/api/v1/namespaces/NS`` itself) is cluster-scoped."""
    prefix = 2 if parts[:1] == ["api"] else 3
    if len(parts) > prefix + 2 and parts[prefix] == "namespaces":
        return parts[prefix + 1], True
    return None, False


def check_scope(method: str, path: str, namespace: str) -> None:
    """Refuse a request of a namespace-scoped client that leaves its namespace."""
    parts = check_path(path)
    if parts[:1] not in (["api"], ["apis"]):
        raise ScopeViolation(f"refused request path {path!r}: not an API path")
    found, namespaced = namespace_of(parts)
    if namespaced and found != namespace:
        raise ScopeViolation(
            f"refused {method} {path}: outside namespace {namespace!r} of the ModelServing"
        )
    if not namespaced and method in WRITE_METHODS:
        raise ScopeViolation(f"refused {method} {path}: a cluster-scoped write")


def _resource_of(path: str) -> str:
    """``deployments``, ``modelservings/status``… for a request path (write counters)."""
    parts = [p for p in path.split("/") if p]
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        rest = parts[parts.index("namespaces") + 2 :]
    else:
        rest = parts[3:] if parts[:1] == ["apis"] else parts[2:]
    if not rest:
        return path
    return rest[0] + (f"/{rest[2]}" if len(rest) >= 3 else "")


def _error(status: int, text: str) -> ApiError:
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiError(status, str(body.get("reason", "")), str(body.get("message", text[:500])))


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
