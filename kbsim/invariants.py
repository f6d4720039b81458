"""Safety invariants, checked on every write the konnector makes in the simulated world.

The monitor sees each write with the object's state before and after it (the API server's write
record) and judges it against the truth of the whole world at that instant, not against what
the konnector believed. A violation is recorded with the time and the write; a run with any
violation fails.

- `no-foreign-provider-writes`: the konnector never updates or deletes a provider object it does
  not own (both ownership markers ours, the object marker naming the live consumer object), except
  adopting a marker-less object under conflictPolicy Adopt.
- `finalizer-held-while-provider-copy-exists`: the konnector never removes its syncer finalizer
  from a consumer object while a provider copy owned by that object exists, unless Orphan.
- `writes-within-bound-scope`: the konnector writes only objects of bound APIs (and, on the
  provider, namespaces those objects live in; on the consumer, Events), and Secrets and
  ConfigMaps only as related copies (marked) or as finalizers on kubeconfig Secrets.
- `spec-up-status-down`: a konnector write never changes a consumer object's spec, and never
  writes a provider object's status.
- `no-self-binding`: the konnector never sends a provider-side write (any action the kernel
  addressed to the provider) to the consumer cluster itself, as it would through a Connection
  whose kubeconfig points back at the consumer. Checked on the request, so a write the server
  then refuses counts too.
- `related-within-trust-boundary` (`kbcore.control.related` T1-T6, restated here from the world's
  side rather than imported, so a broken kernel cannot also break its judge): the konnector never
  creates a consumer namespace (T5); a related copy it creates or updates, on either side, is
  never in a `kube-*` namespace or the konnector's namespace (T2), never named `kube-*` (T3),
  never a Secret of a type other than the data types (T4), and belongs to a binding that exists;
  its namespace is one the binding syncs objects in (T1): a Binding's own, or for a
  ClusterBinding one where a consumer object of a bound namespaced API, not being deleted,
  lives — in the world now or as the konnector may have read it (the snapshot of an active
  stale-reads fault on the consumer: a copy made from a read just before the last object went
  is what the truth allows). On the provider, the consumer source of a copy (now, or in that
  snapshot) is selected by an explicit selector of one of the binding's FromConsumer rules of
  that kind (T6). Deletes of copies are always allowed (they only take data away).
- `consumer-crd-immutable-fields`: a consumer CRD write the konnector *sends* (judged before the
  API server answers, against the live CRD it would change: most such writes are refused, and
  the point is that the konnector never tries) never changes `spec.group`, `spec.scope` or
  `spec.names` plural, kind, singular or listKind, and never leaves a version of the CRD's
  `status.storedVersions` unserved.
- `bound-hash-was-written`: a binding status the konnector writes records as an API's `crdHash`
  only a hash its consumer CRD has carried (schema-hash annotation, else the hash of its spec),
  never the hash of a write that has not landed.
- `instance-scope-matches-provider`: no konnector write of an instance lands on the provider
  while the provider's CRD for that API has another scope than the consumer's (objects of
  different consumer namespaces would collide in one cluster-scoped object, or the reverse).
- `kernel-never-raises`: handling a work-queue key never raises: the kernel (planners, worker)
  is total on whatever the clusters hold, and the simulated shell around it is too. kbsim logs
  the exception and retries the key with backoff, as kbshell does, so the run goes on and the
  violation names the key and the exception.
- `schemas-within-depth`: the konnector never writes a consumer CRD whose schema nests deeper
  than `kbcore.limits.MAX_SCHEMA_DEPTH` (what it cannot install it refuses, with a condition).
- `writes-within-server-limits`: no konnector request is refused for its size (413) or its
  depth (400 from the JSON decoder): a body an API server cannot read is reported on the object
  (`kbcore.sync.instance` rule 7), never sent and retried.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kbcore import limits, selectors
from kbcore import objects as o
from kbcore.actions import PROVIDER
from kbcore.api import keys
from kbcore.api.resources import (
    BINDINGS,
    CLUSTERBINDINGS,
    CONFIGMAPS,
    CONNECTIONS,
    CRDS,
    LEASES,
    NAMESPACES,
    SECRETS,
)
from kbcore.api.types import ConflictPolicy
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.observe import connection_mapper
from kbcore.schema.crds import served_resource
from kbcore.schema.policy import schema_hash
from kbcore.sync.coverage import resolve_coverage
from kbcore.sync.instance import Ownership, classify
from kbcore.sync.mapper import IDENTITY, Mapper
from kbsim.patch import merge_patch

if TYPE_CHECKING:
    from kbcore.runtime.requests import Request
    from kbsim.world import World

INVARIANTS = (
    "no-foreign-provider-writes",
    "finalizer-held-while-provider-copy-exists",
    "writes-within-bound-scope",
    "spec-up-status-down",
    "no-self-binding",
    "related-within-trust-boundary",
    "consumer-crd-immutable-fields",
    "bound-hash-was-written",
    "instance-scope-matches-provider",
    "kernel-never-raises",
    "schemas-within-depth",
    "writes-within-server-limits",
)
TRUST = "related-within-trust-boundary"

DATA_SECRET_TYPES = (
    "",
    "Opaque",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/tls",
    "kubernetes.io/dockercfg",
    "kubernetes.io/dockerconfigjson",
)
"""The Secret types a related copy may have (T4)."""


def _marked(obj: Mapping[str, Any]) -> bool:
    return o.labels_of(obj).get(keys.LABEL_MANAGED) == "true"


def _only_metadata_changed(rec: Any, fields: tuple[str, ...]) -> bool:
    before, after = rec.before, rec.after
    if before is None or after is None:
        return False
    strip = ("resourceVersion", "managedFields", "generation", *fields)

    def rest(x: Mapping[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in o.metadata(x).items() if k not in strip}
        return {**x, "metadata": meta}

    return o.json_equal(rest(before), rest(after))


def _control_write_ok(gvr: GVR, rec: Any) -> bool:
    """Writes the control plane may make outside bound APIs: finalizers on kubeconfig Secrets,
    related copies, CRDs it installs, namespaces and heartbeat Leases it creates — each only on
    objects carrying our markers (or, for finalizers and CRD markers, metadata only)."""
    before, after = rec.before, rec.after
    if gvr == SECRETS and _only_metadata_changed(rec, ("finalizers", "deletionTimestamp")):
        return True
    if gvr == SECRETS and rec.verb != "delete" and after is None and before is not None:
        return o.is_deleting(before)  # the last finalizer released: the server removed it
    if gvr == CRDS and _only_metadata_changed(rec, ("labels", "annotations")):
        # pullPolicy None: markers stamped on a CRD the user manages; nothing of theirs removed.
        return all(
            set(of(before).items()) <= set(of(after).items())
            for of in (o.labels_of, o.annotations_of)
        )
    if gvr == NAMESPACES:
        return rec.verb == "create" and after is not None and _marked(after)
    if gvr in (SECRETS, CONFIGMAPS):
        ok = [x for x in (before, after) if x is not None]
        return all(
            _marked(x) and o.annotations_of(x).get(keys.ANNOTATION_RELATED_BINDING) for x in ok
        )
    if gvr == CRDS:
        return all(
            _marked(x) and o.annotations_of(x).get(keys.ANNOTATION_CONNECTION)
            for x in (before, after)
            if x is not None
        )
    if gvr == LEASES:
        return all(
            o.annotations_of(x).get(keys.ANNOTATION_CONSUMER_CLUSTER_UID)
            for x in (before, after)
            if x is not None
        )
    return False


def _schema_too_deep(crd: Mapping[str, Any]) -> bool:
    spec = crd.get("spec")
    for v in o.list_at(spec, "versions") if isinstance(spec, dict) else []:
        schema = v.get("schema") if isinstance(v, dict) else None
        root = schema.get("openAPIV3Schema") if isinstance(schema, dict) else None
        if limits.json_depth(root, limits.MAX_SCHEMA_DEPTH) > limits.MAX_SCHEMA_DEPTH:
            return True
    return False


EVENTS = ("events",)
BINDING_RESOURCES = ("clusterbindings", "bindings")


def _mapping_at(obj: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    """`obj[field]` when it is an object, else {} (fields written by others may hold anything)."""
    value = obj.get(field)
    return value if isinstance(value, Mapping) else {}


def _carried_hash(crd: Mapping[str, Any]) -> str:
    """The hash a consumer CRD carries: its schema-hash annotation, else that of its spec."""
    return o.annotations_of(crd).get(keys.ANNOTATION_SCHEMA_HASH) or schema_hash(
        _mapping_at(crd, "spec")
    )


def _addressing(crd: Mapping[str, Any]) -> dict[str, str]:
    """What addresses a CRD's objects, with the server's defaults for singular and listKind."""
    spec = _mapping_at(crd, "spec")
    names = _mapping_at(spec, "names")
    kind = str(names.get("kind") or "")
    return {
        "spec.group": str(spec.get("group") or ""),
        "spec.scope": str(spec.get("scope") or ""),
        "spec.names.plural": str(names.get("plural") or ""),
        "spec.names.kind": kind,
        "spec.names.singular": str(names.get("singular") or kind.lower()),
        "spec.names.listKind": str(names.get("listKind") or (kind + "List" if kind else "")),
    }


def crd_change_problem(live: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """Why turning `live` into `after` breaks `consumer-crd-immutable-fields`, or ''."""
    old, new = _addressing(live), _addressing(after)
    for field, value in old.items():
        if new[field] != value:
            return f"changes {field} from {value!r} to {new[field]!r}"
    spec = _mapping_at(after, "spec")
    served = {
        v.get("name")
        for v in spec.get("versions") or []
        if isinstance(v, dict) and v.get("served") is True
    }
    stored = (live.get("status") or {}).get("storedVersions") or []
    lost = [v for v in stored if v not in served]
    return f"leaves stored version(s) {', '.join(map(str, lost))} unserved" if lost else ""


def _is_related_write(rec: Any) -> bool:
    """A create or update that leaves a related copy (a delete only takes data away)."""
    after = rec.after
    return (
        rec.verb != "delete"
        and after is not None
        and not o.is_deleting(after)
        and bool(o.annotations_of(after).get(keys.ANNOTATION_RELATED_BINDING))
    )


class Monitor:
    def __init__(self, world: World) -> None:
        self.world = world
        self.consumer_cluster = ""
        self.violations: list[tuple[str, str]] = []
        self.crd_hashes: dict[str, set[str]] = {}
        """Every hash each consumer CRD has carried, by CRD name (`bound-hash-was-written`)."""

    def held(self) -> dict[str, str]:
        out = {name: "held" for name in INVARIANTS}
        for name, message in self.violations:
            if out[name] == "held":
                out[name] = message
        return out

    def on_worker_exception(self, key: str, error: BaseException) -> None:
        """`kernel-never-raises`: handling `key` raised `error`."""
        text = str(error).splitlines()[0][:200] if str(error) else ""
        self._violate("kernel-never-raises", f"{key}: {type(error).__name__}: {text}")

    def on_refused_request(self, cluster: str, what: str, error: ApiError) -> None:
        """`writes-within-server-limits`: a konnector request was answered `error`."""
        too_deep = error.code == 400 and (
            "exceeded max depth" in error.message or error.message == "Invalid JSON Patch"
        )
        if error.code == 413 or too_deep:
            message = f"{what} on {cluster}: {error.code} {error.message[:160]}"
            self._violate("writes-within-server-limits", message)

    def _violate(self, name: str, message: str) -> None:
        self.violations.append((name, f"{self.world.now - 1_767_225_600.0:.3f}s: {message}"))

    # -- the world's truth ---------------------------------------------------------------------
    def _consumer(self) -> Any:
        return self.world.clusters[self.consumer_cluster]

    def _local_uid(self) -> str:
        ns = self._consumer().get(NAMESPACES, ObjectKey("", "kube-system"))
        return o.uid(ns)

    def _bound(self) -> dict[GVR, str]:
        """Bound API GVRs -> their group-resource, from the consumer's bindings and CRDs."""
        consumer = self._consumer()
        crds = {o.name(c): c for c in consumer.list(CRDS)[0]}
        out: dict[GVR, str] = {}
        for b in self._bindings()[0] + self._bindings()[1]:
            for api in (b.get("spec") or {}).get("apis") or []:
                crd = crds.get(api.get("name", "")) if isinstance(api, Mapping) else None
                served = served_resource(crd) if crd is not None else None
                if served is None or crd is None:
                    continue
                # Every served version: a syncer started at the old storage version may
                # still write through it while a schema update moves the storage version.
                for v in crd["spec"].get("versions") or []:
                    if isinstance(v, Mapping) and v.get("served") is True:
                        gvr = GVR(served.gvr.group, str(v.get("name")), served.gvr.resource)
                        out[gvr] = served.gvr.group_resource
        return out

    def _bindings(self) -> tuple[list[o.Obj], list[o.Obj]]:
        consumer = self._consumer()
        cbs = consumer.list(CLUSTERBINDINGS)[0]
        bs = consumer.list(BINDINGS)[0]
        return cbs, bs

    def _mapper(self) -> Mapper:
        """The consumer's Connection's mapper (a tenant's namespaces, or the same keys)."""
        try:
            connections = self._consumer().list(CONNECTIONS)[0]
        except Exception:
            return IDENTITY
        mappers = {connection_mapper(c) for c in connections}
        return mappers.pop() if len(mappers) == 1 else IDENTITY

    # -- the check ---------------------------------------------------------------------------
    def on_request(self, cluster: str, request: Request) -> None:
        """A write the konnector is about to send to `cluster` (before faults or the server
        see it): `no-self-binding`, and `consumer-crd-immutable-fields` (the API server refuses
        most such writes, so judging only the writes that land would miss them)."""
        if request.cluster == PROVIDER and cluster == self.consumer_cluster:
            self._violate(
                "no-self-binding",
                f"provider-side {request.verb} of {request.gvr} {request.key} sent to the "
                f"consumer cluster {cluster} itself",
            )
        r = request
        if cluster != self.consumer_cluster or r.gvr != CRDS or r.subresource:
            return
        if r.verb not in ("update", "patch") or not isinstance(r.body, dict):
            return
        actor, self.world.actor = self.world.actor, "monitor"
        try:
            live = self._consumer().get(CRDS, r.key)
        except Exception:
            return  # absent: the write fails, nothing changes
        finally:
            self.world.actor = actor
        sent_rv = o.resource_version(r.body)
        if sent_rv and sent_rv != o.resource_version(live):
            return  # a stale precondition: the server answers 409 and changes nothing
        after = r.body if r.verb == "update" else merge_patch(o.deepcopy(live), r.body)
        problem = crd_change_problem(live, after) if isinstance(after, dict) else ""
        if problem:
            self._violate(
                "consumer-crd-immutable-fields",
                f"{r.verb} of consumer CRD {r.key.name} {problem}",
            )

    def _record_crd(self, cluster: str, rec: Any) -> None:
        if cluster == self.consumer_cluster and rec.gvr == CRDS and rec.after is not None:
            self.crd_hashes.setdefault(rec.key.name, set()).add(_carried_hash(rec.after))

    def on_write(self, cluster: str, rec: Any) -> None:
        self._record_crd(cluster, rec)
        if self.world.actor != "konnector" or not self.consumer_cluster:
            return
        # The monitor reads the truth: its own reads must not meet the konnector's faults.
        self.world.actor = "monitor"
        try:
            if cluster == self.consumer_cluster:
                self._check_consumer_write(rec)
            else:
                self._check_provider_write(cluster, rec)
        finally:
            self.world.actor = "konnector"

    # -- the trust boundary of related copies -----------------------------------------------
    def _konnector_namespace(self) -> str:
        return str(getattr(self.world.konnector, "namespace", "") or "")

    def _consumer_states(self) -> list[Any]:
        """How the consumer's objects may look to the konnector now: the world, and the snapshot
        an active stale-reads fault serves (`list(gvr, namespace) -> items`)."""
        consumer = self._consumer()
        states: list[Any] = [lambda gvr, ns: consumer.list(gvr, ns)[0]]
        rv = self.world.stale_snapshot(self.consumer_cluster)
        if rv is not None:
            states.append(lambda gvr, ns: consumer.list_at(gvr, ns, rv)[0])
        return states

    def _binding_with_uid(self, uid: str) -> o.Obj | None:
        cbs, bs = self._bindings()
        return next((b for b in [*cbs, *bs] if uid and o.uid(b) == uid), None)

    def _bound_namespaced(self, binding: Mapping[str, Any]) -> list[GVR]:
        crds = {o.name(c): c for c in self._consumer().list(CRDS)[0]}
        out = []
        for api in (binding.get("spec") or {}).get("apis") or []:
            crd = crds.get(api.get("name", "")) if isinstance(api, Mapping) else None
            served = served_resource(crd) if crd is not None else None
            if served is not None and served.namespaced:
                out.append(served.gvr)
        return out

    def _synced(self, binding: Mapping[str, Any], namespace: str) -> bool:
        """T1: `namespace` is one `binding` syncs objects in, as the truth allows."""
        if binding.get("kind") == "Binding" or o.namespace(binding):
            return namespace == o.namespace(binding)
        for state in self._consumer_states():
            for gvr in self._bound_namespaced(binding):
                try:
                    items = state(gvr, namespace)
                except Exception:
                    continue
                if any(not o.is_deleting(i) for i in items):
                    return True
        return False

    def _selected_upload(self, binding: Mapping[str, Any], gvr: GVR, key: ObjectKey) -> bool:
        """T6: the consumer source at `key` (now or as the konnector may have read it) is
        selected by an explicit selector of a FromConsumer rule of `binding` for `gvr`."""
        sources = []
        for state in self._consumer_states():
            try:
                sources += [x for x in state(gvr, key.namespace) if o.name(x) == key.name]
            except Exception:
                continue
        for r in (binding.get("spec") or {}).get("relatedResources") or []:
            if not isinstance(r, Mapping) or r.get("direction") != "FromConsumer":
                continue
            if r.get("resource") != gvr.resource or (r.get("group") or ""):
                continue
            sel = _mapping_at(r, "selector")
            names = sel.get("names") or []
            ls = _mapping_at(sel, "labelSelector")
            requirements = bool(ls.get("matchLabels")) or bool(ls.get("matchExpressions"))
            if not names and not requirements:
                continue  # no explicit selector: selects nothing that may be uploaded
            try:
                parsed = selectors.from_label_selector(dict(ls))
            except ValueError:
                continue
            for src in sources:
                if (not names or o.name(src) in names) and parsed.matches(o.labels_of(src)):
                    return True
        return False

    def _check_related_copy(self, side: str, rec: Any) -> None:
        """T1-T4 and T6 for a related copy the konnector creates or updates on `side`."""
        after, key = rec.after, rec.key
        what = f"{rec.verb} of {side} {rec.gvr.resource} {key}"
        ns, name = key.namespace, key.name
        if ns.startswith("kube-") or ns == self._konnector_namespace():
            self._violate(TRUST, f"{what}: a related copy in namespace {ns} (T2)")
        if name.startswith("kube-"):
            self._violate(TRUST, f"{what}: a related copy named {name} (T3)")
        if rec.gvr == SECRETS and (after.get("type") or "") not in DATA_SECRET_TYPES:
            self._violate(TRUST, f"{what}: a related copy of type {after.get('type')} (T4)")
        uid = o.annotations_of(after).get(keys.ANNOTATION_RELATED_BINDING, "")
        binding = self._binding_with_uid(uid)
        if binding is None:
            self._violate(TRUST, f"{what}: a related copy for binding uid {uid}, which is gone")
            return
        if not self._synced(binding, ns):
            self._violate(
                TRUST,
                f"{what}: a related copy in namespace {ns}, where binding {o.name(binding)} "
                "syncs no object (T1)",
            )
        if side != "consumer" and not self._selected_upload(binding, rec.gvr, key):
            self._violate(
                TRUST,
                f"{what}: uploaded a consumer object no explicit FromConsumer selector of "
                f"binding {o.name(binding)} selects (T6)",
            )

    def _check_consumer_write(self, rec: Any) -> None:
        gvr: GVR = rec.gvr
        if gvr.group == keys.GROUP and gvr.resource in BINDING_RESOURCES:
            return self._check_bound_hashes(rec)
        if gvr.resource in EVENTS or gvr.group == keys.GROUP:
            return
        if gvr == NAMESPACES and rec.verb == "create":
            self._violate(TRUST, f"created consumer namespace {rec.key.name} (T5)")
            return
        if gvr in (SECRETS, CONFIGMAPS) and _is_related_write(rec):
            self._check_related_copy("consumer", rec)
        if gvr == CRDS and rec.after is not None and _schema_too_deep(rec.after):
            self._violate("schemas-within-depth", f"{rec.verb} consumer CRD {rec.key}")
        if gvr in (SECRETS, CONFIGMAPS, CRDS, NAMESPACES, LEASES):
            if not _control_write_ok(gvr, rec):
                self._violate("writes-within-bound-scope", f"{rec.verb} consumer {gvr} {rec.key}")
            return
        if gvr not in self._bound():
            self._violate("writes-within-bound-scope", f"{rec.verb} consumer {gvr} {rec.key}")
            return
        before, after = rec.before, rec.after
        if (
            before is not None
            and after is not None
            and not o.json_equal(before.get("spec"), after.get("spec"))
        ):
            self._violate("spec-up-status-down", f"consumer spec of {gvr} {rec.key} changed")
        if before is None or keys.FINALIZER_SYNCER not in o.finalizers(before):
            return
        if after is not None and keys.FINALIZER_SYNCER in o.finalizers(after):
            return
        ann = o.annotations_of(before)
        if ann.get(keys.ANNOTATION_DELETION_POLICY) == keys.DELETION_POLICY_ORPHAN:
            return
        pkey = self._mapper().to_provider(gvr, rec.key)
        for name, server in self.world.clusters.items():
            if name == self.consumer_cluster:
                continue
            try:
                copy = server.get(gvr, pkey)
            except Exception:
                continue
            if classify(copy, self._local_uid(), o.uid(before)) is Ownership.OURS:
                self._violate(
                    "finalizer-held-while-provider-copy-exists",
                    f"finalizer removed from consumer {gvr} {rec.key} while {name} holds "
                    f"its copy (uid {o.uid(copy)})",
                )

    def _check_bound_hashes(self, rec: Any) -> None:
        """`bound-hash-was-written`, on a binding write that changes its status."""
        before, after = rec.before or {}, rec.after
        if after is None or before.get("status") == after.get("status"):
            return
        status = after.get("status")
        entries = status.get("boundAPIs") if isinstance(status, dict) else None
        for e in entries if isinstance(entries, list) else []:
            name, recorded = (e.get("name"), e.get("crdHash")) if isinstance(e, dict) else ("", "")
            if not recorded or not isinstance(name, str):
                continue
            carried = set(self.crd_hashes.get(name, ()))
            with contextlib.suppress(Exception):  # written before the monitor watched
                carried.add(_carried_hash(self._consumer().get(CRDS, ObjectKey("", name))))
            if recorded not in carried:
                self._violate(
                    "bound-hash-was-written",
                    f"{o.name(after)} records crdHash {recorded} for {name}, which its consumer "
                    f"CRD never carried (it carried {sorted(carried) or 'nothing'})",
                )

    def _check_scope(self, cluster: str, rec: Any, group_resource: str) -> None:
        """`instance-scope-matches-provider`, on a provider instance write that landed."""
        try:
            mine = self._consumer().get(CRDS, ObjectKey("", group_resource))
            theirs = self.world.clusters[cluster].get(CRDS, ObjectKey("", group_resource))
        except Exception:
            return
        ours, provider = (x.get("spec", {}).get("scope") for x in (mine, theirs))
        if ours != provider:
            self._violate(
                "instance-scope-matches-provider",
                f"{rec.verb} of {cluster} {rec.gvr} {rec.key}: {group_resource} is {ours} on "
                f"the consumer and {provider} on {cluster}",
            )

    def _check_provider_write(self, cluster: str, rec: Any) -> None:
        gvr: GVR = rec.gvr
        bound = self._bound()
        if gvr in (SECRETS, CONFIGMAPS) and _is_related_write(rec):
            self._check_related_copy(cluster, rec)
        if gvr in (SECRETS, CONFIGMAPS, LEASES):
            if not _control_write_ok(gvr, rec):
                self._violate("no-foreign-provider-writes", f"{rec.verb} {cluster} {gvr} {rec.key}")
            return
        if gvr == NAMESPACES:
            if rec.after is not None and _marked(rec.after) and rec.verb == "create":
                return  # the heartbeat or a related copy's namespace, created by us
            return self._check_namespace(cluster, rec, bound)
        if gvr not in bound:
            self._violate("writes-within-bound-scope", f"{rec.verb} {cluster} {gvr} {rec.key}")
            return
        self._check_scope(cluster, rec, bound[gvr])
        if rec.subresource == "status" or (
            rec.before is not None
            and rec.after is not None
            and not o.json_equal(rec.before.get("status"), rec.after.get("status"))
        ):
            self._violate("spec-up-status-down", f"{cluster} status of {gvr} {rec.key} written")
        before = rec.before
        if before is None:
            return
        ckey = self._mapper().to_consumer(gvr, rec.key)
        consumer_obj = None
        if ckey is not None:
            try:
                consumer_obj = self._consumer().get(gvr, ckey)
            except Exception:
                consumer_obj = None
        local = self._local_uid()
        ownership = classify(before, local, o.uid(consumer_obj) if consumer_obj else "")
        if ownership is Ownership.OURS:
            return
        if ownership is Ownership.FOREIGN_UNMANAGED and consumer_obj is not None:
            cbs, bs = self._bindings()
            coverage = resolve_coverage(
                bound[gvr], ckey.namespace if ckey else "", cbs, bs, lambda _b: True
            )
            if coverage.conflict_policy == ConflictPolicy.ADOPT and rec.verb != "delete":
                return
        self._violate(
            "no-foreign-provider-writes",
            f"{rec.verb} of {cluster} {gvr} {rec.key} which is {ownership.value} "
            f"(markers {dict(o.annotations_of(before))})",
        )

    def _check_namespace(self, cluster: str, rec: Any, bound: dict[GVR, str]) -> None:
        if rec.verb == "delete":
            return self._check_namespace_delete(cluster, rec)
        if rec.verb != "create":
            self._violate("writes-within-bound-scope", f"{rec.verb} of {cluster} namespace")
            return
        mapper = self._mapper()
        for gvr in bound:
            try:
                items = self._consumer().list(gvr)[0]
            except Exception:
                continue
            for item in items:
                if mapper.to_provider(gvr, o.key_of(item)).namespace == rec.key.name:
                    return
        self._violate(
            "writes-within-bound-scope",
            f"created {cluster} namespace {rec.key.name} no bound object lives in",
        )

    def _check_namespace_delete(self, cluster: str, rec: Any) -> None:
        """Only a namespace instance sync created for this consumer, and only when no object
        of a bound API (or a related copy) lives in it."""
        before = rec.before or {}
        labels = o.labels_of(before)
        mine = (
            labels.get(keys.LABEL_MANAGED) == "true"
            and labels.get(keys.ANNOTATION_CONSUMER_CLUSTER_UID) == self._local_uid()
        )
        server = self.world.clusters[cluster]
        occupied = []
        for gvr in [*self._bound(), SECRETS, CONFIGMAPS]:
            try:
                items = server.list(gvr, rec.key.name)[0]
            except Exception:
                continue
            occupied += [i for i in items if o.name(i) != "kube-root-ca.crt"]
        if not mine or occupied:
            self._violate(
                "writes-within-bound-scope",
                f"deleted {cluster} namespace {rec.key.name} "
                + ("not created by us" if not mine else f"holding {len(occupied)} object(s)"),
            )
