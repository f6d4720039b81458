"""The issuer: what a Grant mints on the provider, how it is revoked, and the bundle it hands out.

A Grant is one tenant boundary (`kbcore.sync.tenancy`): OIDC identity, consumer cluster and
Export. `plan_grant` decides, for one Grant and its Export, what the provider's issuer does.
Rules, in order:

 1. `grant_for`: the Grant of a boundary key is named `home_namespace(issuer, subject, cluster,
    export)` and its spec is the key (immutable), so issuing the same key again finds the same
    Grant (`plan_issue`: create it if missing, `reissue` it if revoked, else nothing).
 2. A Grant being deleted: nothing. Deleting a Grant revokes everything it minted: each minted
    object, and every namespace `<home>-X` `plan_claim` makes, carries an ownerReference to the
    Grant, so the garbage collector removes them (and, with the namespaces, the tenant's data).
 3. A Grant whose spec is not a boundary key, or whose name is not that key's home namespace:
    `Ready=False/InvalidGrant`, nothing created.
 4. Revoked (`Revoked=True`, set by `plan_revoke` or the reaper, `kbcore.service.reaper`): the
    token Secret and the ServiceAccount are deleted, so the credentials stop working at once;
    the namespaces, the RBAC and the tenant's objects stay. `Ready=False/Revoked`. `reissue`
    clears Revoked, and rule 6 mints fresh credentials.
 5. No Export of the Grant's name, or one being deleted: `Ready=False/ExportNotFound`; an Export
    that is not Ready (`catalog.export_ready`) or lists no API: `Ready=False/APINotExported`.
    Nothing is created.
 6. Otherwise create what is missing, in order: the home namespace (labelled `GRANT_LABEL`),
    ServiceAccount `konnector` in it, its token Secret (type service-account-token), then a
    Role and RoleBinding in the home namespace and a ClusterRole and ClusterRoleBinding, all
    named after the Grant, holding exactly `rbac.tenant_rules(Tenant(home, Export's APIs))` for
    that ServiceAccount. Every one carries an ownerReference to the Grant. Rules or subjects
    that drifted are put back (Update); a binding whose roleRef changed is deleted (roleRef is
    immutable) and made again on a pass asked for at once (`PENDING_SECONDS`). A home namespace
    that exists without this Grant's label:
    `Ready=False/NamespaceTaken`, nothing else created (it is not ours to hand over).
 7. Status: namespace, serviceAccountName, tokenSecretName, apis, issuedAt (when the token
    Secret was created); `Ready=True/Issued` once the namespace, the ServiceAccount and the
    token Secret with `data.token` (filled by the token controller) exist, else
    `Ready=False/Pending`, looked at again shortly. Written only when it differs, and last.
 8. `issued_bundle`: the consumer's one-apply bundle (`kbcore.views.bundle`), with a single-
    context kubeconfig for the ServiceAccount's token (`issued_kubeconfig`), the tenant
    boundary in the Connection and the Export's defaults (conflictPolicy, relatedResources in
    the binding; schema in the Connection). A Grant not Ready, revoked, or a token Secret that
    is not the Grant's or holds no token: `NotIssued`, never a half bundle.

Laws (tests/property/test_issuer_laws.py): everything minted is inside the Grant's boundary
(the home namespace, `<home>-*`, cluster objects named after the Grant); a plan carried out is
followed by an empty one; `plan_grant` never raises on any Grant or Export body.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import (
    PROVIDER,
    Action,
    Create,
    Delete,
    Plan,
    RequeueAfter,
    Update,
    UpdateStatus,
    plan_or_ask,
)
from kbcore.api.iam import OIDCIdentity
from kbcore.api.resources import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    GRANTS,
    NAMESPACES,
    ROLE_BINDINGS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
)
from kbcore.api.service_conditions import ServiceConditionType as T
from kbcore.api.service_conditions import ServiceReason as R
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, Observed, get_obj, need_all
from kbcore.service.catalog import export_apis, export_ready
from kbcore.service.claims import FIELD_MANAGER, GRANT_LABEL, grant_owner_reference
from kbcore.status import Conditions, condition_is_true, status_update
from kbcore.sync.tenancy import Tenant, home_namespace
from kbcore.timestamps import rfc3339
from kbcore.views import bundle as kb
from kbcore.views.rbac import Subject, rbac_objects, tenant_rules

SERVICE_ACCOUNT = "konnector"
"""The ServiceAccount in the home namespace the tenant's konnector acts as."""
TOKEN_SECRET = "konnector-token"
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
PENDING_SECONDS = 1.0
"""How soon the issuer looks again at a Grant waiting for the token controller."""
INVALID_GRANT = "InvalidGrant"
NAMESPACE_TAKEN = "NamespaceTaken"
REVOKED_REASON = "Revoked"

_KIND_GVR = {
    "Namespace": NAMESPACES,
    "Role": ROLES,
    "RoleBinding": ROLE_BINDINGS,
    "ClusterRole": CLUSTER_ROLES,
    "ClusterRoleBinding": CLUSTER_ROLE_BINDINGS,
}


# -- rule 1: the Grant of a boundary key ----------------------------------------------------


def grant_for(identity: OIDCIdentity, export_name: str, consumer_cluster_uid: str) -> o.Obj:
    """The Grant body of one boundary key (rule 1)."""
    ident: dict[str, Any] = {"issuer": identity.issuer, "subject": identity.subject}
    if identity.email:
        ident["email"] = identity.email
    name = home_namespace(identity.issuer, identity.subject, consumer_cluster_uid, export_name)
    return {
        "apiVersion": GRANTS.api_version,
        "kind": "Grant",
        "metadata": {"name": name},
        "spec": {
            "identity": ident,
            "export": export_name,
            "consumerClusterUID": consumer_cluster_uid,
        },
    }


def boundary_home(grant: Mapping[str, Any]) -> str:
    """The home namespace the Grant's spec names ("" when the spec is not a boundary key)."""
    spec = grant.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    ident = spec.get("identity")
    ident = ident if isinstance(ident, Mapping) else {}
    parts = (ident.get("issuer"), ident.get("subject"), spec.get("consumerClusterUID"))
    key = [p for p in (*parts, spec.get("export")) if isinstance(p, str) and p]
    if len(key) != 4:
        return ""
    return home_namespace(*key)


def grant_export(grant: Mapping[str, Any]) -> str:
    spec = grant.get("spec")
    export = spec.get("export") if isinstance(spec, Mapping) else None
    return export if isinstance(export, str) else ""


@attrs.frozen
class IssueView:
    """A request for one boundary key, and the read of its Grant."""

    identity: OIDCIdentity
    export: str
    consumer_cluster_uid: str
    observed: Observed
    now: float


def plan_issue(view: IssueView) -> Plan:
    """Rule 1: the Grant of the key, created if missing, re-issued if revoked."""

    def decide() -> Plan:
        want = grant_for(view.identity, view.export, view.consumer_cluster_uid)
        ref = ObjectRef(PROVIDER, GRANTS, ObjectKey("", o.name(want)))
        grant = get_obj(view.observed, Get(PROVIDER, GRANTS, ref.key))
        if grant is None:
            return Plan((Create(ref, want, FIELD_MANAGER),), why="rule 1: new Grant")
        update = reissue(grant, view.now)
        return Plan((update,) if update else (), why="rule 1: the same Grant")

    return plan_or_ask(decide)


# -- rule 4: revocation ---------------------------------------------------------------------


def _status(obj: Mapping[str, Any]) -> dict[str, Any]:
    status = obj.get("status")
    return dict(status) if isinstance(status, Mapping) else {}


def _grant_ref(grant: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(PROVIDER, GRANTS, ObjectKey("", o.name(grant)))


def revoked_conditions(conds: Conditions, reason: str, why: str) -> None:
    """Set Revoked=True (and Ready=False) on a Grant's conditions being rewritten."""
    conds.set(T.REVOKED, True, reason, why)
    conds.set(T.READY, False, REVOKED_REASON, f"access revoked: {why}")


def plan_revoke(
    grant: Mapping[str, Any], why: str, now: float, *, reason: str = REVOKED_REASON
) -> UpdateStatus | None:
    """The status update revoking the Grant (rule 4), None if it is revoked already."""
    status = _status(grant)
    conds = Conditions(status.get("conditions"), o.generation(grant), rfc3339(now))
    if conds.is_true(T.REVOKED):
        return None
    revoked_conditions(conds, reason, why)
    status["conditions"] = conds.to_json()
    return status_update(grant, _grant_ref(grant), status)


def reissue(grant: Mapping[str, Any], now: float) -> UpdateStatus | None:
    """The status update clearing Revoked and Stale (rule 4), None if it is not revoked."""
    status = _status(grant)
    conds = Conditions(status.get("conditions"), o.generation(grant), rfc3339(now))
    if not conds.is_true(T.REVOKED):
        return None
    conds.remove(T.REVOKED)
    conds.remove(T.STALE)
    conds.set(T.READY, False, R.PENDING, "re-issuing the credentials")
    status["conditions"] = conds.to_json()
    return status_update(grant, _grant_ref(grant), status)


# -- rules 2 to 7: what a Grant mints -------------------------------------------------------


@attrs.frozen
class GrantView:
    """A Grant and its Export (both from a cache; None when there is no such Export) and the
    reads `plan_grant` asked for: the objects it mints, by name."""

    grant: o.Obj
    export: o.Obj | None
    observed: Observed
    now: float


def _token_secret(home: str) -> o.Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": TOKEN_SECRET,
            "namespace": home,
            "annotations": {SA_NAME_ANNOTATION: SERVICE_ACCOUNT},
        },
        "type": TOKEN_TYPE,
    }


def secret_token(secret: Mapping[str, Any] | None) -> str:
    """The token a service-account-token Secret holds ("" when none, or not decodable)."""
    data = secret.get("data") if secret is not None else None
    raw = data.get("token") if isinstance(data, Mapping) else None
    if not isinstance(raw, str) or not raw:
        return ""
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _is_token_secret(secret: Mapping[str, Any]) -> bool:
    return (
        secret.get("type") == TOKEN_TYPE
        and o.annotations_of(secret).get(SA_NAME_ANNOTATION) == SERVICE_ACCOUNT
    )


def minted(grant: Mapping[str, Any], tenant: Tenant) -> list[o.Obj]:
    """Every object rule 6 makes for the Grant, in creation order, owned by it."""
    home = tenant.namespace
    subject = Subject("ServiceAccount", SERVICE_ACCOUNT, home)
    objs = rbac_objects(tenant_rules(tenant), name=home, subject=subject)
    (namespace,) = [x for x in objs if x["kind"] == "Namespace"]
    namespace["metadata"]["labels"] = {GRANT_LABEL: home}
    sa = {"apiVersion": "v1", "kind": "ServiceAccount",
          "metadata": {"name": SERVICE_ACCOUNT, "namespace": home}}  # fmt: skip
    rest = [x for x in objs if x["kind"] != "Namespace"]
    out = [namespace, sa, _token_secret(home), *rest]
    for obj in out:
        obj["metadata"]["ownerReferences"] = [grant_owner_reference(grant)]
    return out


def _ref(obj: o.Obj) -> ObjectRef:
    kind = obj["kind"]
    gvr = _KIND_GVR.get(kind) or (SERVICE_ACCOUNTS if kind == "ServiceAccount" else SECRETS)
    return ObjectRef(PROVIDER, gvr, ObjectKey(o.namespace(obj), o.name(obj)))


def plan_grant(view: GrantView) -> Plan:
    return plan_or_ask(lambda: _plan_grant(view))


def _plan_grant(view: GrantView) -> Plan:
    grant, home = view.grant, o.name(view.grant)
    if o.is_deleting(grant):
        return Plan(why="rule 2: deleting; the garbage collector removes what it minted")
    status = _status(grant)
    conds = Conditions(status.get("conditions"), o.generation(grant), rfc3339(view.now))

    def finish(why: str, *actions: Action) -> Plan:
        status["conditions"] = conds.to_json()
        update = status_update(grant, _grant_ref(grant), status)
        return Plan((*actions, *([update] if update else [])), why=why)

    if not home or boundary_home(grant) != home:
        conds.set(T.READY, False, INVALID_GRANT, "the Grant's name is not its key's home namespace")
        return finish("rule 3: not a boundary key")
    if conds.is_true(T.REVOKED):
        return finish("rule 4: revoked", *_revoke_credentials(view, home, conds))
    export = view.export
    if export is None or o.is_deleting(export) or o.name(export) != grant_export(grant):
        conds.set(T.READY, False, R.EXPORT_NOT_FOUND, f"no Export {grant_export(grant)!r}")
        return finish("rule 5: no Export")
    apis = export_apis(export)
    if not export_ready(export) or not apis:
        conds.set(T.READY, False, R.API_NOT_EXPORTED, f"Export {o.name(export)!r} is not Ready")
        return finish("rule 5: Export not Ready")
    tenant = Tenant(home, apis)
    want = minted(grant, tenant)
    refs = [_ref(x) for x in want]
    got = need_all(view.observed, tuple(Get(r.cluster, r.gvr, r.key) for r in refs))
    for result in got:
        if isinstance(result, Failed):
            raise result.error
    have = [r if isinstance(r, dict) else None for r in got]
    ns, sa, secret = have[0], have[1], have[2]
    if ns is not None and o.labels_of(ns).get(GRANT_LABEL) != home:
        conds.set(
            T.READY, False, NAMESPACE_TAKEN, f"namespace {home} exists and is not this Grant's"
        )
        return finish("rule 6: home namespace taken")
    actions: list[Action] = []
    for body, ref, current in zip(want, refs, have, strict=True):
        actions.extend(_converge(body, ref, current))
    status.update(
        namespace=home,
        serviceAccountName=SERVICE_ACCOUNT,
        tokenSecretName=TOKEN_SECRET,
        apis=list(apis),
    )
    fresh = secret is None or not _is_token_secret(secret)
    if fresh or not isinstance(status.get("issuedAt"), str) or not status.get("issuedAt"):
        status["issuedAt"] = rfc3339(view.now)
    if ns is not None and sa is not None and not fresh and secret_token(secret):
        conds.set(T.READY, True, R.ISSUED, f"credentials issued in namespace {home}")
        # A binding deleted for a drifted roleRef is made again on the next pass: ask for it,
        # since nothing the controller watches changes when it goes.
        again = (
            [RequeueAfter(PENDING_SECONDS)] if any(isinstance(a, Delete) for a in actions) else []
        )
        return finish("rule 7: issued", *actions, *again)
    conds.set(T.READY, False, R.PENDING, "waiting for the ServiceAccount's token")
    return finish("rule 7: pending", *actions, RequeueAfter(PENDING_SECONDS))


def _converge(want: o.Obj, ref: ObjectRef, current: o.Obj | None) -> list[Action]:
    """Create `want`, or put back what drifted (rule 6)."""
    if current is None:
        return [Create(ref, want, FIELD_MANAGER)]
    kind = want["kind"]
    if kind == "Secret" and not _is_token_secret(current):
        return [Delete(ref, o.uid(current))]  # type and annotation are the token's: remade
    if kind in ("Role", "ClusterRole") and not o.json_equal(current.get("rules"), want["rules"]):
        return [Update(ref, {**o.deepcopy(current), "rules": want["rules"]}, FIELD_MANAGER)]
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        if not o.json_equal(current.get("roleRef"), want["roleRef"]):
            return [Delete(ref, o.uid(current))]
        if not o.json_equal(current.get("subjects"), want["subjects"]):
            body = {**o.deepcopy(current), "subjects": want["subjects"]}
            return [Update(ref, body, FIELD_MANAGER)]
    return []


def _revoke_credentials(view: GrantView, home: str, conds: Conditions) -> list[Action]:
    """Rule 4: delete the token Secret and the ServiceAccount; keep everything else."""
    refs = (
        ObjectRef(PROVIDER, SECRETS, ObjectKey(home, TOKEN_SECRET)),
        ObjectRef(PROVIDER, SERVICE_ACCOUNTS, ObjectKey(home, SERVICE_ACCOUNT)),
    )
    got = need_all(view.observed, tuple(Get(r.cluster, r.gvr, r.key) for r in refs))
    actions: list[Action] = []
    for ref, current in zip(refs, got, strict=True):
        if isinstance(current, Failed):
            raise current.error
        if isinstance(current, dict) and not o.is_deleting(current):
            actions.append(Delete(ref, o.uid(current)))
    why = "access revoked"
    for cond in conds.to_json():
        if cond.get("type") == T.REVOKED and cond.get("message"):
            why = f"access revoked: {cond['message']}"
    conds.set(T.READY, False, REVOKED_REASON, why)
    return actions


# -- rule 8: the bundle ---------------------------------------------------------------------


@attrs.frozen
class NotIssued:
    """Why no bundle can be handed out for a Grant (rule 8)."""

    message: str


def issued_kubeconfig(server: str, ca_pem: str, token: str, namespace: str) -> dict[str, Any]:
    """A single-context kubeconfig for the provider's external address and CA, as the token."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "provider",
        "clusters": [{"name": "provider", "cluster": cluster}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [
            {
                "name": "provider",
                "context": {"cluster": "provider", "user": SERVICE_ACCOUNT, "namespace": namespace},
            }
        ],
    }


def issued_tenant(grant: Mapping[str, Any]) -> Tenant | NotIssued:
    """The boundary of a Ready, unrevoked Grant, from its status."""
    if o.is_deleting(grant):
        return NotIssued(f"Grant {o.name(grant)} is being deleted")
    if condition_is_true(grant, T.REVOKED):
        return NotIssued(f"Grant {o.name(grant)} is revoked")
    if not condition_is_true(grant, T.READY):
        return NotIssued(f"Grant {o.name(grant)} is not Ready: its credentials are not issued")
    status = _status(grant)
    apis = status.get("apis")
    if status.get("namespace") != o.name(grant) or not isinstance(apis, list) or not apis:
        return NotIssued(f"Grant {o.name(grant)} has no issued namespace and APIs")
    if not all(isinstance(a, str) and a for a in apis):
        return NotIssued(f"Grant {o.name(grant)} has malformed APIs")
    return Tenant(o.name(grant), tuple(sorted(apis)))


def export_defaults(export: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What an Export copies into the binding (conflictPolicy, relatedResources) and into the
    Connection (schema)."""
    spec = export.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    binding = {k: o.deepcopy(spec[k]) for k in ("conflictPolicy", "relatedResources") if k in spec}
    connection = {"schema": o.deepcopy(spec["schema"])} if "schema" in spec else {}
    return binding, connection


def issued_bundle(
    grant: Mapping[str, Any],
    export: Mapping[str, Any],
    token_secret: Mapping[str, Any] | None,
    server: str,
    ca_pem: str,
    *,
    connection: str = "provider",
    konnector_namespace: str = kb.DEFAULT_KONNECTOR_NAMESPACE,
    binding: kb.BindingRef | None = None,
    apis: Sequence[str] = (),
) -> list[dict[str, Any]] | NotIssued:
    """The consumer's bundle for an issued Grant (rule 8); `apis` defaults to all granted."""
    tenant = issued_tenant(grant)
    if isinstance(tenant, NotIssued):
        return tenant
    if o.name(export) != grant_export(grant):
        return NotIssued(f"Export {o.name(export)!r} is not the Grant's ({grant_export(grant)!r})")
    status = _status(grant)
    if (
        token_secret is None
        or o.key_of(token_secret) != ObjectKey(tenant.namespace, str(status.get("tokenSecretName")))
        or token_secret.get("type") != TOKEN_TYPE
        or o.annotations_of(token_secret).get(SA_NAME_ANNOTATION)
        != status.get("serviceAccountName")
    ):
        return NotIssued(f"the token Secret is not Grant {o.name(grant)}'s")
    token = secret_token(token_secret)
    if not token:
        return NotIssued(f"the token Secret of Grant {o.name(grant)} holds no token yet")
    chosen = list(apis) or list(tenant.apis)
    outside = [a for a in chosen if a not in tenant.apis]
    if outside:
        return NotIssued(f"not granted: {', '.join(outside)}")
    kubeconfig = issued_kubeconfig(server, ca_pem, token, tenant.namespace)
    single = kb.single_context(kubeconfig)
    if not isinstance(single, dict):
        return NotIssued(f"the kubeconfig would be refused: {single.message}")
    binding_defaults, connection_defaults = export_defaults(export)
    return kb.bundle(
        connection=connection,
        # JSON is YAML: kbcore has no YAML writer, and the konnector reads either.
        kubeconfig_text=o.canonical_json(single),
        apis=chosen,
        konnector_namespace=konnector_namespace,
        binding=binding,
        tenant=tenant,
        binding_defaults=binding_defaults,
        connection_defaults=connection_defaults,
    )
