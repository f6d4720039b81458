"""A browser's and an OIDC client's side of a login at the test Dex (tests/harness/oidc.py):
the authorization request with PKCE, Dex's password form, the code at the redirect URI and its
redemption at the token endpoint. test_oidc_provider.py drives it directly, test_gateway.py
through the gateway.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

import attrs
import httpx

from tests.harness.oidc import PASSWORD, Client, Dex, RedirectCatcher, User, html_forms

SCOPES = "openid email profile groups"


def new_browser() -> httpx.Client:
    """A cookie-keeping client that follows redirects, like a browser; nothing from the
    environment (no proxy may stand between it and 127.0.0.1)."""
    return httpx.Client(follow_redirects=True, trust_env=False, timeout=15)


@attrs.frozen
class Login:
    """One authorization request: what the client keeps until the redirect comes back."""

    client: Client
    state: str
    nonce: str
    code_verifier: str

    @staticmethod
    def new(client: Client) -> Login:
        # 64 characters from the unreserved set, within RFC 7636's 43 to 128.
        return Login(client, secrets.token_urlsafe(16), secrets.token_urlsafe(16),
                     secrets.token_urlsafe(48))  # fmt: skip

    @property
    def code_challenge(self) -> str:
        """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding; Dex computes it too."""
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def params(self) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": self.client.id,
            "redirect_uri": self.client.redirect_uris[0],
            "scope": SCOPES,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }


def client(dex: Dex, client_id: str) -> Client:
    return next(c for c in dex.clients if c.id == client_id)


def open_login_form(browser: httpx.Client, dex: Dex, login: Login) -> httpx.Response:
    """GET /dex/auth and follow Dex's redirects to its password form."""
    page = browser.get(dex.endpoint("/auth"), params=login.params())
    assert page.status_code == 200, page.text
    # One connector (the password database), so Dex goes straight to its form, no chooser.
    assert page.url.path == "/dex/auth/local/login"
    assert [r.status_code for r in page.history] == [302, 302]
    return page


def submit_password(
    browser: httpx.Client, page: httpx.Response, email: str, password: str, *, follow: bool = True
) -> httpx.Response:
    """Fill in and post the password form on ``page``, following where Dex sends us (unless
    not `follow`)."""
    (form,) = [f for f in html_forms(page.text) if "password" in f.fields]
    assert form.method == "post"
    fields = {**form.fields, "login": email, "password": password}
    return browser.post(page.url.join(form.action), data=fields, follow_redirects=follow)


def code_from(landing: httpx.Response, login: Login, catcher: RedirectCatcher) -> str:
    """The code Dex sent to the redirect URI for ``login`` (and where the browser ended up)."""
    assert landing.status_code == 200, landing.text
    assert str(landing.url).startswith(login.client.redirect_uris[0] + "?")
    (query,) = [q for q in catcher.received if q.get("state") == login.state]
    assert set(query) == {"code", "state"}, query
    return query["code"]


def redeem(
    browser: httpx.Client, dex: Dex, login: Login, code: str, code_verifier: str | None = None
) -> httpx.Response:
    """POST the code to the token endpoint, as the client: a confidential one authenticates
    with its secret (HTTP Basic), a public one names itself and has only the verifier."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": login.client.redirect_uris[0],
        "code_verifier": code_verifier or login.code_verifier,
    }
    secret = login.client.secret
    if secret is None:
        return browser.post(dex.endpoint("/token"), data={**data, "client_id": login.client.id})
    return browser.post(dex.endpoint("/token"), data=data, auth=(login.client.id, secret))


def log_in(
    browser: httpx.Client, dex: Dex, catcher: RedirectCatcher, login: Login, user: User
) -> str:
    """The whole browser part of the flow for ``user``: the code Dex redirected with."""
    page = open_login_form(browser, dex, login)
    return code_from(submit_password(browser, page, user.email, PASSWORD), login, catcher)
