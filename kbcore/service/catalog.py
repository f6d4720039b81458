"""The issuer's word on the catalog: which Exports and Collections are in effect.

An Export lists provider CRDs by `<resource>.<group>`; a Collection lists Exports by name. The
issuer writes their `Ready` condition, and a catalog shows only what is Ready. Rules:

 1. `plan_export`: GET each listed API's CRD on the provider. Every one exists (and is not being
    deleted): `Ready=True/AsExpected`; else `Ready=False/APINotExported` naming the missing
    ones, sorted. An Export listing no well-formed API (a hostile or hand-edited body the CRD
    schema would refuse) names none and is not Ready.
 1a. A listed CRD that is cluster-scoped (`spec.scope: Cluster`): `Ready=False/ClusterScopedAPI`
    naming those APIs, sorted (after rule 1's missing ones: a missing CRD is reported first).
    Every consumer of an Export is a tenant, and a tenant's konnector refuses cluster-scoped
    APIs (their objects have no namespace to confine), so such an Export is hidden from the
    catalog (rule 4) and no Grant is issued for it (`kbcore.service.issuer` rule 5).
 2. `plan_collection`: GET each listed Export. Every one exists: `Ready=True/AsExpected`; else
    `Ready=False/ExportNotFound` naming the missing ones.
 3. Status is written only when it differs (`status_update`); other status fields are kept.
 4. `visible_exports`: a catalog lists only Exports that are Ready and not being deleted.
 5. A failed read is raised as its `ApiError` (the shell retries; nothing is written from a
    guess).

Laws (tests/unit/service/test_catalog.py): Ready is True exactly when no listed API is missing;
a plan carried out is followed by an empty one; the only write is the object's own status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import PROVIDER, Plan, plan_or_ask
from kbcore.api.resources import COLLECTIONS, CRDS, EXPORTS
from kbcore.api.service_conditions import ServiceConditionType as T
from kbcore.api.service_conditions import ServiceReason as R
from kbcore.api.types import RelatedResourceKind, SyncDirection
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, Observed, need_all
from kbcore.status import Conditions, condition_is_true, status_update
from kbcore.timestamps import rfc3339
from kbcore.views.rbac import RelatedAccess


@attrs.frozen
class ExportView:
    """An Export (from a cache) and the reads `plan_export` asked for: the listed CRDs."""

    export: o.Obj
    observed: Observed
    now: float


@attrs.frozen
class CollectionView:
    """A Collection (from a cache) and the reads `plan_collection` asked for: the Exports."""

    collection: o.Obj
    observed: Observed
    now: float


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def export_apis(export: Mapping[str, Any]) -> tuple[str, ...]:
    """The API names (`<resource>.<group>`, the CRD names) an Export lists, deduplicated and
    sorted; malformed entries are skipped."""
    names: set[str] = set()
    for entry in o.list_at(_spec(export), "apis"):
        if not isinstance(entry, Mapping):
            continue
        group, resource = entry.get("group"), entry.get("resource")
        if isinstance(group, str) and isinstance(resource, str) and group and resource:
            names.add(f"{resource}.{group}")
    return tuple(sorted(names))


def export_related(export: Mapping[str, Any] | None) -> tuple[RelatedAccess, ...]:
    """The kinds and directions of an Export's `relatedResources` (what a tenant's RBAC must
    allow, `rbac.related_rules`), deduplicated and sorted; malformed entries are skipped."""
    found: set[RelatedAccess] = set()
    for entry in o.list_at(_spec(export or {}), "relatedResources"):
        if not isinstance(entry, Mapping) or entry.get("group", "") not in ("", None):
            continue
        resource, direction = entry.get("resource"), entry.get("direction")
        if resource in {k.value for k in RelatedResourceKind} and direction in {
            d.value for d in SyncDirection
        }:
            found.add(RelatedAccess(str(resource), str(direction)))
    return tuple(sorted(found, key=lambda r: (r.resource, r.direction)))


def collection_exports(collection: Mapping[str, Any]) -> tuple[str, ...]:
    """The Export names a Collection lists, deduplicated and sorted."""
    items = o.list_at(_spec(collection), "exports")
    return tuple(sorted({e for e in items if isinstance(e, str) and e}))


def plan_export(view: ExportView) -> Plan:
    return plan_or_ask(lambda: _plan_listed(view.export, EXPORTS, view, export_apis, CRDS))


def plan_collection(view: CollectionView) -> Plan:
    return plan_or_ask(
        lambda: _plan_listed(view.collection, COLLECTIONS, view, collection_exports, EXPORTS)
    )


def _plan_listed(
    obj: o.Obj,
    gvr: GVR,
    view: ExportView | CollectionView,
    listed: Callable[[o.Obj], tuple[str, ...]],
    target: GVR,
) -> Plan:
    """Rules 1 to 3 for either kind: every listed name must exist as a `target` object."""
    if o.is_deleting(obj):
        return Plan(why="deleting")
    names = listed(obj)
    reads = tuple(Get(PROVIDER, target, ObjectKey("", n)) for n in names)
    missing, cluster_scoped = [], []
    for name, got in zip(names, need_all(view.observed, reads), strict=True):
        if isinstance(got, Failed):
            raise got.error
        if not isinstance(got, dict) or o.is_deleting(got):
            missing.append(name)
        elif gvr == EXPORTS and _spec(got).get("scope") == "Cluster":
            cluster_scoped.append(name)
    status = obj.get("status")
    status = dict(status) if isinstance(status, Mapping) else {}
    conds = Conditions(status.get("conditions"), o.generation(obj), rfc3339(view.now))
    what = "API" if gvr == EXPORTS else "Export"
    if gvr == EXPORTS:
        reason = R.API_NOT_EXPORTED
        gone = f"no CRD on the provider for: {', '.join(missing)}"
    else:
        reason = R.EXPORT_NOT_FOUND
        gone = f"no such Export: {', '.join(missing)}"
    if not names:
        conds.set(T.READY, False, reason, f"lists no {what}")
    elif missing:
        conds.set(T.READY, False, reason, gone)
    elif cluster_scoped:
        conds.set(
            T.READY,
            False,
            R.CLUSTER_SCOPED_API,
            f"cluster-scoped, a tenant cannot bind them: {', '.join(cluster_scoped)}",
        )
    else:
        conds.set(T.READY, True, R.AS_EXPECTED, f"every listed {what} exists")
    status["conditions"] = conds.to_json()
    update = status_update(obj, ObjectRef(PROVIDER, gvr, ObjectKey("", o.name(obj))), status)
    return Plan((update,) if update else (), why="ready" if conds.is_true(T.READY) else "missing")


def export_ready(export: Mapping[str, Any] | None) -> bool:
    """An Export a catalog shows and a Grant may be issued for (rule 4)."""
    return export is not None and not o.is_deleting(export) and condition_is_true(export, T.READY)


def visible_exports(exports: Iterable[o.Obj]) -> list[o.Obj]:
    """The Exports a catalog lists (rule 4), in the order given."""
    return [e for e in exports if export_ready(e)]
