"""What a Grant mints, how it is revoked, and the bundle it hands out (kbcore/service/issuer.py),
per rule, on a simulated provider API server (its garbage collector and token controller run)."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from kbcore import objects as o
from kbcore.actions import Create, Plan, UpdateStatus
from kbcore.api.resources import (
    BOUND_NAMESPACES,
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    CRDS,
    EXPORTS,
    GRANTS,
    NAMESPACES,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
)
from kbcore.control.kubeconfig import Credentials, sanitize
from kbcore.objects import ObjectKey
from kbcore.runtime.cluster import carry_out
from kbcore.service import issuer as iss
from kbcore.service.claims import GRANT_LABEL, ClaimView, plan_claim
from kbcore.service.issuer import GrantView, IssueView, NotIssued
from kbcore.sync.tenancy import Tenant, claim_body, home_namespace
from kbcore.views import rbac
from kbsim.apiserver import APIServer
from kbsim.serverapi import ServerAPI
from tests.unit import bindworld as bw
from tests.unit.service.provider import (
    CLUSTER_UID,
    IDENTITY,
    NOW,
    WIDGETS_API,
    converge,
    export,
    get,
    grant_pass,
    issue,
    provider,
    run,
    settle,
)


def conditions(obj: dict[str, Any] | None) -> dict[str, str]:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return {c["type"]: f"{c['status']}/{c['reason']}" for c in conds}


def issued(**spec: Any) -> tuple[APIServer, ServerAPI, str]:
    server, api = provider()
    name = issue(api, **spec)
    converge(server, api, name)
    return server, api, name


def grant(api: ServerAPI, name: str) -> dict[str, Any]:
    return api.get(GRANTS, ObjectKey("", name))


def token_secret(api: ServerAPI, home: str) -> dict[str, Any] | None:
    return get(api, SECRETS, ObjectKey(home, iss.TOKEN_SECRET))


# -- rule 1 --------------------------------------------------------------------------------


def test_rule1_the_grant_is_named_after_the_home_namespace_of_its_key() -> None:
    body = iss.grant_for(IDENTITY, "widgets", CLUSTER_UID)
    assert o.name(body) == home_namespace(IDENTITY.issuer, IDENTITY.subject, CLUSTER_UID, "widgets")
    assert iss.boundary_home(body) == o.name(body)
    other = iss.grant_for(IDENTITY, "gadgets", CLUSTER_UID)
    assert o.name(other) != o.name(body)


def test_rule1_issuing_the_same_key_again_finds_the_same_grant() -> None:
    _, api = provider()
    name = issue(api)
    again = run(api, iss.plan_issue, IssueView(IDENTITY, "widgets", CLUSTER_UID, {}, NOW + 1))
    assert again.writes == ()
    assert [o.name(g) for g in api.list(GRANTS, "", "")[0]] == [name]


def test_rule1_a_request_for_a_revoked_grant_reissues_it() -> None:
    server, api, name = issued()
    write(api, iss.plan_revoke(grant(api, name), "by hand", NOW))
    converge(server, api, name)
    assert token_secret(api, name) is None
    run(api, iss.plan_issue, IssueView(IDENTITY, "widgets", CLUSTER_UID, {}, NOW + 10))
    converge(server, api, name, NOW + 10)
    g = grant(api, name)
    assert conditions(g) == {"Ready": "True/Issued"}
    assert g["status"]["issuedAt"] == "2027-01-15T08:00:10Z"
    assert iss.secret_token(token_secret(api, name))


def write(api: ServerAPI, update: UpdateStatus | None) -> None:
    assert update is not None
    carry_out(api, Plan((update,)), NOW)


# -- rule 2 --------------------------------------------------------------------------------


def test_rule2_deleting_the_grant_removes_everything_it_minted() -> None:
    server, api, name = issued()
    api.create(BOUND_NAMESPACES, claim_body(Tenant(name, (WIDGETS_API,)), "team-x", CLUSTER_UID),
               "konnector")  # fmt: skip
    claim = api.get(BOUND_NAMESPACES, ObjectKey(name, "team-x"))
    run(api, plan_claim, ClaimView(claim, {}, NOW))
    tenant_ns = api.get(NAMESPACES, ObjectKey("", f"{name}-team-x"))
    assert tenant_ns["metadata"]["ownerReferences"][0]["uid"] == o.uid(grant(api, name))
    api.create(bw.WIDGETS, bw.widget("a", f"{name}-team-x"), "konnector")
    g = grant(api, name)
    api.delete(GRANTS, ObjectKey("", name), o.uid(g), None, None)
    settle(server)
    for gvr, key in [
        (NAMESPACES, ObjectKey("", name)),
        (NAMESPACES, ObjectKey("", f"{name}-team-x")),
        (SERVICE_ACCOUNTS, ObjectKey(name, iss.SERVICE_ACCOUNT)),
        (SECRETS, ObjectKey(name, iss.TOKEN_SECRET)),
        (CLUSTER_ROLES, ObjectKey("", name)),
        (CLUSTER_ROLE_BINDINGS, ObjectKey("", name)),
        (bw.WIDGETS, ObjectKey(f"{name}-team-x", "a")),
    ]:
        assert get(api, gvr, key) is None, (gvr, key)


def test_rule2_a_deleting_grant_plans_nothing() -> None:
    g = {**iss.grant_for(IDENTITY, "widgets", CLUSTER_UID)}
    g["metadata"] = {**g["metadata"], "deletionTimestamp": "2027-01-01T00:00:00Z"}
    assert iss.plan_grant(GrantView(g, export(), {}, NOW)).actions == ()


# -- rule 3 --------------------------------------------------------------------------------


def test_rule3_a_grant_not_named_after_its_key_mints_nothing() -> None:
    g = iss.grant_for(IDENTITY, "widgets", CLUSTER_UID)
    g["metadata"]["name"] = "kb-0000000000"
    plan = iss.plan_grant(GrantView(g, export(), {}, NOW))
    assert plan.needs == ()
    (update,) = plan.actions
    assert isinstance(update, UpdateStatus)
    assert conditions(update.body) == {"Ready": "False/InvalidGrant"}


# -- rule 4 --------------------------------------------------------------------------------


def test_rule4_revoking_deletes_the_credentials_and_keeps_the_data() -> None:
    server, api, name = issued()
    token = iss.secret_token(token_secret(api, name))
    assert server.authenticate(token) is not None
    api.create(bw.WIDGETS, bw.widget("a", name), "konnector")
    write(api, iss.plan_revoke(grant(api, name), "left the company", NOW))
    assert iss.plan_revoke(grant(api, name), "again", NOW) is None  # revoked already
    converge(server, api, name)
    g = grant(api, name)
    assert conditions(g) == {"Ready": "False/Revoked", "Revoked": "True/Revoked"}
    assert token_secret(api, name) is None
    assert get(api, SERVICE_ACCOUNTS, ObjectKey(name, iss.SERVICE_ACCOUNT)) is None
    assert server.authenticate(token) is None
    assert get(api, bw.WIDGETS, ObjectKey(name, "a")) is not None
    assert get(api, CLUSTER_ROLES, ObjectKey("", name)) is not None


def test_rule4_a_revoked_grant_gets_no_new_namespace_claims() -> None:
    _, api, name = issued()
    write(api, iss.plan_revoke(grant(api, name), "x", NOW))
    api.create(BOUND_NAMESPACES, claim_body(Tenant(name, (WIDGETS_API,)), "team-x", CLUSTER_UID),
               "konnector")  # fmt: skip
    claim = api.get(BOUND_NAMESPACES, ObjectKey(name, "team-x"))
    assert run(api, plan_claim, ClaimView(claim, {}, NOW)).writes == ()


# -- rule 5 --------------------------------------------------------------------------------


def test_rule5_no_export_mints_nothing() -> None:
    g = iss.grant_for(IDENTITY, "widgets", CLUSTER_UID)
    plan = iss.plan_grant(GrantView(g, None, {}, NOW))
    assert plan.needs == ()
    assert [type(a) for a in plan.actions] == [UpdateStatus]
    assert conditions(plan.actions[0].body) == {"Ready": "False/ExportNotFound"}  # type: ignore[union-attr]


def test_rule5_an_export_that_is_not_ready_mints_nothing() -> None:
    server, api = provider()
    name = issue(api, ready_export=False)
    converge(server, api, name)
    assert conditions(grant(api, name)) == {"Ready": "False/APINotExported"}
    assert get(api, NAMESPACES, ObjectKey("", name)) is None


# -- rule 6 --------------------------------------------------------------------------------


def test_rule6_the_grant_mints_exactly_the_tenant_rules_owned_by_it() -> None:
    _, api, name = issued()
    uid = o.uid(grant(api, name))
    ns = api.get(NAMESPACES, ObjectKey("", name))
    assert ns["metadata"]["labels"][GRANT_LABEL] == name
    tenant = Tenant(name, (WIDGETS_API,))
    subject = rbac.Subject("ServiceAccount", iss.SERVICE_ACCOUNT, name)
    want = rbac.rbac_objects(rbac.tenant_rules(tenant), name=name, subject=subject)
    for obj in want:
        gvr = bw.RBAC_RESOURCES[obj["kind"]]
        stored = api.get(gvr, ObjectKey(o.namespace(obj), o.name(obj)))
        assert [r["uid"] for r in stored["metadata"]["ownerReferences"]] == [uid]
        for field in ("rules", "subjects", "roleRef"):
            assert stored.get(field) == obj.get(field), (obj["kind"], field)
    secret = token_secret(api, name)
    assert secret is not None and secret["type"] == iss.TOKEN_TYPE


def test_rule6_drifted_rules_are_put_back() -> None:
    server, api, name = issued()
    role = api.get(ROLES, ObjectKey(name, name))
    want = role["rules"]
    api.update(ROLES, {**role, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
               "", "someone")  # fmt: skip
    cluster_role = api.get(CLUSTER_ROLES, ObjectKey("", name))
    api.update(CLUSTER_ROLES, {**cluster_role, "rules": []}, "", "someone")
    converge(server, api, name)
    assert api.get(ROLES, ObjectKey(name, name))["rules"] == want
    assert api.get(CLUSTER_ROLES, ObjectKey("", name))["rules"] == cluster_role["rules"]


def test_rule6_a_home_namespace_made_by_someone_else_is_not_taken_over() -> None:
    server, api = provider()
    home = home_namespace(IDENTITY.issuer, IDENTITY.subject, CLUSTER_UID, "widgets")
    api.create(NAMESPACES, bw.namespace(home), "someone")
    name = issue(api)
    converge(server, api, name)
    assert conditions(grant(api, name)) == {"Ready": "False/NamespaceTaken"}
    assert get(api, SERVICE_ACCOUNTS, ObjectKey(home, iss.SERVICE_ACCOUNT)) is None


# -- rule 7 --------------------------------------------------------------------------------


def test_rule7_pending_until_the_token_is_filled_then_issued() -> None:
    server, api = provider()
    name = issue(api)
    first = grant_pass(api, name)
    assert [type(a) for a in first.writes][:3] == [Create, Create, Create]
    assert first.requeue_after == iss.PENDING_SECONDS
    assert conditions(grant(api, name)) == {"Ready": "False/Pending"}
    assert grant_pass(api, name).writes == ()  # nothing to do until the token controller acts
    settle(server)
    grant_pass(api, name)
    g = grant(api, name)
    assert conditions(g) == {"Ready": "True/Issued"}
    assert {k: v for k, v in g["status"].items() if k != "conditions"} == {
        "namespace": name,
        "serviceAccountName": "konnector",
        "tokenSecretName": "konnector-token",
        "apis": [WIDGETS_API],
        "issuedAt": "2027-01-15T08:00:00Z",
    }
    assert grant_pass(api, name, NOW + 100).writes == ()


# -- rule 8 --------------------------------------------------------------------------------


def test_rule8_the_bundle_carries_the_token_the_boundary_and_the_export_defaults() -> None:
    related = [{"group": "", "resource": "configmaps", "direction": "FromProvider"}]
    _, api, name = issued(conflictPolicy="Adopt", relatedResources=related,
                          schema={"source": "CRD", "pullPolicy": "All", "updatePolicy": "Once"})  # fmt: skip
    exp = api.get(EXPORTS, ObjectKey("", "widgets"))
    secret, g = token_secret(api, name), grant(api, name)
    out = iss.issued_bundle(g, exp, secret, "https://provider.kbsim", "PEM")
    assert not isinstance(out, NotIssued), out
    kube_secret, conn, binding = out
    text = base64.b64decode(kube_secret["data"]["kubeconfig"]).decode()
    creds = sanitize(yaml.safe_load(text))
    assert isinstance(creds, Credentials)
    assert creds.token == iss.secret_token(secret)
    assert creds.server == "https://provider.kbsim"
    assert conn["spec"]["tenant"] == {"namespace": name, "apis": [WIDGETS_API]}
    assert conn["spec"]["schema"] == {"source": "CRD", "pullPolicy": "All", "updatePolicy": "Once"}
    assert binding["spec"]["conflictPolicy"] == "Adopt"
    assert binding["spec"]["relatedResources"] == related
    assert binding["spec"]["apis"] == [{"name": WIDGETS_API}]


def test_rule8_no_half_bundles() -> None:
    server, api = provider()
    name = issue(api)
    grant_pass(api, name)  # Pending: the token is not there yet
    exp = api.get(EXPORTS, ObjectKey("", "widgets"))
    secret = token_secret(api, name)
    out = iss.issued_bundle(grant(api, name), exp, secret, "https://provider.kbsim", "")
    assert isinstance(out, NotIssued) and "not Ready" in out.message
    settle(server)
    grant_pass(api, name)
    g = grant(api, name)
    empty = {**o.deepcopy(token_secret(api, name)), "data": {}}
    out = iss.issued_bundle(g, exp, empty, "https://provider.kbsim", "")
    assert isinstance(out, NotIssued) and "no token" in out.message
    out = iss.issued_bundle(g, exp, None, "https://provider.kbsim", "")
    assert isinstance(out, NotIssued)
    out = iss.issued_bundle(g, exp, token_secret(api, name), "https://provider.kbsim", "",
                            apis=["gadgets.example.org"])  # fmt: skip
    assert isinstance(out, NotIssued) and "not granted" in out.message


def test_rule5_no_grant_is_issued_for_an_export_of_a_cluster_scoped_api() -> None:
    server, api = provider()
    api.create(CRDS, bw.crd("gadgets", "Gadget", scope="Cluster"), "test")
    name = issue(api, apis=(("example.org", "gadgets"),))
    converge(server, api, name)
    assert conditions(grant(api, name)) == {"Ready": "False/APINotExported"}
    assert get(api, NAMESPACES, ObjectKey("", name)) is None
    assert get(api, SERVICE_ACCOUNTS, ObjectKey(name, iss.SERVICE_ACCOUNT)) is None


def test_rule6_a_binding_with_a_drifted_role_ref_is_deleted_and_made_again_next_pass() -> None:
    """roleRef is immutable: the binding is deleted, and the pass asks to be run again, since
    nothing the issuer watches changes when a binding goes."""
    _, api, name = issued()
    key = ObjectKey(name, name)
    binding = api.get(bw.RBAC_RESOURCES["RoleBinding"], key)
    want = binding["roleRef"]
    api.delete(bw.RBAC_RESOURCES["RoleBinding"], key, None, None, None)
    meta = {"name": name, "namespace": name}
    api.create(bw.RBAC_RESOURCES["RoleBinding"],
               {**binding, "metadata": meta, "roleRef": {**want, "name": "other"}}, "someone")  # fmt: skip
    first = grant_pass(api, name)
    assert get(api, bw.RBAC_RESOURCES["RoleBinding"], key) is None
    assert first.requeue_after == iss.PENDING_SECONDS
    grant_pass(api, name)
    assert api.get(bw.RBAC_RESOURCES["RoleBinding"], key)["roleRef"] == want
    assert grant_pass(api, name).requeue_after is None
