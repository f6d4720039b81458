"""Which work-queue keys an event wakes (the control plane's event mapping, spec Appendix A).

Both shells feed every watch event of the control-plane kinds through `keys_for_event` and
enqueue what it returns; the rules live here so kbsim and kbshell cannot drift apart.

 - A Connection event wakes the Connection, every binding naming it, and the engagement pass.
 - A Secret event wakes every Connection whose kubeconfigSecretRef names it, and the
   engagement pass (a rotated kubeconfig takes effect without a Connection status change).
 - A binding event wakes the binding, the Bindings a ClusterBinding overlaps (they report
   it), its Connection (which installs OpenAPI-sourced CRDs for what bindings list, and
   drains on delete), and the engagement pass (binding readiness decides what is synced).
 - A CRD event wakes the engagement pass and every binding listing that CRD name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kbcore import objects as o
from kbcore.control.kubeconfig import secret_ref
from kbcore.runtime.keys import ENGAGE, BindingKey, ConnectionKey, WorkKey
from kbcore.sync.coverage import api_names, connection_name, lists_api


def connection_key(name: str) -> ConnectionKey:
    return ConnectionKey(name)


def binding_key(binding: Mapping[str, Any]) -> BindingKey:
    return BindingKey(str(binding.get("kind") or ""), o.namespace(binding), o.name(binding))


def keys_for_event(
    kind: str,
    obj: Mapping[str, Any],
    *,
    connections: Iterable[Mapping[str, Any]],
    bindings: Iterable[Mapping[str, Any]],
) -> list[WorkKey]:
    """Keys to enqueue for an event on `obj` of `kind` (Connection, Secret, ClusterBinding,
    Binding or CustomResourceDefinition); `connections`/`bindings` are the cached ones."""
    out: list[WorkKey] = []
    if kind == "Connection":
        name = o.name(obj)
        out.append(connection_key(name))
        out.extend(binding_key(b) for b in bindings if connection_name(b) == name)
        out.append(ENGAGE)
    elif kind == "Secret":
        key = (o.namespace(obj), o.name(obj))
        users = [connection_key(o.name(c)) for c in connections if secret_ref(c)[:2] == key]
        out.extend(users)
        if users:  # a rotated kubeconfig re-engages at once, not at the next resync
            out.append(ENGAGE)
    elif kind in ("ClusterBinding", "Binding"):
        out.append(binding_key({**obj, "kind": kind}))
        if kind == "ClusterBinding":  # Bindings it overlaps say so (BoundByClusterBinding)
            out.extend(
                binding_key(b)
                for b in bindings
                if b.get("kind") == "Binding" and any(lists_api(obj, n) for n in api_names(b))
            )
        if connection_name(obj):
            out.append(connection_key(connection_name(obj)))
        out.append(ENGAGE)
    elif kind == "CustomResourceDefinition":
        out.append(ENGAGE)
        out.extend(binding_key(b) for b in bindings if lists_api(b, o.name(obj)))
    return out
