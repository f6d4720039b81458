"""Storage: the objects of one cluster, the resourceVersion counter and the commit path.

`Store` owns the objects (one dict per storage, keyed by `ObjectKey`, in the storage version's
form), the served resources (built-in and CRD-defined), the cluster-wide resourceVersion and
the write observers. `_commit` is the only place that changes an object: it bumps the
resourceVersion, records the write in the watch `History`, serves what an Established CRD
defines, and tells the observers. Stored dicts are never mutated nor handed out: every write
stores a fresh dict, every answer is a copy (`present`).
"""

from __future__ import annotations

import builtins
import datetime
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.objects import GVR, Obj, ObjectKey
from kbsim import apierrors as errs
from kbsim import fieldsets
from kbsim import schema as crschema
from kbsim.apiserver.watch import Event, History
from kbsim.rbac import User
from kbsim.resources import BUILTINS, ResourceInfo, event_from_core, event_to_core, from_crd


@attrs.frozen
class WriteRecord:
    """One committed write, as given to write observers (objects in storage form).

    `before`/`after` are deep copies made on access (most observers never look), so an
    observer cannot corrupt the store.
    """

    verb: str
    gvr: GVR
    key: ObjectKey
    user: User
    field_manager: str
    subresource: str
    _before: Obj | None = attrs.field(repr=False)
    _after: Obj | None = attrs.field(repr=False)
    rv: str

    @property
    def before(self) -> Obj | None:
        return o.deepcopy(self._before)

    @property
    def after(self) -> Obj | None:
        return o.deepcopy(self._after)


def ensure_meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def same_ignoring_rv(a: Obj, b: Obj) -> bool:
    """JSON equality of two objects, ignoring metadata.resourceVersion (no copies)."""
    if a.keys() != b.keys():
        return False
    for k in a:
        if k != "metadata":
            if not fieldsets.json_equal(a[k], b[k]):
                return False
            continue
        ma, mb = a[k] or {}, b[k] or {}
        keys_a = {x for x in ma if x != "resourceVersion"}
        if keys_a != {x for x in mb if x != "resourceVersion"}:
            return False
        if not all(fieldsets.json_equal(ma[x], mb[x]) for x in keys_a):
            return False
    return True


def condition(ctype: str, status: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Upsert by type; keeps lastTransitionTime when the status did not change."""
    out = [dict(c) for c in conditions]
    for i, cond in enumerate(out):
        if cond.get("type") == new["type"]:
            if cond.get("status") == new["status"]:
                new = {**new, "lastTransitionTime": cond.get("lastTransitionTime")}
            out[i] = new
            return out
    out.append(new)
    return out


def condition_true(obj: Obj, ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
        if isinstance(c, dict)
    )


def canonical(info: ResourceInfo, obj: Obj) -> Obj:
    """Key order as a real server serializes: apiVersion, kind, metadata, then the rest."""
    meta = obj.get("metadata") or {}
    ordered = {k: meta[k] for k in o.OBJECT_META_FIELDS if k in meta}
    ordered.update({k: x for k, x in meta.items() if k not in ordered})
    rest = {k: x for k, x in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": ordered,
        **rest,
    }


def present(
    info: ResourceInfo,
    version: str,
    obj: Obj,
    *,
    in_list: bool = False,
    view: bool = False,
) -> Obj:
    """A stored object in the requested version's form: a deep copy, or with `view=True` a
    cheap read-only view that shares nested values with the store (never mutate it)."""
    out = dict(obj) if view else o.deepcopy(obj)
    if info.group == "events.k8s.io":
        out = event_from_core(out)
    else:
        out["apiVersion"] = info.api_version(version)
    out["kind"] = info.kind
    if not info.builtin:
        schema = info.schema(version)
        out = crschema.default_in_place(crschema.prune(out, schema, share=True), schema)
    out = {
        "apiVersion": out.pop("apiVersion"),
        "kind": out.pop("kind"),
        "metadata": out.pop("metadata", {}),
        **out,
    }
    if in_list and info.builtin:
        del out["apiVersion"], out["kind"]
    return out


def to_storage(info: ResourceInfo, obj: Obj) -> Obj:
    """The storage form of a freshly built object (shares nested values with `obj`)."""
    out = dict(obj)
    if info.group == "events.k8s.io":
        out = event_to_core(out)
    else:
        out["apiVersion"] = info.api_version()
    out["kind"] = info.kind
    return out


WriteObserver = Callable[[WriteRecord], None]


class Store:
    """The objects, the served resources and the commit path (see the module docstring)."""

    def __init__(self, name: str, *, clock: Callable[[], float], seed: int) -> None:
        self.name = name
        self._clock = clock
        self._rng = random.Random(seed)
        self._rv = 0
        self._objects: dict[tuple[str, str], dict[ObjectKey, Obj]] = {}
        self._history = History(present)
        self._observers: builtins.list[WriteObserver] = []
        self._builtin: dict[tuple[str, str], ResourceInfo] = {
            (i.group, i.resource): i for i in BUILTINS
        }
        self._custom: dict[tuple[str, str], ResourceInfo] = {}

    _present = staticmethod(present)
    _to_storage = staticmethod(to_storage)

    def add_write_observer(self, fn: WriteObserver) -> None:
        """`fn(record)` is called after every committed write, in commit order."""
        self._observers.append(fn)

    def current_resource_version(self) -> str:
        """The current cluster-wide resourceVersion (what a list would return)."""
        return str(self._rv)

    def _now(self) -> str:
        t = datetime.datetime.fromtimestamp(self._clock(), tz=datetime.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _resolve(self, gvr: GVR) -> tuple[ResourceInfo, str]:
        info = self._builtin.get((gvr.group, gvr.resource)) or self._custom.get(
            (gvr.group, gvr.resource)
        )
        if info is None or gvr.version not in info.versions:
            raise errs.resource_not_found()
        return info, gvr.version

    def _store(self, info: ResourceInfo) -> dict[ObjectKey, Obj]:
        return self._objects.setdefault(info.storage, {})

    @staticmethod
    def _check_scope(info: ResourceInfo, key: ObjectKey) -> None:
        if info.namespaced != bool(key.namespace):
            raise errs.resource_not_found()

    def _commit(
        self,
        info: ResourceInfo,
        key: ObjectKey,
        before: Obj | None,
        after: Obj | None,
        *,
        verb: str,
        user: User,
        field_manager: str = "",
        subresource: str = "",
        version: str = "",
    ) -> Obj:
        """Store `after` (None = remove) at a new resourceVersion; returns the stored object
        (for a removal: the last state, carrying the deletion's resourceVersion)."""
        self._rv += 1
        rv = str(self._rv)
        store = self._store(info)
        if after is None:
            assert before is not None
            result = o.deepcopy(before)
            ensure_meta(result)["resourceVersion"] = rv
            del store[key]
            event = Event(self._rv, info.storage, "DELETED", key, result, before)
        else:
            ensure_meta(after)["resourceVersion"] = rv
            result = canonical(info, after)
            store[key] = result
            kind = "ADDED" if before is None else "MODIFIED"
            event = Event(self._rv, info.storage, kind, key, result, before)
        self._history.events.append(event)
        if info.storage == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._sync_served(before, after)
        self._history.offer(event)
        record = WriteRecord(
            verb,
            info.gvr(version),
            key,
            user,
            field_manager,
            subresource,
            before,
            result if after is not None else None,
            rv,
        )
        for observer in list(self._observers):
            observer(record)
        return result

    def _sync_served(self, before: Obj | None, after: Obj | None) -> None:
        """Serve, re-serve or stop serving the resource a CRD defines."""
        old = from_crd(before) if before and condition_true(before, "Established") else None
        new = from_crd(after) if after and condition_true(after, "Established") else None
        if old is not None and (
            new is None or (new.group, new.resource) != (old.group, old.resource)
        ):
            self._custom.pop((old.group, old.resource), None)
            self._history.stop_serving(old.storage)
        if new is not None:
            self._custom[(new.group, new.resource)] = new
            self._history.serve(new)

    def _state_at(self, info: ResourceInfo, rv: int) -> dict[ObjectKey, Obj]:
        return self._history.state_at(info.storage, self._store(info), rv, self._rv)

    def _crd_info(self) -> ResourceInfo:
        return self._builtin[("apiextensions.k8s.io", "customresourcedefinitions")]

    def _namespaced_infos(self) -> builtins.list[ResourceInfo]:
        seen: set[tuple[str, str]] = set()
        out: builtins.list[ResourceInfo] = []
        for info in [*self._builtin.values(), *self._custom.values()]:
            if info.namespaced and info.storage not in seen:
                seen.add(info.storage)
                out.append(info)
        return sorted(out, key=lambda i: i.storage)

    def _all_objects(self) -> builtins.list[tuple[ResourceInfo, ObjectKey, Obj]]:
        out: builtins.list[tuple[ResourceInfo, ObjectKey, Obj]] = []
        seen: set[tuple[str, str]] = set()
        for info in sorted(
            [*self._builtin.values(), *self._custom.values()], key=lambda i: (i.group, i.resource)
        ):
            if info.storage in seen:
                continue
            seen.add(info.storage)
            out += [(info, k, o) for k, o in sorted(self._store(info).items())]
        return out

    def _owner_info(self, ref: Mapping[str, Any]) -> ResourceInfo | None:
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        for info in [*self._builtin.values(), *self._custom.values()]:
            if info.group == group and info.kind == ref.get("kind"):
                return info
        return None
