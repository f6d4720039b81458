"""Putting a provider schema on the consumer: refuse, transform, install, uninstall.

One module owns every rule about the consumer CustomResourceDefinition of a bound API
(upstream's CRD pull, with the safer choices of docs/design.md, "Differences from upstream"), so
the Connection and binding reconcilers, the shells and the simulator all agree on them.

Refusals (`refuse_provider_crd`), checked in this order; each yields a `Refusal` whose reason is a
`kbcore.api.conditions` constant and whose message names the API and says what to do:

 R1. The spec is not a mapping, or its group is missing: `InvalidSchema`.
 R2. The group is protected (built-in, `*.k8s.io`, or `core.kube-bind.io`): `ProtectedGroup`. Such
     a CRD would shadow an API the cluster or the konnector depends on; it is never installed.
 R3. Versions are converted through a webhook (`spec.conversion.strategy: Webhook`):
     `ConversionWebhook`. The webhook runs next to the provider and cannot run on the consumer;
     upstream silently rewrote the strategy, we refuse instead.
 R4. Anything else that cannot become a valid consumer CRD: `InvalidSchema` — names.plural or
     names.kind missing, metadata.name not `<plural>.<group>`, a scope other than Namespaced or
     Cluster, versions not a list of uniquely named mappings, no served version, an unknown
     conversion strategy, a version's schema nested deeper than `kbcore.limits.MAX_SCHEMA_DEPTH`
     (named with the version; `kbcore.limits` rule 2).
 `refuse_provider_crd` is total: hostile input yields a refusal, never an exception.

Transform (`for_consumer`): the consumer CRD keeps every *served* version of the provider CRD
(upstream kept only one), with exactly one storage version — the provider's storage version if it
is served, else the first served one — and conversion forced to `{strategy: None}`. Metadata is
rebuilt from scratch: the name, the provider's string labels plus `managed=true`, and exactly two
annotations, `connection` and `schema-hash` (the hash of the resulting spec). Server-owned fields
(status, uid, resourceVersion, managedFields, ownerReferences, finalizers, ...) are not carried.
`for_consumer` is idempotent: `for_consumer(for_consumer(p, c), c) == for_consumer(p, c)`.

Rules of `plan_install(desired, current, connection=, create=, update=)`, in the order applied
(numbers are referenced in tests and docs; rule 8, the change gate, is applied inside rules 3
and 6, before anything is stamped or replaced). `create` is pullPolicy != None, `update` is
updatePolicy != Once:

 0. `desired` is refused (R1-R4) or `current` is not the CRD of that name: refusal, no writes.
    `desired` is `for_consumer`'s output, to which a caller may add annotations (kept); it is
    normalised through `for_consumer` again (idempotent), so the body written always carries
    the markers and the hash of its spec, one storage version and conversion None.
 1. No consumer CRD: with `create` False (pullPolicy None, the user manages the CRD) nothing is
    done and it is not installed; else `Create` it (a POST, never an apply: a same-named CRD
    someone creates meanwhile must not be merged into), installed, pending until Established.
 2. The consumer CRD is being deleted: nothing; not installed; pending until it is gone.
 3. `create` False and the CRD present: if it is annotated for another Connection, refuse
    (`ForeignCRD`, never stamped over); then rule 8; else stamp the markers (label
    `managed=true`, annotation `connection`) with a merge patch guarded by its resourceVersion,
    only the ones missing or different. The schema-hash annotation is not stamped: its absence
    is what tells a CRD the konnector adopted from one it created. Installed; the hash is the
    stored one, else the hash of the CRD's spec as it is.
 4. `create` True and the CRD is not ours (no `managed=true` label or no connection annotation):
    refuse (`ForeignCRD`), never overwrite.
 5. Ours but annotated for another Connection: refuse (`ForeignCRD`) naming it — the first
    installer wins, a CRD is never re-homed silently.
 6. Ours and this Connection's: rule 8 first, then installed:
    a. without a schema-hash annotation it was adopted (rule 3), not created: never replaced,
       whatever the updatePolicy; the hash is that of its spec as it is;
    b. with `update` and a stored hash different from the desired one: `Update` (a PUT of the
       current object carrying its resourceVersion) with the spec replaced and our labels and
       annotations set, keeping everything else (uid, finalizers, other people's labels and
       annotations);
    c. otherwise (updatePolicy Once, or the hashes are equal) nothing.
    Pending while the CRD is not Established.
 7. Zero no-op writes: a write is planned only when what it would write differs.
 8. The change gate (`refuse_schema_change`): a consumer CRD that exists is never changed,
    and its API never synced, when the provider's schema differs from it in what the consumer
    API server forbids changing or what would strand the objects stored on the consumer:
    `spec.group`, `spec.scope`, `spec.names` plural, kind, singular or listKind (shortNames and
    categories may change), or a version in the consumer CRD's `status.storedVersions` that the
    provider no longer serves (objects are stored at it; the consumer API server refuses an
    update that drops it). Refused (`IncompatibleSchemaChange`, naming the API, the field, both
    values and what to do); no write; not installed; the hash stays the live one. This holds
    whatever the updatePolicy and for CRDs the user manages (rule 3, 6a): instances of an API
    whose scope or names differ between the two clusters cannot sync without colliding or
    failing on every write. Callers check it before R1-R4 (`refuse_install`), so it is the
    reason reported even when the new schema is refused as well (its API must pause either
    way). The apiextensions update validation enforces a subset of it (group, plural; scope
    and kind once Established; stored versions listed in spec.versions); the gate is stricter
    so it refuses before the server would, and before data is stranded.

`Install.crd_hash` is always the hash the *live* consumer CRD carries (its schema-hash
annotation, else the hash of its spec; "" when there is none yet), never the hash of a write
that has not landed: a binding records it, and it moves when the next pass reads the written
CRD. `Install.writes_hash` is the hash a planned Create or Update carries.

`plan_uninstall` deletes (with a UID precondition) only a CRD the konnector created for this
Connection — the markers of rule 3 *and* a schema-hash annotation — and not already deleting;
a CRD the konnector merely adopted under pullPolicy None, or anyone else's, is never deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import CONSUMER, Action, Create, Delete, MergePatch, Update
from kbcore.api import conditions, keys
from kbcore.api.resources import CRDS
from kbcore.limits import schema_depth_problem
from kbcore.objects import Obj, ObjectKey, ObjectRef
from kbcore.schema.groups import is_protected_group

CRD_API_VERSION = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"
SCOPES = ("Namespaced", "Cluster")


def _canonical_hash(value: Any) -> str:
    try:
        text = o.canonical_json(value)
    except (TypeError, ValueError):  # not JSON (mixed key types, ...): still deterministic
        text = repr(value)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def schema_hash(crd_spec: Mapping[str, Any]) -> str:
    """`sha256:` + the first 16 hex characters of SHA-256 over the canonical JSON of the spec
    (sorted keys, compact separators), so the same schema always hashes the same."""
    return _canonical_hash(crd_spec)


@attrs.frozen
class Refusal:
    """Why an API's schema is not put on the consumer: a `kbcore.api.conditions` reason and a
    message naming the API and saying what to do."""

    reason: str
    message: str


# --- reading CRDs -----------------------------------------------------------------------------


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_served(version: Any) -> bool:
    return isinstance(version, dict) and version.get("served") is True


def _display_name(crd: Any) -> str:
    if not isinstance(crd, dict):
        return "(unnamed)"
    name = o.name(crd)
    if name:
        return name
    spec = _mapping(crd.get("spec"))
    group, plural = _str(spec.get("group")), _str(_mapping(spec.get("names")).get("plural"))
    return f"{plural}.{group}" if group and plural else "(unnamed)"


def established(crd: Mapping[str, Any]) -> bool:
    """Whether the CRD's `Established` condition is True (its resource is served)."""
    raw = _mapping(crd.get("status")).get("conditions")
    if not isinstance(raw, list):
        return False
    return any(
        isinstance(c, dict) and c.get("type") == "Established" and c.get("status") == "True"
        for c in raw
    )


def owned_by(crd: Mapping[str, Any], connection: str) -> bool:
    """Whether the CRD carries our markers for `connection`: label `managed=true` and annotation
    `connection=<connection>` (installed through it, or adopted under pullPolicy None)."""
    return (
        bool(connection)
        and o.labels_of(crd).get(keys.LABEL_MANAGED) == "true"
        and o.annotations_of(crd).get(keys.ANNOTATION_CONNECTION) == connection
    )


def created_by(crd: Mapping[str, Any], connection: str) -> bool:
    """Whether the konnector created the CRD through `connection`: our markers and a schema hash
    (a CRD only stamped with the markers under pullPolicy None has no hash)."""
    return owned_by(crd, connection) and bool(
        o.annotations_of(crd).get(keys.ANNOTATION_SCHEMA_HASH)
    )


# --- refusals ---------------------------------------------------------------------------------


def _invalid(name: str, what: str) -> Refusal:
    return Refusal(
        conditions.INVALID_SCHEMA,
        f'CRD "{name}" cannot be installed on the consumer: {what}; fix the CRD on the provider',
    )


def _refuse_versions(name: str, versions: Any) -> Refusal | None:
    if not isinstance(versions, list) or not versions:
        return _invalid(name, "spec.versions is not a non-empty list")
    seen: set[str] = set()
    for v in versions:
        if not isinstance(v, dict) or not _str(v.get("name")):
            return _invalid(name, "every entry of spec.versions needs a name")
        if v["name"] in seen:
            return _invalid(name, f'version "{v["name"]}" is listed twice')
        seen.add(v["name"])
    if not any(_is_served(v) for v in versions):
        return _invalid(name, "it serves no version")
    for v in versions:
        too_deep = schema_depth_problem(_mapping(v.get("schema")).get("openAPIV3Schema"))
        if too_deep:
            return _invalid(name, f'version "{v["name"]}": {too_deep}')
    return None


def refuse_provider_crd(crd: Obj) -> Refusal | None:
    """Why the provider CRD cannot be put on the consumer (rules R1-R4), or None. Total."""
    name = _display_name(crd)
    spec = crd.get("spec") if isinstance(crd, dict) else None
    if not isinstance(spec, dict):
        return _invalid(name, "spec is not an object")
    group = spec.get("group")
    if not isinstance(group, str) or not group:
        return _invalid(name, "spec.group is missing")
    if is_protected_group(group):
        return Refusal(
            conditions.PROTECTED_GROUP,
            f'CRD "{name}" is in the protected API group "{group}", which kube-bind never '
            "installs on a consumer; export the API in a group of your own",
        )
    conversion = spec.get("conversion")
    if conversion is not None and not isinstance(conversion, dict):
        return _invalid(name, "spec.conversion is not an object")
    strategy = _mapping(conversion).get("strategy")
    if strategy == "Webhook":
        return Refusal(
            conditions.CONVERSION_WEBHOOK,
            f'CRD "{name}" converts versions through a webhook, which cannot run on the '
            "consumer; export a CRD with conversion strategy None",
        )
    if strategy not in (None, "None"):
        return _invalid(name, f"unknown conversion strategy {strategy!r}")
    names = spec.get("names")
    if not isinstance(names, dict):
        return _invalid(name, "spec.names is missing")
    plural, kind = names.get("plural"), names.get("kind")
    if not isinstance(plural, str) or not plural:
        return _invalid(name, "spec.names.plural is missing")
    if not isinstance(kind, str) or not kind:
        return _invalid(name, "spec.names.kind is missing")
    meta_name = o.metadata(crd).get("name")
    if meta_name is not None and meta_name != f"{plural}.{group}":
        return _invalid(name, f'its name is not "{plural}.{group}" (names.plural + "." + group)')
    if spec.get("scope") not in SCOPES:
        return _invalid(name, "spec.scope is neither Namespaced nor Cluster")
    return _refuse_versions(name, spec.get("versions"))


# --- the consumer CRD -------------------------------------------------------------------------


def crd_ref(name: str) -> ObjectRef:
    """The consumer CRD `name`, as a write target."""
    return ObjectRef(CONSUMER, CRDS, ObjectKey("", name))


def for_consumer(provider_crd: Obj, connection: str) -> Obj:
    """The consumer CRD to install for `provider_crd` through `connection`.

    Precondition: `refuse_provider_crd(provider_crd) is None` (a ValueError otherwise).
    """
    refusal = refuse_provider_crd(provider_crd)
    if refusal is not None:
        raise ValueError(refusal.message)
    spec: dict[str, Any] = o.deepcopy(provider_crd["spec"])
    served = [v for v in spec["versions"] if _is_served(v)]
    storage = next((v for v in served if v.get("storage") is True), served[0])
    for v in served:
        v["storage"] = v is storage
    spec["versions"] = served
    spec["conversion"] = {"strategy": "None"}
    labels = dict(o.labels_of(provider_crd))
    labels[keys.LABEL_MANAGED] = "true"
    return {
        "apiVersion": CRD_API_VERSION,
        "kind": CRD_KIND,
        "metadata": {
            "name": f"{spec['names']['plural']}.{spec['group']}",
            "labels": labels,
            "annotations": {
                keys.ANNOTATION_CONNECTION: connection,
                keys.ANNOTATION_SCHEMA_HASH: schema_hash(spec),
            },
        },
        "spec": spec,
    }


@attrs.frozen(hash=False)
class Install:
    """What `plan_install` decided.

    `actions`: at most one write, to the consumer CRD. `crd_hash`: the schema hash the live
    consumer CRD carries ("" when there is none yet), never that of a write not yet landed.
    `installed`: a consumer CRD exists (or is being created) that bound instances can use.
    `refusal`: why nothing is installed, or why the installed CRD must not be used. `pending`:
    non-empty while waiting (CRD being created or deleted), saying for what. `writes_hash`: the
    schema hash the planned Create or Update carries ("" when nothing is written).
    """

    actions: tuple[Action, ...]
    crd_hash: str
    installed: bool
    refusal: Refusal | None = None
    pending: str = ""
    writes_hash: str = ""


# --- rule 8: the change gate ------------------------------------------------------------------

_NAME_FIELDS = ("plural", "kind", "singular", "listKind")


def _names(spec: Mapping[str, Any]) -> dict[str, str]:
    """The names that address a resource, with the API server's defaults for singular and
    listKind (so a CRD the server defaulted compares equal to one that left them out)."""
    names = _mapping(spec.get("names"))
    kind = _str(names.get("kind"))
    return {
        "plural": _str(names.get("plural")),
        "kind": kind,
        "singular": _str(names.get("singular")) or kind.lower(),
        "listKind": _str(names.get("listKind")) or (kind + "List" if kind else ""),
    }


def _served_names(spec: Mapping[str, Any]) -> list[str]:
    versions = spec.get("versions")
    return [
        _str(v.get("name"))
        for v in (versions if isinstance(versions, list) else [])
        if _is_served(v) and _str(v.get("name"))
    ]


def _stored_versions(crd: Mapping[str, Any]) -> list[str]:
    raw = _mapping(crd.get("status")).get("storedVersions")
    return [v for v in raw if isinstance(v, str) and v] if isinstance(raw, list) else []


def _incompatible(name: str, field: str, old: str, new: str, why: str, fix: str) -> Refusal:
    return Refusal(
        conditions.INCOMPATIBLE_SCHEMA_CHANGE,
        f'the provider changed {field} of CRD "{name}" from {old!r} to {new!r}, {why}; the '
        f"consumer CRD is left as it is and objects of {name} are not synced: {fix}",
    )


_IMMUTABLE_WHY = (
    "which the consumer API server does not allow on an existing CRD and which would strand "
    "the objects stored on the consumer"
)
_IMMUTABLE_FIX = (
    "restore it on the provider, or unbind the API and delete its consumer CRD (which deletes "
    "its objects on the consumer) before binding it again"
)


def _first_change(
    name: str,
    current: Mapping[str, Any],
    *,
    group: str,
    scope: str,
    names: Mapping[str, str],
    served: list[str],
) -> Refusal | None:
    """Rule 8 on the facts of the provider's schema; a name left "" is not compared."""
    spec = _mapping(current.get("spec"))
    live_names = _names(spec)
    checks = [
        ("spec.group", _str(spec.get("group")), group),
        ("spec.scope", _str(spec.get("scope")), scope),
        *((f"spec.names.{f}", live_names[f], names.get(f, "")) for f in _NAME_FIELDS),
    ]
    for field, old, new in checks:
        if new and old != new:
            return _incompatible(name, field, old, new, _IMMUTABLE_WHY, _IMMUTABLE_FIX)
    for stored in _stored_versions(current):
        if stored not in served:
            return Refusal(
                conditions.INCOMPATIBLE_SCHEMA_CHANGE,
                f'the provider no longer serves version "{stored}" of CRD "{name}", at which '
                "objects are stored on the consumer (status.storedVersions), and the consumer "
                "API server does not allow removing it; the consumer CRD is left as it is and "
                f"objects of {name} are not synced: serve {stored} again on the provider, or "
                f'migrate the consumer objects to a served version and remove "{stored}" from '
                "status.storedVersions of the consumer CRD",
            )
    return None


def refuse_schema_change(current: Obj, desired: Obj) -> Refusal | None:
    """Rule 8: why the live consumer CRD `current` must not become (or be synced as) `desired`,
    the consumer CRD built from the provider's schema; None when the change is safe. Total."""
    if not isinstance(current, dict) or not isinstance(desired, dict):
        return None
    spec = _mapping(desired.get("spec"))
    return _first_change(
        _display_name(current),
        current,
        group=_str(spec.get("group")),
        scope=_str(spec.get("scope")),
        names=_names(spec),
        served=_served_names(spec),
    )


def refuse_install(provider_crd: Obj, current: Obj | None, connection: str) -> Refusal | None:
    """What a caller of `plan_install` reports before building the desired CRD: rule 8 first
    when the live consumer CRD carries our markers for `connection` (a change it cannot
    follow pauses the API, whatever else is wrong with the new schema, such as a conversion
    webhook added at the same time), then R1-R4. Total."""
    if isinstance(current, dict) and not o.is_deleting(current) and owned_by(current, connection):
        changed = refuse_schema_change(current, provider_crd)
        if changed is not None:
            return changed
    return refuse_provider_crd(provider_crd)


def refuse_exported_change(current: Obj, exported: Mapping[str, Any]) -> Refusal | None:
    """Rule 8 from what a Connection's `status.exportedAPIs` entry says the provider serves
    (group, resource, scope, served versions; it carries no kind): for bindings of APIs whose
    CRD the Connection synthesizes, which see only that entry. Total."""
    if not isinstance(current, dict) or not isinstance(exported, Mapping):
        return None
    versions = exported.get("versions")
    return _first_change(
        _display_name(current),
        current,
        group=_str(exported.get("group")),
        scope=_str(exported.get("scope")),
        names={"plural": _str(exported.get("resource"))},
        served=[v for v in versions if isinstance(v, str)] if isinstance(versions, list) else [],
    )


def live_hash(crd: Mapping[str, Any]) -> str:
    """The schema hash a consumer CRD carries: its schema-hash annotation, else (adopted, or
    written by someone else) the hash of its spec as it is."""
    return _stored_hash(crd) or _canonical_hash(crd.get("spec"))


def _foreign(name: str) -> Refusal:
    return Refusal(
        conditions.FOREIGN_CRD,
        f'a CustomResourceDefinition "{name}" already exists on the consumer and was not '
        "installed by kube-bind; not overwriting it (delete it, or bind another API)",
    )


def _other_connection(name: str, other: str, connection: str) -> Refusal:
    return Refusal(
        conditions.FOREIGN_CRD,
        f'CustomResourceDefinition "{name}" was installed through Connection "{other}"; '
        f'not re-homing it to Connection "{connection}" (the first installer wins: unbind the '
        "API there first, or bind another API)",
    )


def _waiting(name: str) -> str:
    return f'waiting for CRD "{name}" to be established'


def _stored_hash(crd: Mapping[str, Any]) -> str:
    return o.annotations_of(crd).get(keys.ANNOTATION_SCHEMA_HASH, "")


def _refused(refusal: Refusal, crd_hash: str = "") -> Install:
    return Install(actions=(), crd_hash=crd_hash, installed=False, refusal=refusal)


def _merged(current: Any, ours: Mapping[str, str]) -> dict[str, Any]:
    merged = dict(current) if isinstance(current, dict) else {}
    merged.update(ours)
    return merged


def _replaced(current: Obj, body: Obj) -> Obj:
    """`current` with `body`'s spec and our labels and annotations, everything else kept."""
    out = o.deepcopy(current)
    meta = out.get("metadata")
    if not isinstance(meta, dict):
        meta = out["metadata"] = {}
    meta["labels"] = _merged(meta.get("labels"), body["metadata"]["labels"])
    meta["annotations"] = _merged(meta.get("annotations"), body["metadata"]["annotations"])
    out["spec"] = o.deepcopy(body["spec"])
    return out


def _stamp(current: Obj, body: Obj, name: str, connection: str) -> Install:
    """Rule 3: pullPolicy None and a consumer CRD present."""
    other = o.annotations_of(current).get(keys.ANNOTATION_CONNECTION, "")
    if other and other != connection:
        return _refused(_other_connection(name, other, connection))
    changed = refuse_schema_change(current, body)  # rule 8
    if changed is not None:
        return _refused(changed, live_hash(current))
    labels: dict[str, Any] = {}
    annotations: dict[str, Any] = {}
    if o.labels_of(current).get(keys.LABEL_MANAGED) != "true":
        labels[keys.LABEL_MANAGED] = "true"
    if other != connection:
        annotations[keys.ANNOTATION_CONNECTION] = connection
    meta: dict[str, Any] = {}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    actions: tuple[Action, ...] = ()
    if meta:
        patch = {"metadata": meta}
        actions = (MergePatch(crd_ref(name), patch, o.resource_version(current)),)
    return Install(
        actions=actions,
        crd_hash=live_hash(current),
        installed=True,
        pending="" if established(current) else _waiting(name),
    )


def _desired_body(desired: Obj, connection: str) -> Obj:
    """`for_consumer(desired)` keeping the annotations a caller added to `desired` (such as a
    note on what a synthesized schema lost); ours are always (re)set."""
    body = for_consumer(desired, connection)
    ours = body["metadata"]["annotations"]
    extra = {k: v for k, v in o.annotations_of(desired).items() if k not in ours}
    body["metadata"]["annotations"] = {**extra, **ours}
    return body


def plan_install(
    desired: Obj, current: Obj | None, *, connection: str, create: bool, update: bool
) -> Install:
    """What to do so the consumer CRD for `desired` is installed per the schema policy (rules
    0-8). `desired` is `for_consumer`'s output, possibly with annotations added (they are
    written too); `current` is the consumer CRD of that name, None if absent. Total; never
    deletes."""
    refusal = refuse_provider_crd(desired)
    if refusal is not None:
        return _refused(refusal)
    body = _desired_body(desired, connection)
    name = o.name(body)
    want = _stored_hash(body)
    if current is None:  # rule 1
        if not create:
            return Install(actions=(), crd_hash="", installed=False)
        return Install(
            actions=(Create(crd_ref(name), body, keys.FIELD_MANAGER),),
            crd_hash="",
            installed=True,
            pending=_waiting(name),
            writes_hash=want,
        )
    if not isinstance(current, dict) or o.name(current) != name:  # rule 0
        return _refused(
            Refusal(
                conditions.INVALID_SCHEMA,
                f'looked up consumer CRD "{name}" but read "{_display_name(current)}"; '
                "not writing (a konnector bug: please report it)",
            )
        )
    if o.is_deleting(current):  # rule 2
        return Install(
            actions=(),
            crd_hash="",
            installed=False,
            pending=f'consumer CRD "{name}" is being deleted',
        )
    if not create:  # rule 3
        return _stamp(current, body, name, connection)
    other = o.annotations_of(current).get(keys.ANNOTATION_CONNECTION, "")
    if o.labels_of(current).get(keys.LABEL_MANAGED) != "true" or not other:  # rule 4
        return _refused(_foreign(name))
    if other != connection:  # rule 5
        return _refused(_other_connection(name, other, connection))
    changed = refuse_schema_change(current, body)  # rule 8
    if changed is not None:
        return _refused(changed, live_hash(current))
    pending = "" if established(current) else _waiting(name)
    stored = _stored_hash(current)
    if not stored:  # rule 6a
        return Install((), live_hash(current), True, pending=pending)
    if update and stored != want:  # rule 6b: the hash moves once the write has landed
        action = Update(crd_ref(name), _replaced(current, body), keys.FIELD_MANAGER)
        return Install((action,), stored, True, pending=pending, writes_hash=want)
    return Install((), stored, True, pending=pending)  # rule 6c


def plan_uninstall(current: Obj | None, *, connection: str) -> tuple[Action, ...]:
    """Delete the consumer CRD (UID precondition) only if the konnector created it through
    `connection` and it is not already deleting; otherwise nothing."""
    if current is None or not isinstance(current, dict) or o.is_deleting(current):
        return ()
    uid, name = o.uid(current), o.name(current)
    if not uid or not name or not created_by(current, connection):
        return ()
    return (Delete(crd_ref(name), uid),)
