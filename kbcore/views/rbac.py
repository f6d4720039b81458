"""The provider-side RBAC a binding needs: exactly what the konnector does there, nothing more.

A provider hands out credentials; its admin must grant them what the konnector will ask of the
provider API server, and should grant nothing else. This module derives that from the kernel's
own reads and requests on the provider (`PROVIDER` in kbcore): each rule names the kernel
function it serves, and the unit tests run the konnector in kbsim as a user holding only these
rules, check that no request is ever denied and that every rule is used.

What the konnector does on the provider, per part:
 1. Connection (`kbcore.control.connection`): cluster identity (`kbcore.identity.identity_reads`:
    GET the kcp LogicalCluster `cluster` and namespace `kube-system`; a Forbidden answer is never
    skipped, so both are needed); discovery (LIST CRDs labelled exported; a Forbidden list
    never falls through to OpenAPI); the heartbeat Lease in namespace `kube-bind` (GET, POST,
    PUT to renew, DELETE on teardown) and a GET of that namespace.
 2. Binding (`kbcore.control.binding`): GET of each listed CRD (schema source CRD pulls it).
 3. Instance sync (`kbcore.sync.instance`, the shell's syncer cache): LIST and WATCH of each bound
    API in every namespace (the cache of provider copies, label `managed=true`, is
    cluster-wide even for a Binding); GET (fresh reads before a create or a finalizer
    release), POST (create), PATCH (server-side apply) and DELETE of copies, in every
    namespace for a ClusterBinding, in the Binding's (mapped) namespace for a Binding; GET of
    the copy's namespace and, for a ClusterBinding, POST of a missing one.
 4. Related resources (`kbcore.control.related`), per kind and direction: FromProvider reads sources
    on the provider (LIST); FromConsumer keeps copies there (LIST of ours, GET of a same-named
    one, POST, PATCH, DELETE) and may create their namespace.

A tenant of a shared provider (`kbcore.sync.tenancy`) needs less, and nothing cluster-wide that
would show it another tenant's objects (`tenant_rules`): GET of the identity objects and of
exactly its granted CRDs by name; in its home namespace the heartbeat Lease (GET, POST, PUT,
DELETE) and its BoundNamespace claims (GET, LIST, POST); in each namespace the provider granted
it, LIST and WATCH of every bound API and GET, POST, PATCH, DELETE of copies, and part 4's
rules for the Export's related resources (`related_rules`, the same as a non-tenant's, in that
namespace; `kbcore.control.related` rule 10 lists a tenant's per granted namespace and never
reads a namespace, and its claims are listed with the BoundNamespace rule). It never creates,
deletes or even reads a namespace (the issuer makes them), and its lists are per namespace.

Namespaced rules become a Role (and RoleBinding) in that namespace, and the namespace itself is
part of the output (a Role needs it, and the konnector then never has to create it). Left out
deliberately: removing provider namespaces the konnector created once they are empty (unbind
housekeeping): proving a namespace empty takes LIST on every resource the provider serves,
which is far more than a binding needs; without it those namespaces stay, as upstream leaves
them. Discovery documents (`/api`, `/apis`, `/openapi/v3`) are readable by every authenticated
user through the default `system:discovery` role and need no rule here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from kbcore.actions import PROVIDER
from kbcore.api import keys
from kbcore.api.resources import BOUND_NAMESPACES, CRDS, LEASES, NAMESPACES
from kbcore.api.types import RelatedResourceKind, SyncDirection
from kbcore.identity import identity_reads
from kbcore.objects import GVR, ObjectKey
from kbcore.sync.mapper import IDENTITY, Mapper
from kbcore.sync.tenancy import Tenant

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


@attrs.frozen(order=True)
class Rule:
    """One permission: `verbs` on `group`/`resource` (only `names`, if given), cluster-wide when
    `namespace` is "", else in that namespace; `why` says what in the konnector needs it."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()
    namespace: str = ""


@attrs.frozen
class RelatedAccess:
    """A `relatedResources` rule's kind (`secrets`/`configmaps`) and direction."""

    resource: str
    direction: str

    def __attrs_post_init__(self) -> None:
        if self.resource not in {k.value for k in RelatedResourceKind}:
            raise ValueError(f"related resource must be secrets or configmaps: {self.resource!r}")
        if self.direction not in {d.value for d in SyncDirection}:
            raise ValueError(
                f"related direction must be FromProvider or FromConsumer: {self.direction!r}"
            )


@attrs.frozen
class Subject:
    """Who the credentials authenticate as on the provider: a User, Group or ServiceAccount."""

    kind: str
    name: str
    namespace: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.kind == "ServiceAccount":
            out["namespace"] = self.namespace
        else:
            out["apiGroup"] = "rbac.authorization.k8s.io"
        return out


def api_resource(name: str) -> GVR:
    """The group and resource of an API name `<plural>.<group>` (version left empty)."""
    resource, _, group = name.partition(".")
    return GVR(group, "", resource)


def _verbs(*verbs: str) -> tuple[str, ...]:
    return tuple(v for v in VERB_ORDER if v in verbs)


def provider_rules(
    apis: Sequence[str],
    *,
    binding_namespace: str = "",
    related: Iterable[RelatedAccess] = (),
    mapper: Mapper = IDENTITY,
) -> tuple[Rule, ...]:
    """Every rule the konnector needs on the provider to bind `apis` (API names) through one
    Connection, with a ClusterBinding, or a Binding in `binding_namespace` (module docstring)."""
    rules: list[Rule] = []
    # 1. Connection: identity, discovery, heartbeat.
    for read in identity_reads(PROVIDER):
        rules.append(
            Rule(
                read.gvr.group,
                read.gvr.resource,
                ("get",),
                "Connection: provider cluster identity",
                names=(read.key.name,),
            )
        )
    rules.append(
        Rule(CRDS.group, CRDS.resource, ("list",), "Connection: discover the exported APIs")
    )
    rules.append(_lease_rule(keys.LEASE_NAMESPACE))
    namespaces = [keys.LEASE_NAMESPACE]
    # 2. Binding: pull each CRD.
    names = tuple(dict.fromkeys(apis))
    if names:
        rules.append(
            Rule(CRDS.group, CRDS.resource, ("get",), "Binding: pull the CRDs", names=names)
        )
    # 3. Instance sync.
    scope = ""
    if binding_namespace:
        scope = mapper.to_provider(GVR("", "v1", ""), ObjectKey(binding_namespace, "")).namespace
        namespaces.append(scope)
    for name in names:
        api = api_resource(name)
        rules.append(
            Rule(api.group, api.resource, _verbs("list", "watch"), "sync: cache of provider copies")
        )
        rules.append(
            Rule(
                api.group,
                api.resource,
                _verbs("get", "create", "patch", "delete"),
                "sync: create, apply and delete provider copies",
                namespace=scope,
            )
        )
    # 4. Related resources.
    related = tuple(related)
    copies_to_provider = any(r.direction == SyncDirection.FROM_CONSUMER for r in related)
    rules.extend(related_rules(related, scope))
    # Namespaces: read by name (identity, heartbeat, before creating a copy); created only
    # where the output does not create them (a ClusterBinding's namespaces are not known).
    get_names = () if not scope else tuple(sorted({*_identity_namespaces(), *namespaces}))
    rules.append(
        Rule(
            NAMESPACES.group,
            NAMESPACES.resource,
            ("get",),
            "identity, heartbeat and copies: does the namespace exist",
            names=get_names,
        )
    )
    if not scope and (names or copies_to_provider):
        rules.append(
            Rule(
                NAMESPACES.group,
                NAMESPACES.resource,
                ("create",),
                "sync: create the namespace of a copy",
            )
        )
    return tuple(_merged(rules))


def related_rules(related: Iterable[RelatedAccess], namespace: str) -> tuple[Rule, ...]:
    """Part 4, in `namespace` ("" for every namespace): per kind, FromProvider reads sources
    (LIST), FromConsumer keeps copies (GET of a same-named one, LIST of ours, POST, PATCH,
    DELETE). Namespaces a copy needs are not in here (`provider_rules` adds them; a tenant's
    are the issuer's)."""
    rules = []
    for r in sorted(set(related), key=lambda r: (r.resource, r.direction)):
        verbs: tuple[str, ...]
        if r.direction == SyncDirection.FROM_PROVIDER:
            verbs, why = ("list",), f"related {r.resource}: read sources"
        else:
            verbs = _verbs("get", "list", "create", "patch", "delete")
            why = f"related {r.resource}: keep copies"
        rules.append(Rule("", r.resource, verbs, why, namespace=namespace))
    return tuple(_merged(rules))


def tenant_rules(
    tenant: Tenant, granted: Iterable[str] = (), related: Iterable[RelatedAccess] = ()
) -> tuple[Rule, ...]:
    """Every rule a tenant's konnector needs (module docstring): cluster-wide by name only, its
    home namespace, and `tenant_namespace_rules` (with the Export's `related` resources) in
    each namespace of `granted`."""
    rules = [
        Rule(
            read.gvr.group,
            read.gvr.resource,
            ("get",),
            "Connection: provider cluster identity",
            names=(read.key.name,),
        )
        for read in identity_reads(PROVIDER)
    ]
    rules.append(
        Rule(
            CRDS.group,
            CRDS.resource,
            ("get",),
            "Connection and Binding: discover and pull the granted CRDs",
            names=tenant.apis,
        )
    )
    rules.append(_lease_rule(tenant.namespace))
    rules.append(
        Rule(
            BOUND_NAMESPACES.group,
            BOUND_NAMESPACES.resource,
            _verbs("get", "list", "create"),
            "sync: claim provider namespaces; Connection: which are granted",
            namespace=tenant.namespace,
        )
    )
    related = tuple(related)
    for namespace in sorted(set(granted)):
        rules.extend(tenant_namespace_rules(tenant, namespace, related))
    return tuple(_merged(rules))


def tenant_namespace_rules(
    tenant: Tenant, namespace: str, related: Iterable[RelatedAccess] = ()
) -> tuple[Rule, ...]:
    """The rules a tenant needs in one provider namespace granted to it: its APIs' copies and
    `related_rules` for the Export's related resources (none without them)."""
    rules: list[Rule] = list(related_rules(related, namespace))
    for name in tenant.apis:
        api = api_resource(name)
        rules.append(
            Rule(
                api.group,
                api.resource,
                _verbs("get", "list", "watch", "create", "patch", "delete"),
                "sync: cache, create, apply and delete provider copies",
                namespace=namespace,
            )
        )
    return tuple(_merged(rules))


def _lease_rule(namespace: str) -> Rule:
    return Rule(
        LEASES.group,
        LEASES.resource,
        _verbs("get", "create", "update", "delete"),
        "Connection: heartbeat Lease (renewed, deleted with the Connection)",
        namespace=namespace,
    )


def _identity_namespaces() -> tuple[str, ...]:
    return tuple(r.key.name for r in identity_reads(PROVIDER) if r.gvr == NAMESPACES)


def _merged(rules: list[Rule]) -> list[Rule]:
    """One rule per (namespace, group, resource, names): verbs united, reasons joined; a
    names-restricted rule whose verbs an unrestricted one grants is dropped."""
    out: dict[tuple[str, str, str, tuple[str, ...]], Rule] = {}
    for r in rules:
        k = (r.namespace, r.group, r.resource, r.names)
        prev = out.get(k)
        if prev is None:
            out[k] = r
        else:
            why = prev.why if r.why in prev.why else f"{prev.why}; {r.why}"
            out[k] = attrs.evolve(prev, verbs=_verbs(*prev.verbs, *r.verbs), why=why)
    kept = []
    for (namespace, group, resource, names), r in out.items():
        wide = out.get((namespace, group, resource, ()))
        if names and wide is not None and set(r.verbs) <= set(wide.verbs):
            continue
        kept.append(r)
    return sorted(kept, key=lambda r: (r.namespace, r.group, r.resource, r.names))


def rule_json(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiGroups": [rule.group],
        "resources": [rule.resource],
        "verbs": list(rule.verbs),
    }
    if rule.names:
        out["resourceNames"] = list(rule.names)
    return out


def rbac_objects(rules: Sequence[Rule], *, name: str, subject: Subject) -> list[dict[str, Any]]:
    """The provider objects granting `rules` to `subject`: a ClusterRole and its binding for
    cluster-wide rules; per namespace the Namespace, a Role and a RoleBinding, all `name`."""
    out: list[dict[str, Any]] = []
    cluster = [r for r in rules if not r.namespace]
    if cluster:
        out.append(_role("ClusterRole", name, "", cluster))
        out.append(_binding("ClusterRoleBinding", name, "", subject))
    for namespace in sorted({r.namespace for r in rules if r.namespace}):
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        scoped = [r for r in rules if r.namespace == namespace]
        out.append(_role("Role", name, namespace, scoped))
        out.append(_binding("RoleBinding", name, namespace, subject))
    return out


def _meta(name: str, namespace: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _role(kind: str, name: str, namespace: str, rules: Sequence[Rule]) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": kind,
        "metadata": _meta(name, namespace),
        "rules": [rule_json(r) for r in rules],
    }


def _binding(kind: str, name: str, namespace: str, subject: Subject) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": kind,
        "metadata": _meta(name, namespace),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role" if kind == "RoleBinding" else "ClusterRole",
            "name": name,
        },
        "subjects": [subject.to_json()],
    }
