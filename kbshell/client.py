"""A dict-level client for one real API server, and the kernel's requests and reads over it.

Built on the official `kubernetes` package, but only its transport: `ApiClient.param_serialize`
builds the URL, headers and authentication from a `Configuration`, `call_api` sends the request,
and the body is decoded as plain JSON. No model classes, nothing interpreted: objects are the
dicts the server sent, as kbsim's in-memory servers return them.

Rules:
 1. Every failure is a `kbcore.errors.ApiError`. An error response becomes the server's `Status`
    (code, reason, message, details, Retry-After), or client-go's generic error for a body that
    is not one. No answer at all (connection refused, unknown host, TLS failure, connection
    broken) is `ApiError(0, UNREACHABLE, "<host>: <reason>")`; no answer in time is 504 Timeout.
 2. urllib3 does not retry: the kernel's `judge` decides what happens after a failure.
 3. `KubeClient` is a `kbcore.runtime.cluster.ClusterAPI`: `perform` executes a
    `kbcore.runtime.requests.Request` and `read` answers a `kbcore.reads.Read` through that
    module, as kbsim does (the object or None (404) for a Get, the items for a List, the
    document for Discovery/OpenAPIDoc, `Failed(error)` for any other failure).
 4. List items get `apiVersion`/`kind` from the list (the server omits them for built-in kinds),
    so a cached object looks like a GET result.
 5. A watch is a `WatchStream`: events read line by line as the server sends them, with a read
    timeout past the server's own `timeoutSeconds`, so a silently frozen stream still ends.
    `close()` may be called from any thread and ends the iteration promptly.
 6. In a Pod (`in_cluster`) the bearer token is the file the kubelet keeps current
    (`FileToken`): every request, a watch's reconnect included, sends the token read at most
    TOKEN_REFRESH_SECONDS ago (client-go's period), and a 401 re-reads the file at once. When
    that gives a different token the request is sent again, once, with it: a 401 is decided
    before anything is done, so even a create is safe to repeat. A 401 with an unchanged token
    is the caller's, as any error.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse
from kubernetes.config.incluster_config import InClusterConfigLoader
from urllib3.util.ssl_ import create_urllib3_context

from kbcore import errors
from kbcore import objects as o
from kbcore.api import keys
from kbcore.control.kubeconfig import Credentials
from kbcore.errors import ApiError
from kbcore.limits import json_depth
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.reads import Read
from kbcore.runtime import cluster
from kbcore.runtime.requests import PatchType as PatchType  # re-exported for callers
from kbcore.runtime.requests import Request

USER_AGENT = "kube-bind-konnector/0.1.0"
POOL_MAXSIZE = 64
"""Idle connections kept per server. Every reflector's watch holds one for minutes and hands it
back when the watch ends; a few dozen of them plus the workers' requests must fit, or urllib3
discards connections (and warns each time) instead of reusing them."""
ENCODER_DEPTH = 500
"""Bodies nested deeper than this are encoded by kbcore (`json_text`) rather than by the
kubernetes package, whose encoders recurse (Python stops at about a thousand frames)."""
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
WATCH_TIMEOUT_MARGIN = 30.0
"""The client gives up reading a watch this long after the server should have ended it."""
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet projects a Pod's ServiceAccount token, the cluster CA and the namespace."""
TOKEN_REFRESH_SECONDS = 60.0
"""How old the token read from the file may be (rule 6); client-go re-reads it every minute."""

_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}

_GENERIC_RESPONSES = {
    # client-go's errors.NewGenericServerResponse: what a client reports for an error response
    # without a Status body (e.g. the text/plain "404 page not found" of an unknown API group).
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", "the server does not allow access to the requested resource"),
    404: ("NotFound", "the server could not find the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    500: ("InternalError", "an error on the server has prevented the request from succeeding"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be "
        "processing the request",
    ),
}


def api_error(status: int, data: Any, headers: Mapping[str, str] | None = None) -> ApiError:
    """The `ApiError` for an error response (a `metav1.Status` body, as kbsim builds it).

    A body that is not a Status is interpreted as client-go does (`NewGenericServerResponse`):
    reason and message from the HTTP code, the body kept as an `UnexpectedServerResponse` cause.
    """
    retry_after = None
    if headers is not None and headers.get("Retry-After"):
        with contextlib.suppress(ValueError):
            retry_after = float(headers["Retry-After"])
    if isinstance(data, dict) and data.get("kind") == "Status":
        return ApiError(
            int(data.get("code") or status),
            str(data.get("reason") or ""),
            str(data.get("message") or ""),
            retry_after=retry_after,
            details=data.get("details") or None,
        )
    reason, message = _GENERIC_RESPONSES.get(
        status,
        (
            "",
            f"the server responded with the status code {status} but did not return more "
            "information",
        ),
    )
    body = data if isinstance(data, str) else o.json_text(data)
    return ApiError(
        status,
        reason,
        message,
        retry_after=retry_after,
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": body.strip()}]},
    )


_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
_SSL_LOCATION = re.compile(r"\s*\(_ssl\.c:\d+\)")


def _short_reason(err: BaseException) -> str:
    """A few words on why no answer came, for `ApiError.message` and conditions."""
    if isinstance(err, urllib3.exceptions.MaxRetryError) and err.reason is not None:
        return _short_reason(err.reason)
    if isinstance(err, urllib3.exceptions.NameResolutionError):
        return "cannot resolve host"
    if isinstance(err, urllib3.exceptions.NewConnectionError):
        text = str(err).split("new connection: ", 1)[-1]
        return _ERRNO.sub("", text).lower() or "cannot connect"
    if isinstance(err, urllib3.exceptions.ConnectTimeoutError):
        return "connect timed out"
    if isinstance(err, urllib3.exceptions.ProxyError):
        original = err.original_error
        return "proxy: " + (_short_reason(original) if original else str(err))
    if isinstance(err, urllib3.exceptions.SSLError | ApiException):
        # kubernetes' REST layer turns urllib3's SSLError into ApiException(0, "SSLError\n...").
        lines = str(err.reason if isinstance(err, ApiException) else err).splitlines()
        detail = next((t for t in reversed(lines) if t.strip()), "handshake failed")
        return "TLS: " + _SSL_LOCATION.sub("", detail.split("SSLError(", 1)[-1]).strip("()'\" ")
    if isinstance(err, urllib3.exceptions.ProtocolError):
        why = err.args[1] if len(err.args) > 1 else (err.args[0] if err.args else err)
        return "connection broken: " + str(why)
    return _ERRNO.sub("", str(err)) or type(err).__name__


def unreachable(host: str, err: BaseException) -> ApiError:
    """No HTTP answer from `host` at all (rule 1)."""
    return ApiError(errors.UNREACHABLE_CODE, errors.UNREACHABLE, f"{host}: {_short_reason(err)}")


class WatchStream:
    """One watch response: an iterator of event dicts (`{"type": ..., "object": {...}}`).

    Iteration ends when the server ends the watch (its `timeoutSeconds`), when the connection
    breaks or the read times out (`end_reason` says which), or after `close()`. Only an event
    that is not JSON raises (ApiError 500): a broken connection is an ordinary end, as in
    client-go, and the caller resumes from its last resourceVersion.
    """

    def __init__(self, response: Any, host: str) -> None:
        self._response = response  # a urllib3 HTTPResponse, body not yet read
        self._host = host
        self._closed = threading.Event()
        self._lines = self._read_lines()
        self.end_reason = ""

    def __iter__(self) -> Iterator[Obj]:
        return self

    def __next__(self) -> Obj:
        line = next(self._lines)
        try:
            event = o.parse_json(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self.close()
            raise ApiError(
                500,
                errors.INTERNAL_ERROR,
                f"{self._host}: watch event is not a JSON object: {line[:200]!r}",
            )
        return event

    def _read_lines(self) -> Iterator[bytes]:
        buffer = b""
        try:
            # With chunked encoding (as the API server sends watches) `stream` yields each
            # chunk as it arrives, not only when 64 KiB have piled up.
            for chunk in self._response.stream(65536):
                buffer += chunk
                while (newline := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:newline], buffer[newline + 1 :]
                    if line.strip():
                        yield line
            if buffer.strip():
                yield buffer
            self.end_reason = "closed by the client" if self._closed.is_set() else "ended"
        except urllib3.exceptions.ReadTimeoutError:
            self.end_reason = "read timed out"
        except Exception as err:  # a broken connection, or our own close() from another thread
            self.end_reason = (
                "closed by the client" if self._closed.is_set() else _short_reason(err)
            )
        finally:
            with contextlib.suppress(Exception):
                self._response.release_conn()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """End the stream; safe from any thread, while another one is blocked reading it."""
        self._closed.set()
        # shutdown() wakes a reader blocked in recv(); close() alone would not.
        with contextlib.suppress(Exception):
            self._response.shutdown()
        with contextlib.suppress(Exception):
            self._response.close()


class FileToken:
    """A bearer token from a file that is rewritten while we run (rule 6); thread-safe.

    The kubelet rotates a projected token by swapping a `..data` symlink, so a read sees the
    old file or the new one, never half of either. A read that fails keeps the token we have.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        refresh_seconds: float = TOKEN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = os.fspath(path)
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token = self._read()  # no token at all is the caller's error, at start
        self._read_at = clock()
        self.reads = 1

    def _read(self) -> str:
        with open(self.path) as f:
            token = f.read().strip()
        if not token:
            raise ValueError(f"{self.path} is empty")
        return token

    def _reload_locked(self) -> bool:
        try:
            token = self._read()
        except (OSError, ValueError):
            return False  # gone for a moment: the next 401, or the next period, tries again
        finally:
            self._read_at = self._clock()
            self.reads += 1
        changed = token != self._token
        self._token = token
        return changed

    def current(self) -> str:
        """The token, re-read when the last read is TOKEN_REFRESH_SECONDS old."""
        with self._lock:
            if self._clock() - self._read_at >= self._refresh:
                self._reload_locked()
            return self._token

    def reload(self) -> bool:
        """Re-read now (after a 401); whether the token changed."""
        with self._lock:
            return self._reload_locked()

    def install(self, cfg: Configuration) -> None:
        """Make `cfg` send the current token: the kubernetes package calls this hook each time
        it builds a request's Authorization header."""

        def refresh(c: Configuration) -> None:
            c.api_key["BearerToken"] = f"Bearer {self.current()}"

        cfg.api_key = {"BearerToken": f"Bearer {self.current()}"}
        cfg.api_key_prefix = {}
        cfg.refresh_api_key_hook = refresh  # type: ignore[assignment]  # typed None upstream


def _configuration() -> Configuration:
    cfg = Configuration()
    # The kernel decides about retries (requests.judge), not urllib3.
    cfg.retries = False
    cfg.connection_pool_maxsize = POOL_MAXSIZE
    return cfg


class KubeClient:
    """One API server as one user; thread-safe (urllib3's pool is)."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        user_agent: str = USER_AGENT,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        token: FileToken | None = None,
    ) -> None:
        self._api = api_client
        self.token = token
        if token is not None:
            token.install(api_client.configuration)
        self._api.user_agent = user_agent
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.server: str = api_client.configuration.host
        self.host = urllib.parse.urlsplit(self.server).netloc or self.server

    def __repr__(self) -> str:
        return f"<KubeClient {self.server}>"

    # --- constructors

    @classmethod
    def from_kubeconfig(
        cls, config: Mapping[str, Any], context: str | None = None, *, user_agent: str = USER_AGENT
    ) -> KubeClient:
        """From a parsed kubeconfig (any auth the `kubernetes` package supports)."""
        cfg = _configuration()
        # The kubernetes package ships py.typed but leaves its config loaders unannotated.
        api = kube_config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
            dict(config), context=context, persist_config=False, client_configuration=cfg
        )
        return cls(api, user_agent=user_agent)

    @classmethod
    def from_kubeconfig_file(
        cls,
        path: str | os.PathLike[str],
        context: str | None = None,
        *,
        user_agent: str = USER_AGENT,
    ) -> KubeClient:
        """From a kubeconfig file (relative paths in it are relative to the file, as kubectl
        reads them)."""
        cfg = _configuration()
        # Unannotated in the kubernetes package (see from_kubeconfig).
        api = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            os.fspath(path), context=context, persist_config=False, client_configuration=cfg
        )
        return cls(api, user_agent=user_agent)

    @classmethod
    def in_cluster(
        cls,
        *,
        user_agent: str = USER_AGENT,
        directory: str = SERVICE_ACCOUNT_DIR,
        environ: Mapping[str, str] = os.environ,
    ) -> KubeClient:
        """From the Pod's ServiceAccount: `KUBERNETES_SERVICE_HOST`/`_PORT`, the CA and the
        token in `directory`, the token re-read as the kubelet rotates it (rule 6)."""
        cfg = _configuration()
        token_path = os.path.join(directory, "token")
        # The package's loader checks the environment and the files and sets host and CA; its
        # own token refresh is off, as it re-reads only once a minute and never after a 401.
        loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
            token_filename=token_path,
            cert_filename=os.path.join(directory, "ca.crt"),
            try_refresh_token=False,
            environ=environ,
        )
        loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
        return cls(ApiClient(cfg), user_agent=user_agent, token=FileToken(token_path))

    @classmethod
    def from_credentials(cls, creds: Credentials, *, user_agent: str = USER_AGENT) -> KubeClient:
        """From sanitized provider credentials (`kbcore.control.kubeconfig`): inline data only.

        Raises ValueError for credentials no connection can be made with (data that is not
        base64 PEM, a key that does not match its certificate, a SOCKS proxy without PySocks)."""
        cfg = _configuration()
        cfg.host = creds.server.rstrip("/")
        cfg.verify_ssl = not creds.insecure_skip_tls_verify
        tls = None
        if creds.client_certificate_data or creds.client_key_data:
            tls = _client_certificate_context(creds)  # carries the CA too
        elif creds.certificate_authority_data and not creds.insecure_skip_tls_verify:
            cfg.ca_cert_data = _decode(creds.certificate_authority_data, "CA data")
        if creds.tls_server_name:
            cfg.tls_server_name = creds.tls_server_name
        if creds.proxy_url:
            cfg.proxy = creds.proxy_url
        if creds.token:
            cfg.api_key = {"BearerToken": f"Bearer {creds.token}"}
        elif creds.username or creds.password:
            basic = urllib3.util.make_headers(basic_auth=f"{creds.username}:{creds.password}")
            cfg.api_key = {"BearerToken": basic["authorization"]}
        try:
            api = ApiClient(cfg)
        except ImportError as err:  # urllib3 needs PySocks for a socks5 proxy-url
            raise ValueError(f"proxy-url {creds.proxy_url}: {err}") from err
        if tls is not None:
            # Configuration has no field for an SSL context; the pool manager passes this one
            # to every connection pool it creates, and none exists yet.
            api.rest_client.pool_manager.connection_pool_kw["ssl_context"] = tls
        return cls(api, user_agent=user_agent)

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]  # unannotated in kubernetes

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transport

    @contextlib.contextmanager
    def _translated(self, read_timeout: float) -> Iterator[None]:
        """Rule 1 for everything that is not an HTTP answer."""
        try:
            yield
        except ApiError:
            raise
        except urllib3.exceptions.ReadTimeoutError as err:
            raise ApiError(
                504, errors.TIMEOUT, f"{self.host}: no response within {read_timeout:.0f}s"
            ) from err
        except ApiException as err:
            # kubernetes' REST layer reports urllib3's SSLError this way; anything else is a bug.
            if err.status != 0 or not str(err.reason).startswith("SSLError"):
                raise
            raise unreachable(self.host, err) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise unreachable(self.host, err) from err

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
        read_timeout: float | None = None,
    ) -> Any:
        """One request; the urllib3 response (body not yet read) for a 2xx, else ApiError."""
        timeout = read_timeout or self.read_timeout
        for attempt in (1, 2):
            response = self._send(method, path, query, body, content_type, timeout)
            if response.status < 400:
                return response.response
            with self._translated(timeout):
                # RESTResponse.read is unannotated in the kubernetes package.
                raw = response.read()  # type: ignore[no-untyped-call]
            if response.status == 401 and attempt == 1 and self.token and self.token.reload():
                continue  # rotated under us: once more with the new token (rule 6)
            try:
                data = o.parse_json(raw) if raw else None
            except ValueError:
                data = raw.decode(errors="replace")
            raise api_error(response.status, data, response.headers)
        raise AssertionError("unreachable")

    def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        content_type: str,
        timeout: float,
    ) -> RESTResponse:
        """One HTTP exchange, its RESTResponse whatever the status (rule 1 for no answer)."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The kubernetes package encodes a body by recursion (sanitize_for_serialization, then
        # json.dumps), which fails past about a thousand levels; an API server takes ten
        # thousand (kbcore.limits). A body that deep is encoded here and sent as bytes.
        deep = body is not None and json_depth(body, ENCODER_DEPTH) > ENCODER_DEPTH
        method, url, headers, serialized, _ = self._api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=None if deep else body,
            auth_settings=["BearerToken"],
        )
        with self._translated(timeout):
            if deep:
                return RESTResponse(
                    self._api.rest_client.pool_manager.request(
                        method,
                        url,
                        body=o.json_text(body).encode(),
                        headers=headers,
                        timeout=urllib3.Timeout(connect=self.connect_timeout, read=timeout),
                        preload_content=False,
                    )
                )
            response: RESTResponse = self._api.call_api(
                method,
                url,
                header_params=headers,
                body=serialized,
                _request_timeout=(self.connect_timeout, timeout),
            )
            return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._call(method, path, **kwargs)
        with self._translated(kwargs.get("read_timeout") or self.read_timeout):
            raw = response.data
        try:
            return o.parse_json(raw) if raw else None  # as deep as the server sends
        except ValueError as err:
            raise ApiError(
                500, errors.INTERNAL_ERROR, f"{self.host}: {method} {path}: response is not JSON"
            ) from err

    @staticmethod
    def path(gvr: GVR, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """The server-relative URL of a collection, an object or its subresource."""
        parts = ["/api/v1" if not gvr.group else f"/apis/{gvr.group}/{gvr.version}"]
        if namespace:
            parts += ["namespaces", namespace]
        parts.append(gvr.resource)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    # --- requests

    def get(self, gvr: GVR, key: ObjectKey, *, subresource: str = "") -> Obj:
        result: Obj = self._json("GET", self.path(gvr, key.namespace, key.name, subresource))
        return result

    def list(
        self,
        gvr: GVR,
        namespace: str = "",
        label_selector: str = "",
        resource_version: str = "",
        *,
        fill_type_meta: bool = True,
    ) -> tuple[list[Obj], str]:
        """(items, the list's resourceVersion); rule 4 unless `fill_type_meta` is False."""
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        data = self._json("GET", self.path(gvr, namespace), query=query)
        items: list[Obj] = [i for i in data.get("items") or [] if isinstance(i, dict)]
        if fill_type_meta:
            kind = str(data.get("kind") or "").removesuffix("List")
            api_version = str(data.get("apiVersion") or gvr.api_version)
            for item in items:
                item.setdefault("apiVersion", api_version)
                if kind:
                    item.setdefault("kind", kind)
        return items, str((data.get("metadata") or {}).get("resourceVersion", ""))

    def create(self, gvr: GVR, body: Obj, field_manager: str = keys.FIELD_MANAGER) -> Obj:
        """POST into `body.metadata.namespace` (ignored for Namespaces themselves)."""
        namespace = (body.get("metadata") or {}).get("namespace", "")
        if gvr == GVR("", "v1", "namespaces"):
            namespace = ""
        result: Obj = self._json(
            "POST", self.path(gvr, namespace), query=[("fieldManager", field_manager)], body=body
        )
        return result

    def update(
        self,
        gvr: GVR,
        body: Obj,
        subresource: str = "",
        field_manager: str = keys.FIELD_MANAGER,
    ) -> Obj:
        """PUT of the whole object; name and namespace from `body.metadata`."""
        meta = body.get("metadata") or {}
        path = self.path(gvr, meta.get("namespace", ""), meta["name"], subresource)
        result: Obj = self._json("PUT", path, query=[("fieldManager", field_manager)], body=body)
        return result

    def patch(
        self,
        gvr: GVR,
        key: ObjectKey,
        body: Any,
        patch_type: PatchType = "merge",
        field_manager: str = keys.FIELD_MANAGER,
        force: bool = False,
        subresource: str = "",
    ) -> Obj:
        """JSON merge patch, JSON patch, or server-side apply (`force` only for apply)."""
        query = [("fieldManager", field_manager)]
        if force:
            query.append(("force", "true"))
        result: Obj = self._json(
            "PATCH",
            self.path(gvr, key.namespace, key.name, subresource),
            query=query,
            body=body,
            content_type=_CONTENT_TYPES[patch_type],
        )
        return result

    def delete(
        self,
        gvr: GVR,
        key: ObjectKey,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> Obj | None:
        """DELETE with optional preconditions; the object if it still exists (held by
        finalizers, now marked for deletion), None if it is gone."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        preconditions = {}
        if uid is not None:
            preconditions["uid"] = uid
        if resource_version is not None:
            preconditions["resourceVersion"] = resource_version
        if preconditions:
            options["preconditions"] = preconditions
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        data = self._json("DELETE", self.path(gvr, key.namespace, key.name), body=options)
        # 200 with the object: still there if it carries a deletionTimestamp, else it was the
        # last state of an object now gone; or a Status for a finished deletion.
        if not isinstance(data, dict) or data.get("kind") == "Status":
            return None
        return data if (data.get("metadata") or {}).get("deletionTimestamp") else None

    def get_path(self, url: str) -> Obj:
        """GET of a server-relative URL (discovery, OpenAPI), its query string passed on."""
        path, _, query = url.partition("?")
        result: Obj = self._json(
            "GET", path, query=urllib.parse.parse_qsl(query, keep_blank_values=True)
        )
        return result

    def watch(
        self,
        gvr: GVR,
        namespace: str = "",
        resource_version: str = "",
        label_selector: str = "",
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
    ) -> WatchStream:
        """Start a watch; the server ends it after `timeout_seconds` (rule 5)."""
        query = [("watch", "1"), ("timeoutSeconds", str(timeout_seconds))]
        if allow_bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if label_selector:
            query.append(("labelSelector", label_selector))
        response = self._call(
            "GET",
            self.path(gvr, namespace),
            query=query,
            read_timeout=timeout_seconds + WATCH_TIMEOUT_MARGIN,
        )
        return WatchStream(response, self.host)

    def discovery(self, path: str) -> Obj:
        return self.get_path(path)

    def openapi(self, path: str) -> Obj:
        return self.get_path(path)

    # --- the kernel's requests and reads

    def perform(self, request: Request) -> Obj | None:
        """Execute one `kbcore.runtime.requests.Request` (rule 3)."""
        return cluster.perform(self, request)

    def read(self, r: Read) -> Any:
        """Answer one kernel read (rule 3); never raises an ApiError."""
        return cluster.read(self, r)


def _decode(data_b64: str, what: str) -> str:
    try:
        # Line breaks are allowed, as Go's decoder (kubectl's) skips them.
        return base64.b64decode("".join(data_b64.split()), validate=True).decode()
    except ValueError as err:  # binascii.Error and UnicodeDecodeError both are
        raise ValueError(f"{what} is not base64-encoded PEM: {err}") from err


def _client_certificate_context(creds: Credentials) -> ssl.SSLContext:
    """An SSL context holding the client certificate (and the CA to verify the server with).

    urllib3 reads client certificates only from files; loading them into a context once means
    the private key is on disk only for the moment that takes, not for the client's lifetime.
    """
    verify = not creds.insecure_skip_tls_verify
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
    if verify and creds.certificate_authority_data:
        context.load_verify_locations(cadata=_decode(creds.certificate_authority_data, "CA data"))
    elif verify:
        context.load_default_certs()
    cert = _decode(creds.client_certificate_data, "client certificate data")
    key = _decode(creds.client_key_data, "client key data")
    with tempfile.TemporaryDirectory(prefix="kbind-client-") as directory:
        paths = []
        for name, pem in (("client.crt", cert), ("client.key", key)):
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pem)
            paths.append(path)
        try:
            context.load_cert_chain(paths[0], paths[1])
        except ssl.SSLError as err:
            raise ValueError(f"client certificate and key are not usable: {err}") from err
    return context
