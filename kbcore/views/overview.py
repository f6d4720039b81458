"""What `kubectl bind status` shows and what `kubectl bind unbind` says will happen.

`status_rows` turns the Connections, ClusterBindings and Bindings into one row each: whether it
is Ready, why not, and which APIs it exports or binds (per API, as the binding's `boundAPIs`
entry says: an API shown bare is one whose objects sync, so a binding that is not Ready can
still show the APIs it syncs next to the one it refused). `unbind_forecast` tells the user, before
a binding is deleted, what the konnector's drain (`kbcore.control.binding`, rule 1) will do with the
objects it covers, using the same coverage rule the drain uses:

 1. Consumer objects holding our `syncer` finalizer, in the binding's scope, that no other live
    binding covers: their provider copies are deleted, except for objects annotated
    `core.kube-bind.io/deletion-policy: Orphan`, whose copies stay on the provider. The consumer
    objects themselves stay (only the finalizer is removed)...
 2. ...unless a ClusterBinding deletes the consumer CRD it installed (no other live binding
    lists the API): then every object of that API on the consumer goes with it.
 3. Objects another live binding covers are left to it.
 4. Related Secrets and ConfigMaps this binding copied are deleted on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.api import conditions as c
from kbcore.api import keys
from kbcore.control.binding import api_is_ready, drained_objects, unbind_uninstalls
from kbcore.schema import policy as schema
from kbcore.status import read_conditions
from kbcore.sync.coverage import api_names, connection_name
from kbcore.sync.instance import is_orphaned

MESSAGE_WIDTH = 60


@attrs.frozen
class Row:
    kind: str
    name: str
    ready: str
    reason: str
    message: str
    apis: str


def ready_condition(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """(status, reason, message) of the object's Ready condition; Unknown without one."""
    status = obj.get("status")
    conds = read_conditions(status.get("conditions") if isinstance(status, Mapping) else None)
    for cond in conds:
        if cond.type == c.READY:
            return str(cond.status), cond.reason, cond.message
    return "Unknown", "", "not reconciled yet (is the konnector running?)"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _exported(conn: Mapping[str, Any]) -> str:
    status = conn.get("status")
    apis = o.list_at(status, "exportedAPIs") if isinstance(status, Mapping) else []
    names = [str(a.get("name")) for a in apis if isinstance(a, Mapping) and a.get("name")]
    return ",".join(names) or "-"


def _bound(binding: Mapping[str, Any]) -> str:
    status = binding.get("status")
    entries = o.list_at(status, "boundAPIs") if isinstance(status, Mapping) else []
    seen: dict[str, str] = {}
    for e in entries:
        if not isinstance(e, Mapping) or not isinstance(e.get("name"), str):
            continue
        # A name alone means its objects sync: the same per-API Ready instance sync asks.
        ready = next((x for x in read_conditions(e.get("conditions")) if x.type == c.READY), None)
        if api_is_ready(e):
            seen[e["name"]] = e["name"]
        else:
            seen[e["name"]] = f"{e['name']}({ready.reason if ready else 'not bound yet'})"
    listed = [seen.get(n, f"{n}(not bound yet)") for n in api_names(binding)]
    return ",".join(listed) or "-"


def status_rows(
    connections: Iterable[Mapping[str, Any]],
    cluster_bindings: Iterable[Mapping[str, Any]],
    bindings: Iterable[Mapping[str, Any]],
    *,
    width: int = MESSAGE_WIDTH,
) -> list[Row]:
    """One row per object: Connections (APIS = exported), then ClusterBindings and Bindings
    (APIS = listed: a name alone is bound and its objects sync, any other carries the reason it
    is not), each sorted by name."""
    rows: list[Row] = []
    for kind, objs in (
        ("Connection", connections),
        ("ClusterBinding", cluster_bindings),
        ("Binding", bindings),
    ):
        for obj in sorted(objs, key=lambda x: (o.namespace(x), o.name(x))):
            ready, reason, message = ready_condition(obj)
            name = f"{o.namespace(obj)}/{o.name(obj)}" if o.namespace(obj) else o.name(obj)
            if o.is_deleting(obj):
                name += " (deleting)"
            if kind == "Connection":
                apis = _exported(obj)
            else:
                apis = _bound(obj)
                message = f"via {connection_name(obj) or '?'}: {message}"
            rows.append(Row(kind, name, ready, reason, _short(message, width), apis))
    return rows


def table(rows: Sequence[Row]) -> list[str]:
    """Rows as aligned text columns, kubectl style."""
    head = ("KIND", "NAME", "READY", "REASON", "MESSAGE", "APIS")
    cells = [head, *((r.kind, r.name, r.ready, r.reason, r.message, r.apis) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head) - 1)]
    return [
        "   ".join(v.ljust(w) for v, w in zip(row[:-1], widths, strict=True)) + "   " + row[-1]
        for row in cells
    ]


# -- unbind ------------------------------------------------------------------------------------


def unbind_forecast(
    binding: Mapping[str, Any],
    *,
    cluster_bindings: Iterable[Mapping[str, Any]],
    bindings: Iterable[Mapping[str, Any]],
    crds: Mapping[str, Mapping[str, Any] | None],
    objects: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[str]:
    """What unbinding `binding` (with its `kind`) will do (module rules), one line per API.

    `crds` is the consumer CRD of each API the binding lists (None if absent); `objects` the
    consumer objects of each API in the binding's scope."""
    kind = str(binding.get("kind") or "ClusterBinding")
    me = (kind, o.key_of(binding))
    others_cb = [
        b for b in cluster_bindings
        if ("ClusterBinding", o.key_of(b)) != me and not o.is_deleting(b)
    ]  # fmt: skip
    others_b = [b for b in bindings if ("Binding", o.key_of(b)) != me and not o.is_deleting(b)]
    conn = connection_name(binding)
    lines: list[str] = []
    for name in api_names(binding):
        crd = crds.get(name)
        items = objects.get(name, ())
        synced = [i for i in items if keys.FINALIZER_SYNCER in o.finalizers(i)]
        mine = drained_objects(name, synced, others_cb, others_b)
        orphans = [i for i in mine if is_orphaned(i)]
        parts: list[str] = []
        if crd is None:
            lines.append(f"{name}: not installed on the consumer; nothing to drain")
            continue
        deleted = len(mine) - len(orphans)
        parts.append(f"{deleted} provider cop{'y' if deleted == 1 else 'ies'} will be deleted")
        if orphans:
            parts.append(
                f"{len(orphans)} kept on the provider ({keys.ANNOTATION_DELETION_POLICY}: "
                f"{keys.DELETION_POLICY_ORPHAN})"
            )
        if len(synced) > len(mine):
            parts.append(f"{len(synced) - len(mine)} left to another binding that covers them")
        drops_crd = schema.created_by(crd, conn) and unbind_uninstalls(
            {**binding, "kind": kind}, name, others_cb, others_b
        )
        if drops_crd:
            parts.append(
                f"then the consumer CRD {name} is deleted, and with it all {len(items)} "
                "object(s) of this API on the consumer"
            )
        else:
            parts.append(f"the {len(items)} consumer object(s) stay")
        lines.append(f"{name}: " + "; ".join(parts))
    spec = binding.get("spec")
    if isinstance(spec, Mapping) and spec.get("relatedResources"):
        lines.append("related Secrets and ConfigMaps this binding copied are deleted")
    return lines
