"""The provider issuer (kbshell/backend/provider_issuer.py) on a kbsim provider: the catalog is
the Ready Exports, a bind mints (or finds) the boundary's Grant and waits for the issuer's
controller and the token controller, and every refusal is the seam's.

The issuer's controller is played by `grant_pass` (the kernel's `plan_grant`, as
`GrantsIssuer` runs it) each time the provider issuer waits; the clock is virtual and advances
by what it waits, so the timeout is exact and the test never sleeps.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kbcore import objects as o
from kbcore.api.resources import COLLECTIONS, EXPORTS, GRANTS, SECRETS
from kbcore.objects import ObjectKey
from kbcore.service.catalog import CollectionView, ExportView, plan_collection, plan_export
from kbcore.service.issuer import TOKEN_SECRET, plan_revoke
from kbshell.backend.issuing import BindRefused, Identity
from kbshell.backend.provider_issuer import ProviderIssuer
from kbsim.serverapi import ServerAPI
from tests.unit.service.provider import NOW, export, grant_pass, provider, run, settle

ALICE = Identity("https://dex.example", "alice", "alice@example.com")
BOB = Identity("https://dex.example", "bob", "bob@example.com")
UID = "6f1c0f6e-0000-4000-8000-000000000001"
OTHER_UID = "6f1c0f6e-0000-4000-8000-000000000002"
SERVER = "https://provider.example.com:6443"
CA = "-----BEGIN CERTIFICATE-----\nexternal\n-----END CERTIFICATE-----\n"


class Provider:
    """A kbsim provider with a Ready Export, and a ProviderIssuer whose waits run the Grant
    controller (unless `controller` is off) on a virtual clock."""

    def __init__(self, *, controller: bool = True, timeout: float = 30.0) -> None:
        self.server, self.api = provider()
        self.api.create(EXPORTS, export(description="Widgets as a service"), "test")
        self._export_pass("widgets")
        self.controller = controller
        self.t = 0.0
        self.waits = 0
        self.issuer = ProviderIssuer(
            self.api, server=SERVER, ca_pem=CA, timeout=timeout,
            clock=lambda: self.t, wall=lambda: NOW + self.t, wait=self._wait,
        )  # fmt: skip

    def _export_pass(self, name: str) -> None:
        run(self.api, plan_export, ExportView(self.api.get(EXPORTS, ObjectKey("", name)), {}, NOW))

    def _wait(self, seconds: float) -> None:
        self.t += seconds
        self.waits += 1
        if self.controller:
            for grant in self.api.list(GRANTS, "", "")[0]:
                grant_pass(self.api, o.name(grant), NOW + self.t)
            settle(self.server)

    def grants(self) -> list[dict[str, Any]]:
        return self.api.list(GRANTS, "", "")[0]


def kubeconfig_of(bundle: list[dict[str, Any]]) -> str:
    (secret,) = [x for x in bundle if x["kind"] == "Secret"]
    data = secret.get("stringData") or {
        k: base64.b64decode(v).decode() for k, v in secret["data"].items()
    }
    return str(data["kubeconfig"])


def test_the_catalog_is_the_ready_exports_and_collections() -> None:
    p = Provider()
    p.api.create(EXPORTS, export("gadgets", (("example.org", "gadgets"),)), "test")
    p._export_pass("gadgets")  # no gadgets CRD: not Ready
    p.api.create(COLLECTIONS, {"apiVersion": "catalog.kube-bind.io/v1alpha1", "kind": "Collection",
                               "metadata": {"name": "all"},
                               "spec": {"title": "All", "exports": ["widgets", "gadgets"]}}, "t")  # fmt: skip
    c = p.api.get(COLLECTIONS, ObjectKey("", "all"))
    run(p.api, plan_collection, CollectionView(c, {}, NOW))
    entries = p.issuer.catalog(ALICE)
    assert [(e.kind, e.name) for e in entries] == [("Export", "widgets"), ("Collection", "all")]
    assert entries[0].title == "Widgets"
    assert entries[0].description == "Widgets as a service"
    assert entries[0].apis == ("widgets.example.org",)
    assert entries[1].apis == ("widgets.example.org",)


@pytest.mark.parametrize(
    "uid", ["", "not-a-uuid", UID.upper(), UID + "0", " " + UID, "../" + UID[3:]]
)
def test_a_uid_that_is_not_a_lowercase_uuid_is_invalid_and_nothing_is_written(uid: str) -> None:
    p = Provider()
    with pytest.raises(BindRefused) as err:
        p.issuer.bind(ALICE, "widgets", uid)
    assert err.value.reason == "Invalid"
    assert p.grants() == []


def test_missing_and_not_ready_exports_are_refused_alike() -> None:
    p = Provider()
    p.api.create(EXPORTS, export("gadgets", (("example.org", "gadgets"),)), "test")
    p._export_pass("gadgets")
    messages = []
    for name in ("nope", "gadgets"):
        with pytest.raises(BindRefused) as err:
            p.issuer.bind(ALICE, name, UID)
        assert err.value.reason == "UnknownExport"
        messages.append(err.value.message.replace(name, "X"))
    assert messages[0] == messages[1]
    assert p.grants() == []


def test_a_bind_mints_a_grant_and_hands_out_its_token_for_the_external_address() -> None:
    p = Provider()
    bundle = p.issuer.bind(ALICE, "widgets", UID)
    (grant,) = p.grants()
    home = o.name(grant)
    assert grant["spec"]["identity"] == {"issuer": ALICE.issuer, "subject": "alice",
                                         "email": "alice@example.com"}  # fmt: skip
    assert grant["spec"]["consumerClusterUID"] == UID
    token = p.api.get(SECRETS, ObjectKey(home, TOKEN_SECRET))["data"]["token"]
    kubeconfig = kubeconfig_of(bundle)
    assert SERVER in kubeconfig
    assert base64.b64encode(CA.encode()).decode() in kubeconfig
    assert base64.b64decode(token).decode() in kubeconfig
    (conn,) = [x for x in bundle if x["kind"] == "Connection"]
    assert conn["spec"]["tenant"]["namespace"] == home
    assert p.waits > 0  # it waited for the controller, which made the Grant Ready


def test_rebinding_reuses_the_grant_and_other_boundaries_get_their_own() -> None:
    p = Provider()
    p.issuer.bind(ALICE, "widgets", UID)
    p.issuer.bind(ALICE, "widgets", UID)
    assert len(p.grants()) == 1
    p.issuer.bind(BOB, "widgets", UID)
    p.issuer.bind(ALICE, "widgets", OTHER_UID)
    homes = {o.name(g) for g in p.grants()}
    assert len(homes) == 3


def test_a_revoked_grant_is_reissued_with_a_fresh_token() -> None:
    p = Provider()
    first = kubeconfig_of(p.issuer.bind(ALICE, "widgets", UID))
    (grant,) = p.grants()
    revoke = plan_revoke(grant, "by the admin", NOW)
    assert revoke is not None
    p.api.update(GRANTS, revoke.body, "status", "test")
    p._wait(0)  # the controller deletes the credentials
    settle(p.server)
    second = kubeconfig_of(p.issuer.bind(ALICE, "widgets", UID))
    assert len(p.grants()) == 1
    assert first != second


def test_without_the_controller_the_bind_is_refused_at_the_timeout() -> None:
    p = Provider(controller=False, timeout=5.0)
    with pytest.raises(BindRefused) as err:
        p.issuer.bind(ALICE, "widgets", UID)
    assert err.value.reason == "NotIssued"
    assert "within 5s" in err.value.message
    assert p.t == pytest.approx(5.0)
    assert len(p.grants()) == 1  # the Grant stays: the next bind finds it


class Racing:
    """The provider, where another replica creates the same Grant just before this one."""

    def __init__(self, api: ServerAPI) -> None:
        self.api = api
        self.raced = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def create(self, gvr: Any, body: Any, *args: Any) -> Any:
        if gvr == GRANTS and not self.raced:
            self.raced += 1
            self.api.create(gvr, o.deepcopy(body), *args)
        return self.api.create(gvr, body, *args)


def test_a_lost_create_race_is_planned_again() -> None:
    p = Provider()
    racing = Racing(p.api)
    p.issuer.provider = racing
    p.issuer.bind(ALICE, "widgets", UID)
    assert racing.raced == 1
    assert len(p.grants()) == 1
