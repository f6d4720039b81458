"""The provider's gateway as `kubectl bind` calls it (docs/service-layer.md, "Endpoints").

Standard library only. Every call carries the ID token as ``Authorization: Bearer``; a pickup
URL is fetched once, as ``application/yaml``, and its bytes are returned untouched (``-o yaml``
writes them verbatim). An unreachable URL, one that is not a kube-bind gateway and every
refusal become a :class:`Failure` saying what to do; a 401 becomes :class:`TokenRefused` so the
caller can log in again once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from kbshell.bind.errors import Failure

HTTP_TIMEOUT = 60.0  # a bind waits for the issuer (the gateway's --bind-timeout, 30 s)
USER_AGENT = "kubectl-bind/0.1.0"


class TokenRefused(Exception):  # noqa: N818 - a signal to log in again, not an error shown
    pass


def base_url(url: str) -> str:
    """The gateway's base URL from what a user pastes (``https://host/exports``, ``https://host``
    or ``https://host/prefix/exports``)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Failure(
            f"{url!r} is not a provider URL",
            "pass the URL the provider gave you, e.g. https://bind.example.com/exports",
            code=2,
        )
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise Failure(f"{url!r}: a provider URL has no user, query or fragment", "", code=2)
    path = parts.path.rstrip("/").removesuffix("/exports").rstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Gateway:
    def __init__(self, base: str) -> None:
        self.base = base

    def _call(
        self, method: str, url: str, *, token: str = "", body: Any = None, accept: str = ""
    ) -> tuple[int, bytes, str]:
        headers = {"Accept": accept or "application/json", "User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get("Content-Type", "")
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise Failure(
                f"cannot reach the provider at {self.base}: {reason}",
                "check the URL and your network (the provider's gateway must be up)",
            ) from err

    def _json(self, method: str, path: str, *, token: str = "", body: Any = None) -> Any:
        status, raw, _ = self._call(method, self.base + path, token=token, body=body)
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if status == 401 and token:
            raise TokenRefused()
        if status >= 400:
            raise self._refusal(status, doc, path)
        return doc

    def _refusal(self, status: int, doc: Any, path: str) -> Failure:
        if not isinstance(doc, dict) or "error" not in doc:
            return Failure(
                f"{self.base} is not a kube-bind provider ({path} answered {status})",
                "pass the URL the provider gave you (its /exports page)",
            )
        error, message = doc.get("error"), doc.get("message", "")
        fixes = {
            "UnknownExport": "`kubectl bind catalog` lists what you may bind",
            "not_allowed": "ask the provider's administrator to admit you",
            "rate_limited": "wait and run the command again",
            "NotIssued": "run the command again in a minute (the provider's issuer is slow)",
        }
        return Failure(
            f"the provider refused: {message} ({error}, {status})", fixes.get(str(error), "")
        )

    def provider(self) -> dict[str, Any]:
        """``/api/provider``, checked to be a kube-bind gateway's that the CLI can log in to."""
        status, raw, _ = self._call("GET", self.base + "/api/provider")
        try:
            doc = json.loads(raw) if status == 200 else None
        except ValueError:
            doc = None
        oidc = doc.get("oidc") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or "bearer-id-token" not in (doc.get("authMethods") or ()):
            raise Failure(
                f"{self.base} is not a kube-bind provider (GET /api/provider answered {status}"
                + ("" if doc is None else ", without the bearer-id-token auth method")
                + ")",
                "pass the URL the provider gave you, e.g. https://bind.example.com/exports",
            )
        if not isinstance(oidc, dict) or not oidc.get("issuer") or not oidc.get("cliClientID"):
            raise Failure(
                f"the provider at {self.base} names no OIDC client for kubectl bind",
                "ask the provider's administrator to run the gateway with --oidc-cli-client-id",
            )
        return doc

    def catalog(self, token: str) -> dict[str, Any]:
        doc = self._json("GET", "/api/catalog", token=token)
        return doc if isinstance(doc, dict) else {}

    def bind(self, token: str, export: str, consumer_uid: str, namespace: str = "") -> str:
        """POST /api/bind: a ClusterBinding, or a Binding in consumer namespace `namespace`."""
        body = {"export": export, "consumerClusterUID": consumer_uid}
        if namespace:
            body["namespace"] = namespace
        doc = self._json("POST", "/api/bind", token=token, body=body)
        url = doc.get("pickupURL") if isinstance(doc, dict) else None
        if not isinstance(url, str):
            raise Failure(f"the provider at {self.base} answered a bind without a pickup URL", "")
        return url

    def pickup(self, url: str) -> bytes:
        """The bundle's bytes, exactly as the gateway sent them (a single use)."""
        if urllib.parse.urlsplit(url).netloc != urllib.parse.urlsplit(self.base).netloc:
            raise Failure(f"the provider's pickup URL is not on {self.base}", "")
        status, raw, kind = self._call("GET", url, accept="application/yaml")
        if status != 200 or not kind.startswith("application/yaml"):
            raise Failure(
                f"the bundle's pickup failed ({status})", "run the command again to bind anew"
            )
        return raw
