"""`kubectl bind login`: the CLI logs in at the provider's identity provider as a native app.

RFC 8252 (OAuth 2.0 for native apps): the CLI is a public OIDC client (no secret) of the
provider's identity provider, named by the gateway's ``/api/provider`` (``oidc.issuer``,
``oidc.cliClientID``). Standard library only: the plugin needs no HTTP or OAuth package.

Rules:

1. Authorization code with PKCE S256 (RFC 7636), a fresh ``state`` and ``nonce`` per login; the
   callback's ``state`` must equal ours (compared in constant time) or it is ignored, and the ID
   token must carry our ``nonce``, our client in ``aud`` and the discovered issuer in ``iss``.
2. The redirect URI is ``http://localhost:PORT/callback`` and the callback server listens on
   127.0.0.1 only (never on every interface). ``localhost`` because Dex (and other providers)
   accept any port of it for a public client that lists no redirect URIs, as RFC 8252 section
   7.3 asks; a provider that lists URIs must list ``http://localhost:PORT/callback`` for the
   ``--callback-port`` the users pass. PORT is ephemeral by default.
3. The browser is opened with :mod:`webbrowser`; ``--no-browser`` prints the URL instead (the
   URL holds no secret: the verifier never leaves the process).
4. The ID token is checked here only for the claims of rule 1 and its expiry, not its
   signature: it came straight from the token endpoint over the connection the CLI opened
   (OIDC Core 3.1.3.7), and the gateway verifies its signature on every request.
5. ``error=...`` at the callback (e.g. ``access_denied``: the user cancelled) ends the login with
   the identity provider's words; no callback within ``--login-timeout`` seconds ends it too.
6. Nothing secret is printed or logged: not the code, the verifier, or a token.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import webbrowser
from typing import IO, Any

import attrs

from kbshell.bind import token_cache
from kbshell.bind.errors import Failure

SCOPES = "openid email profile offline_access"
HTTP_TIMEOUT = 15.0
CALLBACK_PATH = "/callback"


@attrs.frozen
class Endpoints:
    issuer: str
    authorize: str
    redeem_url: str  # the token endpoint (a field named "token" reads as a secret)


def http_json(
    url: str, *, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """GET (or POST a form) and parse JSON: (status, document or None). Raises URLError and
    OSError for a connection that could not be made."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(
        url, data=body, headers={"Accept": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def discover(issuer: str) -> Endpoints:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        status, doc = http_json(url)
    except OSError as err:
        raise Failure(
            f"cannot reach the provider's identity provider at {issuer}: {err}",
            "check your network; the provider's /api/provider names this issuer",
        ) from err
    if status != 200 or not isinstance(doc, dict) or doc.get("issuer") != issuer:
        raise Failure(
            f"{issuer} is not an OpenID provider (its discovery document answered {status})",
            "ask the provider's administrator: the gateway's --oidc-issuer-url names it",
        )
    if "S256" not in doc.get("code_challenge_methods_supported", ["S256"]):
        raise Failure(f"the identity provider {issuer} does not offer PKCE S256", "")
    return Endpoints(issuer, str(doc["authorization_endpoint"]), str(doc["token_endpoint"]))


def challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@attrs.define
class _Callback:
    state: str
    result: dict[str, str] | None = None
    done: threading.Event = attrs.field(factory=threading.Event)


def _handler(callback: _Callback) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path != CALLBACK_PATH or not secrets.compare_digest(
                query.get("state", ""), callback.state
            ):
                self._answer(404, "Not the login this kubectl bind is waiting for.")
                return
            if "error" in query:
                self._answer(200, "Login failed: you can close this window.")
            else:
                self._answer(200, "Logged in: you can close this window and return to kubectl.")
            if callback.result is None:
                callback.result = query
                callback.done.set()

        def _answer(self, status: int, text: str) -> None:
            body = f"<!doctype html><title>kubectl bind</title><p>{text}</p>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # rule 6: the request line holds the code

    return Handler


def _listen(port: int, callback: _Callback) -> http.server.ThreadingHTTPServer:
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(callback))
    except OSError as err:
        raise Failure(
            f"cannot listen for the login callback on 127.0.0.1:{port}: {err.strerror or err}",
            "pass another --callback-port (or none, for a free one), or stop what uses it",
        ) from err


def log_in(
    issuer: str,
    client_id: str,
    *,
    port: int = 0,
    timeout: float = 300.0,
    open_browser: bool = True,
    err: IO[str] = sys.stderr,
) -> dict[str, Any]:
    """Rules 1 to 6: a cache entry (``idToken``, ``refreshToken`` if any, ``issuer``,
    ``clientID``) for a fresh login."""
    endpoints = discover(issuer)
    state, nonce, verifier = (
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(48),
    )
    callback = _Callback(state)
    server = _listen(port, callback)
    redirect_uri = f"http://localhost:{server.server_address[1]}{CALLBACK_PATH}"
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPES,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    sep = "&" if "?" in endpoints.authorize else "?"
    url = endpoints.authorize + sep + urllib.parse.urlencode(params)
    thread = threading.Thread(target=server.serve_forever, name="login-callback", daemon=True)
    thread.start()
    try:
        if open_browser and webbrowser.open(url):
            err.write(f"Opened a browser to log in at {issuer}; if none appeared, open:\n{url}\n")
        else:
            err.write(f"Open this URL in a browser to log in at {issuer}:\n{url}\n")
        err.flush()
        if not callback.done.wait(timeout):
            raise Failure(
                f"no login within {timeout:g}s (the browser never came back to {redirect_uri})",
                "run the command again and finish the login in the browser (or pass a longer "
                "--login-timeout)",
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    result = callback.result or {}
    if "error" in result:
        what = result["error"] + (
            f": {result['error_description']}" if result.get("error_description") else ""
        )
        raise Failure(
            f"the login was not completed (the identity provider said {what})",
            "run the command again and allow the login (or log in as another user)",
        )
    if not result.get("code"):
        raise Failure("the identity provider came back without a code", "log in again")
    entry = _redeem(
        endpoints,
        client_id,
        {
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    got = token_cache.claims(entry["idToken"])
    if not secrets.compare_digest(str(got.get("nonce", "")), nonce):
        raise Failure("the ID token does not carry this login's nonce", "log in again")
    return entry


def refresh(issuer: str, client_id: str, refresh_token: str) -> dict[str, Any] | None:
    """Rule 3 of the cache: a new ID token from the refresh token, or None when refused."""
    try:
        endpoints = discover(issuer)
        return _redeem(
            endpoints,
            client_id,
            {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
        )
    except Failure:
        return None


def _redeem(endpoints: Endpoints, client_id: str, form: dict[str, str]) -> dict[str, Any]:
    try:
        status, doc = http_json(endpoints.redeem_url, data=form)
    except OSError as err:
        raise Failure(f"cannot reach the token endpoint {endpoints.redeem_url}: {err}", "") from err
    if status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("id_token"), str):
        why = doc.get("error", status) if isinstance(doc, dict) else status
        raise Failure(f"the identity provider refused the login ({why})", "log in again")
    id_token = doc["id_token"]
    got = token_cache.claims(id_token)
    aud = got.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if got.get("iss") != endpoints.issuer or client_id not in auds:
        raise Failure("the identity provider returned an ID token for another client", "")
    if not token_cache.usable({"idToken": id_token}, time.time() - token_cache.SKEW):
        raise Failure("the identity provider returned an expired ID token", "check your clock")
    entry: dict[str, Any] = {"issuer": endpoints.issuer, "clientID": client_id, "idToken": id_token}
    if isinstance(doc.get("refresh_token"), str):
        entry["refreshToken"] = doc["refresh_token"]
    return entry
