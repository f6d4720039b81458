"""What the shells put on the work queue and which syncers they run, read from their caches.

The worker (`kbcore.runtime.worker`) handles one key; these helpers say which keys there are: the
key an event of a consumer instance, a provider copy or a control-plane object wakes
(`instance_key`, `provider_key`, `control_keys`, the last through `kbcore.runtime.events`), the
periodic control-plane resync (`control_resync_keys`), and for the engagement pass, the
Connections instances are synced through (`engagements`) and the credentials still in use
(`current_fingerprints`).
"""

from __future__ import annotations

from collections.abc import Callable

from kbcore import objects as o
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CONNECTIONS
from kbcore.control.engagement import Engagement, SyncTarget, engagement
from kbcore.control.kubeconfig import Credentials
from kbcore.objects import GVR
from kbcore.runtime.events import keys_for_event
from kbcore.runtime.keys import ENGAGE, BindingKey, ConnectionKey, InstanceKey, WorkKey
from kbcore.runtime.observe import CONTROL_KINDS, KonnectorState, credentials, usable
from kbcore.sync.instance import consumer_key_for_provider


def engagements(
    state: KonnectorState, reachable: Callable[[Credentials], bool] = lambda _c: True
) -> dict[str, Engagement]:
    """The Connections instances are synced through now (stop-on-disengage)."""
    out: dict[str, Engagement] = {}
    for conn in state.cached(CONNECTIONS):
        eng = engagement(conn, credentials(state, conn), state.verified(o.name(conn)))
        if eng is not None and reachable(eng.credentials):
            out[eng.connection] = eng
    return out


def current_fingerprints(state: KonnectorState) -> set[str]:
    """The provider credentials some Connection's Secret holds now. A shell's client for any
    other fingerprint belongs to rotated or deleted credentials and can be closed."""
    out: set[str] = set()
    for conn in state.cached(CONNECTIONS):
        creds = usable(credentials(state, conn))
        if creds is not None:
            out.add(creds.fingerprint)
    return out


def instance_key(gvr: GVR, old: o.Obj | None, new: o.Obj | None) -> InstanceKey | None:
    """The key a consumer instance event wakes."""
    obj = new if new is not None else old
    return InstanceKey(gvr, o.key_of(obj)) if obj is not None else None


def control_keys(
    kind: str, old: o.Obj | None, new: o.Obj | None, state: KonnectorState
) -> list[WorkKey]:
    """The keys a control-plane event wakes (`kbcore.runtime.events.keys_for_event` on the
    caches)."""
    obj = new if new is not None else old
    if obj is None:
        return []
    bindings = state.cached(CLUSTERBINDINGS) + state.cached(BINDINGS)
    return keys_for_event(kind, obj, connections=state.cached(CONNECTIONS), bindings=bindings)


def provider_key(target: SyncTarget, obj: o.Obj | None) -> InstanceKey | None:
    """The key a provider copy's event wakes: its consumer object, if the copy is ours."""
    if obj is None:
        return None
    t = target
    key = consumer_key_for_provider(obj, t.gvr, t.engagement.local_cluster_uid, t.engagement.mapper)
    return InstanceKey(t.gvr, key) if key is not None else None


def control_resync_keys(state: KonnectorState) -> list[WorkKey]:
    """The periodic control-plane resync (re-discovery, heartbeat, conflict counts): every
    cached Connection and binding, then the engagement pass."""
    out: list[WorkKey] = [ConnectionKey(o.name(c)) for c in state.cached(CONNECTIONS)]
    for gvr in (CLUSTERBINDINGS, BINDINGS):
        kind = CONTROL_KINDS[gvr]
        out += [BindingKey(kind, o.namespace(b), o.name(b)) for b in state.cached(gvr)]
    out.append(ENGAGE)
    return out
