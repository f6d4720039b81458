"""The provider-side RBAC of `kube-bind-backend` itself: what its own credentials must hold.

The chart `charts/backend` grants exactly `backend_rules(reap)` to the backend's ServiceAccount
(tests/chart/test_backend_chart.py compares the rendered ClusterRole with it, and
tests/chart/test_backend_rbac_in_practice.py proves on a real API server that the backend is
never refused and that every verb below is used). Rules, each naming what needs it:

 1. Reads. The controllers (`kbshell.backend.issuer`) LIST and WATCH Exports, Collections,
    Grants, BoundNamespaces and CRDs into caches. The planners GET by name: each Export's CRDs
    (`catalog` rule 1), each Collection's Exports (rule 2), a claim's Grant (`claims` rule 1),
    and every object a Grant or claim mints (`issuer` rule 6, `claims` rule 4). The gateway's
    `ProviderIssuer` LISTs Exports and Collections (its catalog) and GETs an Export, a Grant and
    its token Secret (a bind). Collections and BoundNamespaces are never read by name.
 2. Status: a PUT to the status subresource of Exports, Collections, Grants and BoundNamespaces
    (their Ready; a Grant's issued namespace and token; `reissue` clears Revoked).
 3. Grants are created by the gateway only (`plan_issue`); nothing else of the catalog or iam
    groups is created, updated (outside status) or deleted by the backend, except a stale Grant
    deleted by the reaper in `Delete` mode (rule 9).
 4. What a Grant mints (`issuer` rule 6) and a claim gets (`claims` rule 4): CREATE of
    Namespaces, ServiceAccounts, Secrets, Roles, RoleBindings, ClusterRoles and
    ClusterRoleBindings. Their names derive from each caller's identity (a hash), so no create
    or read can be limited to names, except two that are constant: the tenant's ServiceAccount
    `konnector` and its token Secret `konnector-token` (read and deleted by name only, so the
    backend cannot read any other Secret).
 5. Drift put back (`issuer` rule 6, `claims` rule 4): UPDATE of Roles, ClusterRoles (rules),
    RoleBindings and ClusterRoleBindings (subjects); DELETE of a binding whose roleRef changed
    (roleRef is immutable) and of a token Secret that is not the token's.
 6. Revocation (`issuer` rule 4): DELETE of the token Secret and the ServiceAccount.
 7. Never: namespaces are not deleted (the garbage collector removes them with their Grant),
    nothing is patched, nothing is listed outside the service groups and CRDs.
 8. The RBAC escalation check: creating a Role or ClusterRole is allowed only to who holds every
    permission in it or has `escalate` on roles/clusterroles; creating a binding only to who
    holds the role's permissions or has `bind` on the role it references. A tenant's rules name
    the Export's API groups, which the backend cannot know in advance, so holding them would
    take `*`: `escalate` and `bind` on roles and clusterroles are the smaller grant. They make
    the backend as powerful as cluster-admin in effect (it may create and bind any role), which
    is what a component minting credentials for others is; the chart says so.
 9. The reaper (`kbcore.service.reaper`, `kube-bind-backend --reap`), only when it runs: a LIST
    of every Lease (the konnectors' heartbeats; its Grants come from the LIST of rule 1). In
    `Revoke` mode it writes the Grant's status (rule 2 already allows it); in `Delete` mode it
    also DELETEs Grants. A dry run writes nothing. Off, none of this is granted.
"""

from __future__ import annotations

from kbcore.api.resources import (
    BOUND_NAMESPACES,
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    COLLECTIONS,
    CRDS,
    EXPORTS,
    GRANTS,
    LEASES,
    NAMESPACES,
    ROLE_BINDINGS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
)
from kbcore.objects import GVR
from kbcore.service.issuer import SERVICE_ACCOUNT, TOKEN_SECRET
from kbcore.service.reaper import ReapMode
from kbcore.views.rbac import Rule


def _rule(gvr: GVR, verbs: tuple[str, ...], why: str, *, sub: str = "") -> Rule:
    resource = f"{gvr.resource}/{sub}" if sub else gvr.resource
    return Rule(gvr.group, resource, verbs, why)


def backend_rules(reap: ReapMode | None = None) -> tuple[Rule, ...]:
    """Every cluster-wide rule `kube-bind-backend --issuer=provider` (gateway and controllers)
    needs on the provider, with the reaper in mode `reap` (None: off), in the chart's order
    (module docstring)."""
    reaps = () if reap is None else (_rule(LEASES, ("list",), "rule 9: the reaper's heartbeats"),)
    deletes = ("delete",) if reap is ReapMode.DELETE else ()
    return (
        _rule(EXPORTS, ("get", "list", "watch"), "rule 1: catalog, Collections, binds"),
        _rule(COLLECTIONS, ("list", "watch"), "rule 1: cache and catalog"),
        _rule(
            GRANTS,
            ("get", "list", "watch", "create", *deletes),
            "rules 1, 3, 9: cache, claims, binds, the reaper",
        ),
        _rule(BOUND_NAMESPACES, ("list", "watch"), "rule 1: cache of claims"),
        *(
            _rule(gvr, ("update",), "rule 2: status", sub="status")
            for gvr in (EXPORTS, COLLECTIONS, GRANTS, BOUND_NAMESPACES)
        ),
        _rule(CRDS, ("get", "list", "watch"), "rule 1: an Export's CRDs"),
        _rule(NAMESPACES, ("get", "create"), "rule 4: home and claimed namespaces"),
        _rule(SERVICE_ACCOUNTS, ("create",), "rule 4: the tenant's ServiceAccount"),
        Rule(
            SERVICE_ACCOUNTS.group,
            SERVICE_ACCOUNTS.resource,
            ("get", "delete"),
            "rules 4, 6: read by name, deleted on revocation",
            names=(SERVICE_ACCOUNT,),
        ),
        _rule(SECRETS, ("create",), "rule 4: the tenant's token Secret"),
        Rule(
            SECRETS.group,
            SECRETS.resource,
            ("get", "delete"),
            "rules 1, 4, 5, 6: read by name, remade or deleted on revocation",
            names=(TOKEN_SECRET,),
        ),
        *(
            _rule(gvr, ("get", "create", "update"), "rules 4, 5: tenant roles")
            for gvr in (ROLES, CLUSTER_ROLES)
        ),
        *(
            _rule(gvr, ("get", "create", "update", "delete"), "rules 4, 5: tenant bindings")
            for gvr in (ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS)
        ),
        *(
            _rule(gvr, ("escalate", "bind"), "rule 8: the tenant's rules and their bindings")
            for gvr in (ROLES, CLUSTER_ROLES)
        ),
        *reaps,
    )
