"""What a planner sees: the kernel's views, built from a shell's caches for one work-queue key.

The worker (`kbcore.runtime.worker`) handles a key by building its view here, then calling the
planner with it. A shell supplies its caches and settings through `KonnectorState`; a running
bound API's two caches through `Syncer`. Nothing here reads the API server: what a planner needs
beyond the caches it asks for (`kbcore.reads`), and the worker answers.

Not to be confused with `kbcore.views`, what `kubectl bind` shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kbcore import objects as o
from kbcore.actions import Plan
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CONNECTIONS, CRDS, SECRETS
from kbcore.control.binding import BindingView
from kbcore.control.connection import ConnectionView
from kbcore.control.engagement import SyncTarget, syncs_api
from kbcore.control.kubeconfig import Credentials, SecretProblem, credentials_for, secret_ref
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.keys import BindingKey, InstanceKey
from kbcore.sync.coverage import connection_name, resolve_coverage
from kbcore.sync.instance import InstanceView
from kbcore.sync.mapper import IDENTITY, Mapper
from kbcore.sync.tenancy import Tenant, tenant_of

CONTROL_KINDS: dict[GVR, str] = {
    CONNECTIONS: "Connection",
    CLUSTERBINDINGS: "ClusterBinding",
    BINDINGS: "Binding",
    CRDS: "CustomResourceDefinition",
    SECRETS: "Secret",
}
"""The consumer resources the control plane watches, with the kind `keys_for_event` expects."""

Planner = Callable[[InstanceView], Plan]


class Syncer(Protocol):
    """A running bound API: its target and its two caches (consumer, provider copies)."""

    @property
    def target(self) -> SyncTarget: ...

    @property
    def synced(self) -> bool: ...

    def consumer_get(self, key: ObjectKey) -> o.Obj | None: ...

    def provider_get(self, key: ObjectKey) -> o.Obj | None: ...


class KonnectorState(Protocol):
    """What a worker reads from its shell: caches and the konnector's settings."""

    @property
    def namespace(self) -> str: ...

    @property
    def planner(self) -> Planner: ...

    def cached(self, gvr: GVR) -> list[o.Obj]: ...

    def cached_get(self, gvr: GVR, key: ObjectKey) -> o.Obj | None: ...

    def control_synced(self) -> bool: ...

    def syncer(self, gvr: GVR) -> Syncer | None: ...

    def verified(self, connection: str) -> str | None: ...


def credentials(state: KonnectorState, conn: o.Obj, secret: o.Obj | None = None) -> Any:
    """The Connection's provider credentials from its cached Secret (or a SecretProblem)."""
    if secret is None:
        namespace, name, _ = secret_ref(conn)
        secret = state.cached_get(SECRETS, ObjectKey(namespace, name))
    return credentials_for(conn, secret, state.namespace)


def usable(creds: Credentials | SecretProblem | None) -> Credentials | None:
    """`creds` if they are credentials the konnector may use, else None."""
    return creds if isinstance(creds, Credentials) else None


def connection_view(state: KonnectorState, name: str, now: float) -> ConnectionView | None:
    """The Connection `name` from the cache with its Secret and credentials; None if gone."""
    conn = state.cached_get(CONNECTIONS, ObjectKey("", name))
    if conn is None:
        return None
    namespace, secret_name, _ = secret_ref(conn)
    secret = state.cached_get(SECRETS, ObjectKey(namespace, secret_name))
    return ConnectionView(
        connection=conn,
        konnector_namespace=state.namespace,
        secret=secret,
        credentials=credentials(state, conn, secret),
        observed={},
        now=now,
    )


def binding_view(state: KonnectorState, item: BindingKey, now: float) -> BindingView | None:
    """The binding from the cache with its Connection's credentials; None if gone."""
    gvr = CLUSTERBINDINGS if item.kind == "ClusterBinding" else BINDINGS
    binding = state.cached_get(gvr, ObjectKey(item.namespace, item.name))
    if binding is None:
        return None
    conn_name = connection_name(binding)
    conn = state.cached_get(CONNECTIONS, ObjectKey("", conn_name)) if conn_name else None
    return BindingView(
        binding={**binding, "kind": item.kind},
        connection=conn,
        credentials=credentials(state, conn) if conn is not None else None,
        observed={},
        now=now,
        mapper=connection_mapper(conn),
        konnector_namespace=state.namespace,
    )


def instance_view(syncer: Syncer, state: KonnectorState, item: InstanceKey) -> InstanceView:
    """One consumer object, its provider copy as cached, and the binding covering it."""
    gvr, key = item.gvr, item.key
    t = syncer.target
    coverage = resolve_coverage(
        gvr.group_resource,
        key.namespace,
        state.cached(CLUSTERBINDINGS),
        state.cached(BINDINGS),
        lambda b: syncs_api(b, gvr.group_resource),  # per API: one refused API pauses alone
    )
    return InstanceView(
        gvr=gvr,
        namespaced=t.namespaced,
        consumer=syncer.consumer_get(key),
        coverage=coverage,
        provider=syncer.provider_get(t.engagement.mapper.to_provider(gvr, key)),
        local_cluster_uid=t.engagement.local_cluster_uid,
        mapper=t.engagement.mapper,
        provider_cluster_uid=t.engagement.remote_cluster_uid,
        tenant=t.engagement.tenant,
    )


def connection_mapper(conn: o.Obj | None) -> Mapper:
    """Where a Connection's consumer objects live on the provider: its tenant's namespaces, or
    the same keys (`kbcore.sync.tenancy` rule 2). A malformed tenant maps nothing differently,
    but such a Connection is never Ready, so nothing is synced through it."""
    tenant = tenant_of(conn) if conn is not None else None
    return tenant.mapper if isinstance(tenant, Tenant) else IDENTITY
