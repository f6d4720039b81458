"""Engagement: which Connections the konnector syncs instances through, and which APIs.

Stop-on-disengage (upstream's engage/disengage of provider clusters) as pure functions. A
Connection is engaged while it is Ready, not deleting, has pinned its local identity, does not
name the consumer itself as its provider (`kbcore.control.connection` rule 6a refuses that; this
holds even for a status written by someone else), and its Secret yields the credentials its last
reconcile verified (identity included). The `Engagement` value includes the credentials, so a
rotated kubeconfig yields a different value and the shell rebuilds what it built from the old
one, without the Connection first going not-Ready (docs/design.md, "Differences from upstream").
An API is synced while its consumer CRD carries our markers and names an engaged Connection; the
first Connection to install a CRD stays its provider.

Which objects of a synced API are written on the provider is decided per API, not per binding
(`syncs_api`): the binding covering an object must say that this API is Ready in its
`boundAPIs` entry (`kbcore.control.binding` rule 4). So one refused API (a schema change the
consumer CRD cannot follow, a protected group, a conversion webhook) pauses only itself, and what
the binding's conditions claim is what syncs. An API refused for another reason keeps its syncer:
deletions of its consumer objects still finish (`kbcore.sync.instance` rule 2), creates and updates
do not happen (rule 3).

An API whose provider schema a binding refused as one the consumer CRD cannot follow
(`IncompatibleSchemaChange`: another scope, names, or the consumer's stored version no longer
served) is paused altogether, as a disengaged Connection's APIs are: no syncer runs for it
(`sync_targets`), because the provider no longer serves it where the consumer CRD addresses it,
so every read and write there would fail or reach other objects, again and again. Deletions of
its consumer objects wait, holding their finalizer, until it resumes or is unbound (the unbind
drain reads the provider itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import Plan, UpdateStatus
from kbcore.api import conditions as c
from kbcore.api import keys
from kbcore.control.binding import api_is_ready
from kbcore.control.kubeconfig import Credentials, SecretProblem
from kbcore.identity import reaches_itself
from kbcore.objects import GVR
from kbcore.schema.crds import served_resource
from kbcore.status import condition_is_true
from kbcore.sync.mapper import IDENTITY, Mapper
from kbcore.sync.tenancy import Tenant, tenant_of


@attrs.frozen
class Engagement:
    """A Connection instances are synced through: its provider access and our identity."""

    connection: str
    credentials: Credentials
    local_cluster_uid: str
    remote_cluster_uid: str = ""
    """The provider's pinned identity (`status.remoteClusterUID`)."""
    tenant: Tenant | None = None
    """The boundary on a shared provider (`kbcore.sync.tenancy`), or None."""
    tenant_namespaces: tuple[str, ...] = ()
    """A tenant's granted provider namespaces (`status.tenantNamespaces`): where its provider
    copies are listed and watched."""

    @property
    def mapper(self) -> Mapper:
        return IDENTITY if self.tenant is None else self.tenant.mapper

    @property
    def provider_scopes(self) -> tuple[str, ...]:
        """The namespaces provider copies are listed and watched in; ("",) is cluster-wide."""
        return ("",) if self.tenant is None else self.tenant_namespaces


@attrs.frozen
class SyncTarget:
    """One bound API: the GVR instances are synced as, and through which Engagement."""

    gvr: GVR
    namespaced: bool
    engagement: Engagement


def engagement(
    connection: Mapping[str, Any],
    credentials: Credentials | SecretProblem | None,
    verified: str | None,
) -> Engagement | None:
    """The Engagement of a Connection, or None when instance sync must stop.

    `verified` is the fingerprint of the credentials the last completed Connection reconcile
    found Ready with them (`verified_fingerprint`). Credentials that changed since are not
    used, even though the Connection still says Ready: the new kubeconfig may point at another
    cluster, and only the Connection reconcile checks the pinned identity (found by the
    property suite: a rotated Secret must never reach a syncer before that check)."""
    if o.is_deleting(connection) or not condition_is_true(connection, c.READY):
        return None
    if not isinstance(credentials, Credentials) or credentials.fingerprint != verified:
        return None
    status = connection.get("status")
    status = status if isinstance(status, Mapping) else {}
    local, remote = status.get("localClusterUID"), status.get("remoteClusterUID")
    if not isinstance(local, str) or not local:
        return None
    remote = remote if isinstance(remote, str) else ""
    if reaches_itself(remote, local):
        return None
    tenant = tenant_of(connection)
    if isinstance(tenant, str):
        return None  # the Connection planner refuses it; never sync outside the boundary
    granted: tuple[str, ...] = ()
    if tenant is not None:
        listed = status.get("tenantNamespaces")
        granted = tuple(
            sorted(
                {
                    n
                    for n in (listed if isinstance(listed, list) else [])
                    if isinstance(n, str) and n.startswith(tenant.prefix) and n != tenant.prefix
                }
            )
        )
    return Engagement(o.name(connection), credentials, local, remote, tenant, granted)


def paused(api: str, bindings: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a live binding listing `api` refused its provider schema as incompatible."""
    for b in bindings:
        status = b.get("status")
        entries = o.list_at(status, "boundAPIs") if isinstance(status, Mapping) else []
        for e in entries:
            if not isinstance(e, Mapping) or e.get("name") != api or o.is_deleting(b):
                continue
            raw = e.get("conditions")
            if any(
                isinstance(x, Mapping)
                and x.get("type") == c.READY
                and x.get("status") == "False"
                and x.get("reason") == c.INCOMPATIBLE_SCHEMA_CHANGE
                for x in (raw if isinstance(raw, list) else [])
            ):
                return True
    return False


def sync_targets(
    crds: Iterable[Mapping[str, Any]],
    engaged: Mapping[str, Engagement],
    bindings: Iterable[Mapping[str, Any]] = (),
) -> dict[GVR, SyncTarget]:
    """The APIs to sync: consumer CRDs labelled managed whose Connection is engaged, and that
    no binding in `bindings` has paused (`paused`)."""
    out: dict[GVR, SyncTarget] = {}
    bindings = list(bindings)
    for crd in sorted(crds, key=o.name):
        if o.labels_of(crd).get(keys.LABEL_MANAGED) != "true":
            continue
        if paused(o.name(crd), bindings):
            continue
        eng = engaged.get(o.annotations_of(crd).get(keys.ANNOTATION_CONNECTION, ""))
        served = served_resource(crd)
        if eng is None or served is None or served.gvr in out:
            continue
        out[served.gvr] = SyncTarget(served.gvr, served.namespaced, eng)
    return out


def syncs_api(binding: Mapping[str, Any], api: str) -> bool:
    """Whether `binding` syncs objects of `api` (`<plural>.<group>`) now: its `boundAPIs` entry
    for the API has `Ready=True`, whatever the other APIs' state."""
    status = binding.get("status")
    entries = o.list_at(status, "boundAPIs") if isinstance(status, Mapping) else []
    return any(isinstance(e, Mapping) and e.get("name") == api and api_is_ready(e) for e in entries)


def verified_fingerprint(
    connection: Mapping[str, Any], credentials: Credentials | SecretProblem, plan: Plan
) -> str | None:
    """The credentials a Connection plan, once carried out, vouches for: their fingerprint
    when the status it leaves (its UpdateStatus, else the current one) is Ready."""
    written = [a.body for a in plan.actions if isinstance(a, UpdateStatus)]
    after = written[-1] if written else connection
    if not isinstance(credentials, Credentials) or not condition_is_true(after, c.READY):
        return None
    return credentials.fingerprint
