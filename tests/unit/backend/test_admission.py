"""The allowed set (kbshell.backend.admission): its rules on identities, and the gateway
refusing a caller outside it at the login callback and on bearer requests, with nothing
written for it (no session, no bind, no pickup)."""

from __future__ import annotations

import pytest

from kbshell.backend.admission import Admission
from kbshell.backend.gateway import SESSION_COOKIE
from kbshell.backend.issuing import Identity
from kbshell.backend.main import _admission, _scopes, build_parser
from tests.unit.backend.fakes import CLI_CLIENT, World


def who(email: str = "", groups: tuple[str, ...] = ()) -> Identity:
    return Identity("https://op", "s", email, groups)


def test_no_rule_admits_everyone_the_provider_vouches_for() -> None:
    assert Admission().everyone
    assert Admission().admits(who()) and Admission().admits(who("x@y.z"))


@pytest.mark.parametrize(
    ("admission", "identity", "admitted"),
    [
        (Admission(emails=["Alice@Example.com"]), who("alice@example.COM"), True),
        (Admission(emails=["alice@example.com"]), who("bob@example.com"), False),
        (Admission(domains=["example.com"]), who("bob@EXAMPLE.com"), True),
        (Admission(domains=["@example.com"]), who("bob@example.com"), True),
        (Admission(domains=["example.com"]), who("bob@evil-example.com"), False),
        (Admission(domains=["example.com"]), who("bob@sub.example.com"), False),
        (Admission(domains=["example.com"]), who(""), False),  # an unverified email is none
        (Admission(groups=["admins"]), who("bob@x.y", ("developers", "admins")), True),
        (Admission(groups=["admins"]), who("bob@x.y", ("Admins",)), False),  # groups: exact
        (Admission(emails=["a@x.y"], groups=["admins"]), who("b@x.y", ("admins",)), True),
    ],
)
def test_any_matching_rule_admits(admission: Admission, identity: Identity, admitted: bool) -> None:
    assert admission.admits(identity) is admitted


def test_the_refusal_says_who_and_what_to_do_but_not_the_allowed_set() -> None:
    message = Admission(emails=["secret-vip@example.com"]).refusal(who("bob@x.y", ("devs",)))
    assert "bob@x.y" in message and "devs" in message
    assert "ask the provider's administrator" in message
    assert "secret-vip" not in message


def test_a_login_outside_the_set_is_403_and_opens_no_session() -> None:
    world = World(admission=Admission(emails=["alice@example.com"]))
    with world.browser() as bob:
        resp = world.log_in(bob, "bob@example.com")
        assert resp.status_code == 403
        assert resp.json()["error"] == "not_allowed"
        assert "bob@example.com is not among the users" in resp.json()["message"]
        assert SESSION_COOKIE not in resp.cookies
        assert world.store._entries == {}  # the login's state was used up; no session
        assert bob.get("/api/catalog").status_code == 401
    with world.browser() as alice:
        assert world.log_in(alice).status_code == 303
        assert alice.get("/api/catalog").status_code == 200


def test_a_group_rule_admits_a_member_at_login() -> None:
    world = World(admission=Admission(groups=["kube-bind-users"]))
    with world.browser() as bob:
        assert world.log_in(bob, "bob@example.com", ("kube-bind-users",)).status_code == 303
        assert bob.get("/api/catalog").status_code == 200
    with world.browser() as carol:
        assert world.log_in(carol, "carol@example.com", ("others",)).status_code == 403


def test_a_bearer_token_outside_the_set_is_403_and_binds_nothing() -> None:
    world = World(admission=Admission(domains=["example.com"]))
    with world.browser() as curl:
        token = world.op.mint("mallory@example.org", aud=CLI_CLIENT)
        bearer = {"Authorization": f"Bearer {token}"}
        assert curl.get("/api/catalog", headers=bearer).status_code == 403
        resp = curl.post("/api/bind", headers=bearer,
                         json={"export": "widgets", "consumerClusterUID": "u"})  # fmt: skip
        assert resp.status_code == 403 and resp.json()["error"] == "not_allowed"
        assert world.issuer.binds == []
        assert not [k for k in world.store._entries if k.startswith(("pickup:", "rate:"))]
        ok = {"Authorization": f"Bearer {world.op.mint('bob@example.com', aud=CLI_CLIENT)}"}
        assert curl.get("/api/catalog", headers=ok).status_code == 200


def test_an_unverified_email_does_not_meet_an_email_rule() -> None:
    world = World(admission=Admission(emails=["alice@example.com"]))
    token = world.op.mint("alice@example.com", email_verified=False)
    with world.browser() as curl:
        resp = curl.get("/api/catalog", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 403


def test_the_flags_build_the_set_and_an_allow_group_asks_for_the_groups_scope() -> None:
    args = build_parser().parse_args(
        ["--allow-email", "a@x.y", "--allow-email-domain", "example.com",
         "--allow-group", "g1", "--allow-group", "g2"]
    )  # fmt: skip
    assert _admission(args) == Admission(["a@x.y"], ["example.com"], ["g1", "g2"])
    assert _scopes("openid email profile", groups=True) == "openid email profile groups"
    assert _scopes("openid groups", groups=True) == "openid groups"
    assert _scopes("openid email", groups=False) == "openid email"
