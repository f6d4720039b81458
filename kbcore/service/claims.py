"""The issuer's answer to a tenant's namespace claim (`kbcore.sync.tenancy` rule 4).

A tenant's konnector never creates provider namespaces; it claims one with a `BoundNamespace`
named after its consumer namespace X in its home namespace. `plan_claim` decides, for one claim,
what the provider's issuer does. Rules, in order:

 1. A claim being deleted, or in a namespace no live, issued, unrevoked Grant owns (the Grant is
    named after the home namespace and says so in `status.namespace`): nothing is granted; a
    claim already granted keeps what it has (revoking is the Grant's deletion or its Revoked
    condition, `kbcore.service.issuer` rule 4).
 2. A consumer namespace whose provider namespace `<home>-X` would not be a valid name
    (`tenancy.namespace_problem`): `Ready=False/NamespaceTooLong`, nothing created.
 3. `<home>-X` exists and is not labelled as this Grant's: `Ready=False/NamespaceTaken`; a
    provider namespace the issuer did not make for this tenant is never handed over.
 4. Otherwise create what is missing, in order: the namespace (labelled with the Grant and
    owned by it, so deleting the Grant lets the garbage collector remove it), a Role
    with exactly `rbac.tenant_namespace_rules` for the Grant's APIs and the related resources
    of the Export it was issued for (`catalog.export_related`, read by name: none when the
    Export lists none or is gone) and a RoleBinding to the Grant's ServiceAccount,
    both named `ROLE_NAME`; then `Ready=True` with `status.namespace = <home>-X`. A Role that
    drifted from the rules is put back (Update), so the tenant's access in the namespace is what
    the Export says, no more.
 5. Status is written only when it differs.

Laws (tests/unit/service/test_claims.py): the namespace granted is always `<home>-X`; nothing is
written outside `<home>-X` but the claim's status; a plan carried out is followed by an empty one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import PROVIDER, Action, Create, Plan, Update, plan_or_ask
from kbcore.api.resources import (
    BOUND_NAMESPACES,
    EXPORTS,
    GRANTS,
    NAMESPACES,
    ROLE_BINDINGS,
    ROLES,
)
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, Observed, get_obj, need_all
from kbcore.service.catalog import export_related
from kbcore.status import Conditions, condition_is_true, status_update
from kbcore.sync.tenancy import Tenant, namespace_problem
from kbcore.timestamps import rfc3339
from kbcore.views.rbac import (
    RBAC_API_VERSION,
    RelatedAccess,
    Subject,
    rule_json,
    tenant_namespace_rules,
)

GRANT_LABEL = "iam.kube-bind.io/grant"
"""On every namespace the issuer makes for a tenant: the Grant's name."""
ROLE_NAME = "kube-bind-tenant"
FIELD_MANAGER = "kube-bind-issuer"
READY = "Ready"


@attrs.frozen
class ClaimView:
    """Everything `plan_claim` decides from: the claim (from a cache) and the reads it asked
    for (`kbcore.reads`): the Grant named after its namespace, its Export, namespace
    `<home>-X`, and the Role and RoleBinding in it."""

    claim: o.Obj
    observed: Observed
    now: float


def granted_tenant(grant: Mapping[str, Any] | None) -> tuple[Tenant, Subject] | None:
    """The boundary and the ServiceAccount an issued, live Grant stands for (rule 1)."""
    if grant is None or o.is_deleting(grant):
        return None
    status = grant.get("status")
    status = status if isinstance(status, Mapping) else {}
    namespace, sa, apis = (
        status.get("namespace"),
        status.get("serviceAccountName"),
        status.get("apis"),
    )
    if namespace != o.name(grant) or not isinstance(sa, str) or not sa:
        return None
    if condition_is_true(grant, "Revoked"):
        return None
    if not isinstance(apis, list) or not all(isinstance(a, str) for a in apis):
        return None
    return Tenant(namespace, tuple(sorted(apis))), Subject("ServiceAccount", sa, namespace)


def plan_claim(view: ClaimView) -> Plan:
    return plan_or_ask(lambda: _plan(view))


def _plan(view: ClaimView) -> Plan:
    claim = view.claim
    home, name = o.namespace(claim), o.name(claim)
    if o.is_deleting(claim):
        return Plan(why="rule 1: claim deleting")
    grant = get_obj(view.observed, Get(PROVIDER, GRANTS, ObjectKey("", home)))
    granted = granted_tenant(grant)
    if grant is None or granted is None or granted[0].namespace != home:
        return Plan(why="rule 1: no issued Grant owns this namespace")
    tenant, subject = granted
    spec = grant.get("spec")
    export_name = spec.get("export") if isinstance(spec, Mapping) else None
    export = None
    if isinstance(export_name, str) and export_name:
        export = get_obj(view.observed, Get(PROVIDER, EXPORTS, ObjectKey("", export_name)))
    related = export_related(None if export is None or o.is_deleting(export) else export)
    ref = ObjectRef(PROVIDER, BOUND_NAMESPACES, ObjectKey(home, name))
    status = claim.get("status")
    status = dict(status) if isinstance(status, Mapping) else {}
    conds = Conditions(status.get("conditions"), o.generation(claim), rfc3339(view.now))

    def finish(why: str, *actions: Action) -> Plan:
        status["conditions"] = conds.to_json()
        update = status_update(claim, ref, status)
        return Plan((*actions, *([update] if update else [])), why=why)

    problem = namespace_problem(tenant, name)
    if problem:
        conds.set(READY, False, "NamespaceTooLong", problem)
        return finish("rule 2: name too long")
    target = tenant.provider_namespace(name)
    role_ref = ObjectRef(PROVIDER, ROLES, ObjectKey(target, ROLE_NAME))
    binding_ref = ObjectRef(PROVIDER, ROLE_BINDINGS, ObjectKey(target, ROLE_NAME))
    reads = (Get(PROVIDER, NAMESPACES, ObjectKey("", target)), _get(role_ref), _get(binding_ref))
    got = need_all(view.observed, reads)
    for result in got:
        if isinstance(result, Failed):
            raise result.error
    ns, role, binding = (r if isinstance(r, dict) else None for r in got)
    if ns is not None and o.labels_of(ns).get(GRANT_LABEL) != home:
        conds.set(
            READY,
            False,
            "NamespaceTaken",
            f"provider namespace {target} exists and was not made for this consumer",
        )
        return finish("rule 3: namespace taken")
    actions: list[Action] = []
    if ns is None:
        ns_ref = ObjectRef(PROVIDER, NAMESPACES, ObjectKey("", target))
        actions.append(Create(ns_ref, _namespace(target, grant), FIELD_MANAGER))
    want = _role(tenant, target, related)
    if role is None:
        actions.append(Create(role_ref, want, FIELD_MANAGER))
    elif not o.json_equal(role.get("rules"), want["rules"]):
        actions.append(
            Update(role_ref, {**o.deepcopy(role), "rules": want["rules"]}, FIELD_MANAGER)
        )
    if binding is None:
        actions.append(Create(binding_ref, _role_binding(target, subject), FIELD_MANAGER))
    status["namespace"] = target
    conds.set(READY, True, "AsExpected", f"provider namespace {target} granted")
    # The status comes last: the konnector may create copies as soon as it reads Ready.
    return finish("rule 4: granted", *actions)


def grant_owner_reference(grant: Mapping[str, Any]) -> dict[str, Any]:
    """The ownerReference to a Grant on what is made for it: deleting the Grant lets the
    garbage collector remove the object."""
    return {
        "apiVersion": GRANTS.api_version,
        "kind": "Grant",
        "name": o.name(grant),
        "uid": o.uid(grant),
    }


def _namespace(name: str, grant: Mapping[str, Any]) -> o.Obj:
    meta = {"name": name, "labels": {GRANT_LABEL: o.name(grant)},
            "ownerReferences": [grant_owner_reference(grant)]}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _get(ref: ObjectRef) -> Get:
    return Get(ref.cluster, ref.gvr, ref.key)


def _role(tenant: Tenant, namespace: str, related: tuple[RelatedAccess, ...]) -> o.Obj:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": {"name": ROLE_NAME, "namespace": namespace},
        "rules": [rule_json(r) for r in tenant_namespace_rules(tenant, namespace, related)],
    }


def _role_binding(namespace: str, subject: Subject) -> o.Obj:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": {"name": ROLE_NAME, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME},
        "subjects": [subject.to_json()],
    }
