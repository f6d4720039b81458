"""The provider RBAC `kubectl bind rbac` prints (kbcore/views/rbac.py) is exactly what the konnector
needs: derived from what it does, checked by doing it.

Each test binds in kbsim as a provider user that holds only the generated rules (kbsim
authorizes every request of a non-admin user by the RBAC objects in the cluster, as a real
API server does) and takes the binding through its whole life: bundle Ready, a copy created in
a namespace the provider lacks, spec updated, status back, heartbeat renewed, related
resources both ways, a copy deleted, unbind, Connection deleted. Every request the konnector
sends to the provider as that user is recorded, and:

 - none is denied, except the reads the kernel documents as allowed to be refused
   (`kbcore.views.rbac`: namespace cleanup on unbind; related kinds no rule names);
 - every verb of every generated rule was used by some request (no rule is superfluous);
 - the life ends where it should (so a denial cannot hide behind an unfinished run).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pytest

from kbcore import objects as o
from kbcore.api import keys
from kbcore.objects import GVR, ObjectKey
from kbcore.sync.tenancy import Tenant
from kbcore.views import bundle as kb
from kbcore.views import rbac
from kbsim.rbac import Attributes, User, rule_allows
from kbsim.world import World
from tests.unit import bindworld as bw

USER = "konnector-at-provider"
RELATED = [
    rbac.RelatedAccess("secrets", "FromConsumer"),
    rbac.RelatedAccess("configmaps", "FromProvider"),
]
TOLERATED_DENIALS = {
    # kbcore.sync.namespaces: a refused LIST of our namespaces means "emptiness unproven": the
    # provider namespaces the konnector created stay (rbac.py says so, deliberately).
    ("list", "", "namespaces"),
    # kbcore.control.related rule 6: on unbind, kinds no rule names may be unreadable.
    ("list", "", "configmaps"),
}


class Recorder:
    """Every provider request made as USER, as kbsim's authorizer sees it."""

    def __init__(self, w: World) -> None:
        self.seen: list[Attributes] = []
        w.clusters["provider"].add_request_hook(self._hook)

    def _hook(self, verb: str, gvr: GVR, key: ObjectKey, user: User) -> None:
        if user.name != USER:
            return
        namespace, name = key.namespace, key.name
        if gvr.group == "" and gvr.resource == "namespaces" and name:
            namespace = name  # RequestInfo: a namespace is requested "in" itself
        if verb == "create":
            name = ""  # a POST names no object in its URL
        self.seen.append(Attributes(user, verb, gvr.group, gvr.resource, "", namespace, name))


def objects_for(apis: list[str], namespace: str = "") -> tuple[tuple[rbac.Rule, ...], list[Any]]:
    rules = rbac.provider_rules(apis, binding_namespace=namespace, related=RELATED)
    return rules, rbac.rbac_objects(rules, name="kb", subject=rbac.Subject("User", USER))


def allowed(objs: list[Mapping[str, Any]], a: Attributes) -> bool:
    for role in (x for x in objs if x["kind"] in ("ClusterRole", "Role")):
        namespace = role["metadata"].get("namespace", "")
        if namespace and namespace != a.namespace:
            continue
        if any(rule_allows(r, a) for r in role["rules"]):
            return True
    return False


def live(w: World, cluster: str, gvr: GVR, key: ObjectKey) -> dict[str, Any] | None:
    return bw.get(w, cluster, gvr, key)


@functools.cache
def lifecycle(namespace: str) -> tuple[World, Recorder, list[Any], tuple[rbac.Rule, ...]]:
    """Bind Widgets as USER (a ClusterBinding, or a Binding in `namespace`), and unbind."""
    rules, objs = objects_for(["widgets.example.org"], namespace)
    w = bw.world(provider_objects=objs)
    rec = Recorder(w)
    consumer, provider = w.clusters["consumer"], w.clusters["provider"]
    ns = namespace or "team-x"
    ref = kb.BindingRef("widgets", namespace)
    bundle = bw.the_bundle(["widgets.example.org"], token=USER, binding=ref)
    bundle[2]["spec"]["relatedResources"] = [
        {"resource": "secrets", "direction": "FromConsumer",
         "selector": {"labelSelector": {"matchLabels": {"share": "yes"}}}},
        {"resource": "configmaps", "direction": "FromProvider",
         "selector": {"labelSelector": {"matchLabels": {"share": "yes"}}}},
    ]  # fmt: skip
    bw.start(w)
    bw.apply_bundle(w, bundle)
    assert w.settle(60)
    conn = live(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider"))
    binding_gvr = bw.BINDINGS if namespace else bw.CLUSTERBINDINGS
    bkey = ObjectKey(namespace, "widgets")
    assert bw.ready(conn) == "True/AsExpected", conn
    assert bw.ready(live(w, "consumer", binding_gvr, bkey)) == "True/AsExpected"

    # Sync: a copy (in a namespace the provider may lack), an update, status back.
    w.user_call(lambda: consumer.create(bw.WIDGETS, bw.widget("a", ns)))
    w.user_call(lambda: consumer.create(bw.WIDGETS, bw.widget("b", ns)))
    assert w.settle(60)
    assert live(w, "provider", bw.WIDGETS, ObjectKey(ns, "a")) is not None
    w.user_call(
        lambda: consumer.patch(bw.WIDGETS, ObjectKey(ns, "a"), {"spec": {"size": "XL"}}, "merge")
    )
    w.user_call(
        lambda: provider.patch(bw.WIDGETS, ObjectKey(ns, "a"), {"status": {"phase": "Up"}},
                               "merge", subresource="status")
    )  # fmt: skip
    # Related: a Secret up, a ConfigMap down.
    share = {"labels": {"share": "yes"}}
    w.user_call(lambda: consumer.create(bw.SECRETS, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": ns, "name": "s", **share},
        "data": {"k": "dg=="}}))  # fmt: skip
    w.user_call(lambda: provider.create(bw.CONFIGMAPS, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": ns, "name": "c", **share}, "data": {"k": "v"}}))  # fmt: skip
    w.advance(35)  # related resources follow at the binding's resync (30 s)
    assert w.settle(60)
    s_copy = live(w, "provider", bw.SECRETS, ObjectKey(ns, "s"))
    assert s_copy is not None and set(s_copy["data"]) == {"k"}
    w.user_call(  # a changed source is applied over its copy
        lambda: consumer.patch(bw.SECRETS, ObjectKey(ns, "s"), {"data": {"k2": "dg=="}}, "merge")
    )
    w.advance(45)  # a control resync: the heartbeat Lease is renewed, related synced
    assert w.settle(60)
    a_copy = live(w, "provider", bw.WIDGETS, ObjectKey(ns, "a"))
    assert a_copy is not None and a_copy["spec"] == {"size": "XL"}
    a = live(w, "consumer", bw.WIDGETS, ObjectKey(ns, "a"))
    assert a is not None and a.get("status") == {"phase": "Up"}
    s_copy = live(w, "provider", bw.SECRETS, ObjectKey(ns, "s"))
    assert s_copy is not None and set(s_copy["data"]) == {"k", "k2"}
    assert live(w, "consumer", bw.CONFIGMAPS, ObjectKey(ns, "c")) is not None

    # A consumer delete deletes the copy; unbind drains the rest; the Connection goes last.
    w.user_call(lambda: consumer.delete(bw.WIDGETS, ObjectKey(ns, "b")))
    assert w.settle(60)
    assert live(w, "provider", bw.WIDGETS, ObjectKey(ns, "b")) is None
    w.user_call(lambda: consumer.delete(binding_gvr, bkey))
    assert w.settle(120)
    assert live(w, "consumer", binding_gvr, bkey) is None
    assert live(w, "provider", bw.WIDGETS, ObjectKey(ns, "a")) is None
    assert live(w, "provider", bw.SECRETS, ObjectKey(ns, "s")) is None
    w.user_call(lambda: consumer.delete(bw.CONNECTIONS, ObjectKey("", "provider")))
    assert w.settle(60)
    assert live(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider")) is None
    leases = provider.list(bw.LEASES, "kube-bind")[0]
    assert [o.name(x) for x in leases] == [], "the heartbeat Lease outlived its Connection"
    return w, rec, objs, rules


@pytest.mark.parametrize("namespace", ["", "team-x"], ids=["ClusterBinding", "Binding"])
def test_the_generated_rbac_is_all_the_konnector_needs(namespace: str) -> None:
    _, rec, objs, _ = lifecycle(namespace)
    assert rec.seen, "nothing was asked of the provider as the restricted user"
    denied = sorted(
        {
            (a.verb, a.group, a.resource, a.namespace, a.name)
            for a in rec.seen
            if not allowed(objs, a)
        }
    )
    unexpected = [d for d in denied if d[:3] not in TOLERATED_DENIALS]
    assert not unexpected, f"requests the generated RBAC denies: {unexpected}"


@pytest.mark.parametrize("namespace", ["", "team-x"], ids=["ClusterBinding", "Binding"])
def test_every_generated_permission_is_used(namespace: str) -> None:
    _, rec, objs, _ = lifecycle(namespace)
    unused = []
    for role in (x for x in objs if x["kind"] in ("ClusterRole", "Role")):
        role_ns = role["metadata"].get("namespace", "")
        for rule in role["rules"]:
            for verb in rule["verbs"]:
                single = {**rule, "verbs": [verb]}
                if not any(
                    rule_allows(single, a) and (not role_ns or a.namespace == role_ns)
                    for a in rec.seen
                ):
                    unused.append((role["kind"], role_ns, rule["resources"], verb))
    assert not unused, f"permissions the konnector never used: {unused}"


def test_a_binding_writes_copies_only_in_its_namespace() -> None:
    rules, _ = objects_for(["widgets.example.org"], "team-x")
    writes = [r for r in rules if r.resource == "widgets" and "create" in r.verbs]
    assert [r.namespace for r in writes] == ["team-x"]
    cluster_wide = [r for r in rules if r.resource == "widgets" and not r.namespace]
    assert [r.verbs for r in cluster_wide] == [("list", "watch")]  # the syncer's cache
    # Namespaces are part of the output, so the konnector never needs to create one.
    assert not [r for r in rules if r.resource == "namespaces" and "create" in r.verbs]


def test_objects_bind_the_rules_to_the_subject() -> None:
    rules = rbac.provider_rules(["widgets.example.org"], binding_namespace="team-x")
    sa = rbac.Subject("ServiceAccount", "konnector", "kube-bind")
    objs = rbac.rbac_objects(rules, name="kb", subject=sa)
    kinds = [(x["kind"], x["metadata"].get("namespace", "")) for x in objs]
    assert kinds == [
        ("ClusterRole", ""), ("ClusterRoleBinding", ""),
        ("Namespace", ""), ("Role", "kube-bind"), ("RoleBinding", "kube-bind"),
        ("Namespace", ""), ("Role", "team-x"), ("RoleBinding", "team-x"),
    ]  # fmt: skip
    for b in (x for x in objs if x["kind"].endswith("Binding")):
        assert b["subjects"] == [
            {"kind": "ServiceAccount", "name": "konnector", "namespace": "kube-bind"}
        ]
        assert b["roleRef"]["name"] == "kb"
    user = rbac.Subject("User", "alice").to_json()
    assert user == {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}


def test_a_service_account_subject_is_authorized_in_kbsim_terms() -> None:
    """kbsim authorizes a ServiceAccount subject by the user name a token for it carries."""
    rules = rbac.provider_rules(["widgets.example.org"])
    objs = rbac.rbac_objects(rules, name="kb", subject=rbac.Subject("ServiceAccount", "k", "ns"))
    who = User("system:serviceaccount:ns:k")
    assert allowed(objs, Attributes(who, "list", "example.org", "widgets"))
    assert not allowed(objs, Attributes(who, "list", "", "secrets"))


def test_related_access_is_validated() -> None:
    with pytest.raises(ValueError, match="secrets or configmaps"):
        rbac.RelatedAccess("pods", "FromConsumer")
    with pytest.raises(ValueError, match="FromProvider or FromConsumer"):
        rbac.RelatedAccess("secrets", "Sideways")


def test_api_names_split_into_group_and_resource() -> None:
    assert rbac.api_resource("widgets.example.org") == GVR("example.org", "", "widgets")
    assert keys.GROUP == "core.kube-bind.io"


def test_tenant_namespace_rules_add_exactly_the_related_rules_and_nothing_without() -> None:
    tenant = Tenant("kb-0123456789", ("widgets.example.org",))
    ns = "kb-0123456789-team"
    plain = rbac.tenant_namespace_rules(tenant, ns)
    assert [r.resource for r in plain] == ["widgets"]
    related = (rbac.RelatedAccess("secrets", "FromProvider"),
               rbac.RelatedAccess("configmaps", "FromConsumer"))  # fmt: skip
    with_related = rbac.tenant_namespace_rules(tenant, ns, related)
    extra = [r for r in with_related if r not in plain]
    assert extra == list(rbac.related_rules(related, ns))
    assert {(r.resource, r.verbs, r.namespace) for r in extra} == {
        ("secrets", ("list",), ns),
        ("configmaps", ("get", "list", "create", "patch", "delete"), ns),
    }
    # The same function gives a non-tenant binding its related rules.
    provider = rbac.provider_rules(["widgets.example.org"], binding_namespace="team",
                                   related=related)  # fmt: skip
    assert set(rbac.related_rules(related, "team")) <= set(provider)
