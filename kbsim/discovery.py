"""Discovery and OpenAPI v3 documents, built from what an `APIServer` serves.

kube-apiserver publishes what it serves in two ways a client reads without RBAC (every
authenticated user may, through `system:discovery` / `system:public-info-viewer`):

- **Discovery** (the legacy, unaggregated form): `/api` (APIVersions), `/api/v1` and
  `/apis/<group>/<version>` (APIResourceList), `/apis` (APIGroupList) and `/apis/<group>`
  (APIGroup).
- **OpenAPI v3**: `/openapi/v3`, an index `{"paths": {"apis/<g>/<v>": {"serverRelativeURL":
  "/openapi/v3/apis/<g>/<v>?hash=<HASH>"}}}`, and one document per group-version.

Custom resources follow apiextensions-apiserver (v1.36):

- A group and its versions are listed in `/apis` as soon as any CRD of the group has a served
  version (the APIService is registered from the CRD spec, before it is Established); the
  group's versions are sorted by Kubernetes version priority (GA > beta > alpha, higher
  numbers first, non-Kubernetes-like names last, alphabetically), and the preferred version is
  the first. CRD groups come after the built-in groups, sorted by name.
- An APIResourceList lists the resources of the Established CRDs that serve that version,
  with the names the CRD accepted (`status.acceptedNames`), the verbs in apiextensions' order
  (`delete deletecollection get list patch create update watch`; only the read and delete
  verbs while the CRD is Terminating), `storageVersionHash` (of the storage version's GVK),
  and `<plural>/status` and `<plural>/scale` entries when *that version* has the subresource.
- An OpenAPI v3 document exists for each served version of an Established CRD; its component
  schema `<reversed group>.<version>.<Kind>` is the version's `openAPIV3Schema` plus
  `apiVersion`/`kind`/`metadata` properties and `x-kubernetes-group-version-kind`, beside a
  `...List` schema. The meta/v1 component schemas those refer to are the real ones, captured
  from kube-apiserver v1.36.4 (`openapi_template.json`). `paths` names the REST paths as the
  real builder does, but without their operations (operation ids, parameters, responses):
  clients read the component schemas and at most which paths exist. The index
  hash is the SHA-512 of the document (uppercase hex, as the real server's), so it changes
  exactly when the document does.

Built-in resources get discovery entries as the real server lists them (verbs, short names,
categories, subresources of the resources kbsim serves). Their OpenAPI documents are minimal:
the component schemas are named and tagged as the real ones but only describe
`apiVersion`/`kind`/`metadata` (see docs/kbsim-known-differences.md).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kbcore import objects as o
from kbsim import apierrors as errs
from kbsim.resources import ResourceInfo

Doc = dict[str, Any]

SERVER_ADDRESS = "127.0.0.1:6443"
"""What `/api` reports in `serverAddressByClientCIDRs` (kbsim has no network address)."""

BUILTIN_GROUP_ORDER = (
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "resource.k8s.io",
    "flowcontrol.apiserver.k8s.io",
)
"""The order of the built-in groups in a real `/apis` (the aggregator's group priorities)."""

BUILTIN_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CRD_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
CRD_TERMINATING_VERBS = ("delete", "deletecollection", "get", "list", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")

# Where the real server differs per built-in resource from the defaults above.
_BUILTIN_VERBS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "namespaces"): ("create", "delete", "get", "list", "patch", "update", "watch"),
}
_BUILTIN_SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {"finalize": ("update",)}
_BUILTIN_CATEGORIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): ("api-extensions",),
}
_BUILTIN_STORAGE_VERSIONS: dict[tuple[str, str], str] = {
    # kube-apiserver still encodes CRDs as v1beta1 in etcd (the storageVersionHash shows it).
    ("apiextensions.k8s.io", "customresourcedefinitions"): "v1beta1",
}
_BUILTIN_SCHEMA_PACKAGE = {
    "": "io.k8s.api.core",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}

META = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1."
_API_CONVENTIONS = (
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
)
_API_VERSION_PROPERTY = {
    "description": (
        "APIVersion defines the versioned schema of this representation of an object. Servers "
        "should convert recognized schemas to the latest internal value, and may reject "
        f"unrecognized values. More info: {_API_CONVENTIONS}#resources"
    ),
    "type": "string",
}
_KIND_PROPERTY = {
    "description": (
        "Kind is a string value representing the REST resource this object represents. Servers "
        "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
        f"CamelCase. More info: {_API_CONVENTIONS}#types-kinds"
    ),
    "type": "string",
}
_EMBEDDED_API_VERSION = (
    "apiVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    f"unrecognized values. More info: {_API_CONVENTIONS}#resources"
)
_EMBEDDED_KIND = (
    "kind is a string value representing the type of this object. Servers may infer this from "
    "the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    f"{_API_CONVENTIONS}#types-kinds"
)
_METADATA_DESCRIPTION = f"Standard object's metadata. More info: {_API_CONVENTIONS}#metadata"
_LIST_METADATA_DESCRIPTION = f"Standard list metadata. More info: {_API_CONVENTIONS}#types-kinds"

CRD_INFO = {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"}
BUILTIN_INFO = {"title": "Kubernetes", "version": "1.36"}


@functools.cache
def _template() -> Mapping[str, Any]:
    data: Mapping[str, Any] = json.loads(
        (Path(__file__).with_name("openapi_template.json")).read_text()
    )
    return data


# --- versions and names ---------------------------------------------------------------------

_KUBE_VERSION = re.compile(r"^v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?$")


def version_priority(version: str) -> tuple[int, int, int, int, str]:
    """A sort key: Kubernetes version priority (`CompareKubeAwareVersionStrings`), highest
    first: v2, v1, v2beta1, v1beta2, v1beta1, v1alpha1, then other names alphabetically."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (1, 0, 0, 0, version)
    stability = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (0, stability, -int(m.group(1)), -int(m.group(3) or 0), "")


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """`discovery.StorageVersionHash`: the first 8 bytes of sha256("group/version/kind")."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _group_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _tag_group(group: str) -> str:
    if not group:
        return "core"
    return group.removesuffix(".k8s.io")


def schema_name(group: str, version: str, kind: str, *, builtin: bool = False) -> str:
    """The component schema name: `org.example.v1.Widget` for a CRD of group example.org,
    `io.k8s.api.core.v1.ConfigMap` for a built-in."""
    if builtin:
        package = (
            _BUILTIN_SCHEMA_PACKAGE.get(group) or "io.k8s.api." + _tag_group(group).split(".")[0]
        )
        return f"{package}.{version}.{kind}"
    reversed_group = ".".join(reversed(group.split(".")))
    return f"{reversed_group}.{version}.{kind}"


def _condition_true(obj: Mapping[str, Any], ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


# --- the served state, as the documents need it ---------------------------------------------


class _Crd:
    """One CRD object, read as the discovery and OpenAPI controllers read it."""

    def __init__(self, crd: Mapping[str, Any]) -> None:
        spec = crd.get("spec") or {}
        self.name = str((crd.get("metadata") or {}).get("name") or "")
        self.group = str(spec.get("group") or "")
        self.namespaced = spec.get("scope") == "Namespaced"
        self.names: Mapping[str, Any] = (crd.get("status") or {}).get("acceptedNames") or {}
        self.versions: list[Mapping[str, Any]] = [
            v for v in spec.get("versions") or [] if isinstance(v, Mapping)
        ]
        self.established = _condition_true(crd, "Established")
        self.terminating = _condition_true(crd, "Terminating")
        self.storage = next((str(v["name"]) for v in self.versions if v.get("storage")), "")

    @property
    def served(self) -> list[str]:
        return [str(v["name"]) for v in self.versions if v.get("served")]

    @property
    def usable(self) -> bool:
        return self.established and bool(self.names.get("plural")) and bool(self.names.get("kind"))

    def version(self, name: str) -> Mapping[str, Any]:
        return next((v for v in self.versions if v.get("name") == name), {})

    def subresources(self, version: str) -> Mapping[str, Any]:
        return self.version(version).get("subresources") or {}


class State:
    """What the server serves: its built-in resources and its CRD objects."""

    def __init__(self, builtins: Iterable[ResourceInfo], crds: Iterable[Mapping[str, Any]]) -> None:
        self.builtins = sorted(builtins, key=lambda i: (i.group, i.resource))
        self.crds = sorted((_Crd(c) for c in crds), key=lambda c: c.name)

    # discovery ---------------------------------------------------------------------------

    def _crd_groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for crd in self.crds:
            for v in crd.served:
                versions = groups.setdefault(crd.group, [])
                if v not in versions:
                    versions.append(v)
        return groups

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, versions in priority order) as `/apis` lists them, without the core group."""
        builtin: dict[str, list[str]] = {}
        for info in self.builtins:
            if info.group:
                versions = builtin.setdefault(info.group, [])
                versions += [v for v in info.versions if v not in versions]
        crd_groups = {g: vs for g, vs in self._crd_groups().items() if g not in builtin}
        out = [
            (g, sorted(builtin[g], key=version_priority))
            for g in sorted(builtin, key=_builtin_group_rank)
        ]
        out += [(g, sorted(crd_groups[g], key=version_priority)) for g in sorted(crd_groups)]
        return out

    def resources(self, group: str, version: str) -> list[Doc] | None:
        """The APIResourceList entries of a group-version, or None if it is not served."""
        found = False
        entries: list[Doc] = []
        for info in self.builtins:
            if info.group == group and version in info.versions:
                found = True
                entries += _builtin_entries(info, version)
        entries.sort(key=lambda e: str(e["name"]))
        for crd in self.crds:
            if crd.group != group or version not in crd.served:
                continue
            found = True
            if crd.usable:
                entries += _crd_entries(crd, version)
        return entries if found else None

    # OpenAPI ------------------------------------------------------------------------------

    def openapi_group_versions(self) -> list[tuple[str, str]]:
        gvs: list[tuple[str, str]] = []
        for info in self.builtins:
            gvs += [(info.group, v) for v in info.versions if (info.group, v) not in gvs]
        for crd in self.crds:
            if crd.usable:
                gvs += [(crd.group, v) for v in crd.served if (crd.group, v) not in gvs]
        return sorted(gvs)

    def openapi_document(self, group: str, version: str) -> Doc | None:
        builtins = [i for i in self.builtins if i.group == group and version in i.versions]
        crds = [c for c in self.crds if c.group == group and c.usable and version in c.served]
        if not builtins and not crds:
            return None
        paths: Doc = {}
        schemas: Doc = {}
        for info in builtins:
            _builtin_openapi(info, version, paths, schemas)
        for crd in crds:
            _crd_openapi(crd, version, paths, schemas)
        if builtins:
            # The APIResourceList endpoint.
            paths["/api/v1/" if not group else f"/apis/{group}/{version}/"] = {}
        # The meta/v1 schemas referred to (ObjectMeta -> ManagedFieldsEntry, ...), until closed.
        template_schemas = _template()["schemas"]
        while missing := {
            n for n in _references(schemas) if n not in schemas and n in template_schemas
        }:
            for name in missing:
                schemas[name] = o.deepcopy(template_schemas[name])
        return {
            "components": {"schemas": dict(sorted(schemas.items()))},
            "info": dict(BUILTIN_INFO if builtins else CRD_INFO),
            "openapi": "3.0.0",
            "paths": dict(sorted(paths.items())),
        }


def _builtin_group_rank(group: str) -> tuple[int, str]:
    try:
        return (BUILTIN_GROUP_ORDER.index(group), "")
    except ValueError:
        return (len(BUILTIN_GROUP_ORDER), group)


def _builtin_entries(info: ResourceInfo, version: str) -> list[Doc]:
    main: Doc = {
        "kind": info.kind,
        "name": info.resource,
        "namespaced": info.namespaced,
        "singularName": info.singular or info.kind.lower(),
        "storageVersionHash": storage_version_hash(
            info.storage[0] if info.storage != ("", "") else info.group,
            _BUILTIN_STORAGE_VERSIONS.get((info.group, info.resource), info.storage_version),
            info.kind,
        ),
        "verbs": list(_BUILTIN_VERBS.get((info.group, info.resource), BUILTIN_VERBS)),
    }
    categories = _BUILTIN_CATEGORIES.get((info.group, info.resource), ())
    if categories:
        main["categories"] = list(categories)
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    out = [main]
    for sub in info.subresources:
        out.append(
            {
                "kind": info.kind,
                "name": f"{info.resource}/{sub}",
                "namespaced": info.namespaced,
                "singularName": "",
                "verbs": list(_BUILTIN_SUBRESOURCE_VERBS.get(sub, SUBRESOURCE_VERBS)),
            }
        )
    return out


def _crd_entries(crd: _Crd, version: str) -> list[Doc]:
    names = crd.names
    plural, kind = str(names["plural"]), str(names["kind"])
    main: Doc = {
        "kind": kind,
        "name": plural,
        "namespaced": crd.namespaced,
        "singularName": str(names.get("singular") or ""),
        "verbs": list(CRD_TERMINATING_VERBS if crd.terminating else CRD_VERBS),
    }
    if crd.storage:
        main["storageVersionHash"] = storage_version_hash(crd.group, crd.storage, kind)
    if names.get("shortNames"):
        main["shortNames"] = list(names["shortNames"])
    if names.get("categories"):
        main["categories"] = list(names["categories"])
    out = [main]
    subresources = crd.subresources(version)
    if "status" in subresources:
        out.append(
            {
                "kind": kind,
                "name": f"{plural}/status",
                "namespaced": crd.namespaced,
                "singularName": "",
                "verbs": list(SUBRESOURCE_VERBS),
            }
        )
    if "scale" in subresources:
        out.append(
            {
                "group": "autoscaling",
                "kind": "Scale",
                "name": f"{plural}/scale",
                "namespaced": crd.namespaced,
                "singularName": "",
                "verbs": list(SUBRESOURCE_VERBS),
                "version": "v1",
            }
        )
    return out


# --- OpenAPI v3 ------------------------------------------------------------------------------


def _references(doc: Any) -> set[str]:
    """The component names `doc` refers to (a stack, not recursion: a CRD's schema may nest as
    deep as the server stores)."""
    found: set[str] = set()
    prefix = "#/components/schemas/"
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith(prefix):
                    found.add(v.removeprefix(prefix))
                else:
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _rest_paths(
    group: str, version: str, plural: str, namespaced: bool, subresources: Sequence[str]
) -> Doc:
    """The resource's REST paths, named as the real builder names them, without their
    operations (nothing reads those): collection, all-namespaces list, object, subresources."""
    base = "/api/v1" if not group else f"/apis/{group}/{version}"
    collection = f"{base}/namespaces/{{namespace}}/{plural}" if namespaced else f"{base}/{plural}"
    names = [collection, f"{collection}/{{name}}"]
    if namespaced:
        names.append(f"{base}/{plural}")
    names += [f"{collection}/{{name}}/{sub}" for sub in subresources]
    return {name: {} for name in names}


def _gvk(group: str, version: str, kind: str) -> list[Doc]:
    return [{"group": group, "kind": kind, "version": version}]


def _metadata_property(*, list_meta: bool = False, default: bool = False) -> Doc:
    prop: Doc = {
        "allOf": [{"$ref": META + ("ListMeta" if list_meta else "ObjectMeta")}],
        "description": _LIST_METADATA_DESCRIPTION if list_meta else _METADATA_DESCRIPTION,
    }
    if default:
        prop["default"] = {}
    return prop


def _list_schema(group: str, version: str, kind: str, list_kind: str, plural: str, ref: str) -> Doc:
    return {
        "description": f"{list_kind} is a list of {kind}",
        "properties": {
            "apiVersion": dict(_API_VERSION_PROPERTY),
            "items": {
                "description": f"List of {plural}. More info: {_API_CONVENTIONS}",
                "items": {"$ref": ref},
                "type": "array",
            },
            "kind": dict(_KIND_PROPERTY),
            "metadata": _metadata_property(list_meta=True),
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": _gvk(group, version, list_kind),
    }


def _embedded(schema: Any) -> None:
    """`addEmbeddedProperties`: `x-kubernetes-embedded-resource` objects get TypeMeta and
    ObjectMeta properties (and apiVersion/kind required)."""
    o.run_walk(_embedded_walk(schema))


def _embedded_walk(schema: Any) -> o.Walk[None]:
    if not isinstance(schema, dict):
        return
    for sub in (schema.get("properties") or {}).values():
        yield _embedded_walk(sub)
    yield _embedded_walk(schema.get("items"))
    yield _embedded_walk(schema.get("additionalProperties"))
    if schema.get("x-kubernetes-embedded-resource") is True:
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"description": _EMBEDDED_API_VERSION, "type": "string"}
        props["kind"] = {"description": _EMBEDDED_KIND, "type": "string"}
        props["metadata"] = _metadata_property()
        required = schema.setdefault("required", [])
        for name in ("kind", "apiVersion"):
            if name not in required:
                required.append(name)


def _crd_openapi(crd: _Crd, version: str, paths: Doc, schemas: Doc) -> None:
    names = crd.names
    kind, plural = str(names["kind"]), str(names["plural"])
    list_kind = str(names.get("listKind") or f"{kind}List")
    name = schema_name(crd.group, version, kind)
    list_name = schema_name(crd.group, version, list_kind)
    ref = f"#/components/schemas/{name}"

    source = (crd.version(version).get("schema") or {}).get("openAPIV3Schema")
    schema: Doc = o.deepcopy(dict(source)) if isinstance(source, Mapping) else {}
    if not schema:
        schema = {"type": "object"}
    props = schema.setdefault("properties", {})
    props["apiVersion"] = dict(_API_VERSION_PROPERTY)
    props["kind"] = dict(_KIND_PROPERTY)
    props["metadata"] = _metadata_property()
    for sub in props.values():
        _embedded(sub)
    schema["x-kubernetes-group-version-kind"] = _gvk(crd.group, version, kind)
    schemas[name] = schema
    schemas[list_name] = _list_schema(crd.group, version, kind, list_kind, plural, ref)

    subresources = [s for s in ("scale", "status") if s in crd.subresources(version)]
    paths.update(_rest_paths(crd.group, version, plural, crd.namespaced, subresources))


def _builtin_openapi(info: ResourceInfo, version: str, paths: Doc, schemas: Doc) -> None:
    name = schema_name(info.group, version, info.kind, builtin=True)
    list_kind = info.list_kind or f"{info.kind}List"
    list_name = schema_name(info.group, version, list_kind, builtin=True)
    ref = f"#/components/schemas/{name}"
    schemas[name] = {
        "description": f"{info.kind} (kbsim: fields beyond the object metadata not described).",
        "properties": {
            "apiVersion": dict(_API_VERSION_PROPERTY),
            "kind": dict(_KIND_PROPERTY),
            "metadata": _metadata_property(default=True),
        },
        "type": "object",
        "x-kubernetes-group-version-kind": _gvk(info.group, version, info.kind),
    }
    schemas[list_name] = _list_schema(info.group, version, info.kind, list_kind, info.resource, ref)
    paths.update(
        _rest_paths(info.group, version, info.resource, info.namespaced, sorted(info.subresources))
    )


def _hash(doc: Doc) -> str:
    text = o.canonical_json(doc)
    return hashlib.sha512(text.encode()).hexdigest().upper()


# --- the documents by path ---------------------------------------------------------------------


def _split(path: str) -> list[str]:
    return [p for p in path.split("?", 1)[0].strip("/").split("/") if p]


def discovery(state: State, path: str) -> Doc:
    """The discovery document at `path` (`/api`, `/api/v1`, `/apis`, `/apis/<g>`,
    `/apis/<g>/<v>`); 404 NotFound for anything else."""
    parts = _split(path)
    if parts == ["api"]:
        return {
            "kind": "APIVersions",
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": SERVER_ADDRESS}
            ],
            "versions": ["v1"],
        }
    if parts == ["api", "v1"]:
        resources = state.resources("", "v1")
        if resources is not None:
            return {"groupVersion": "v1", "kind": "APIResourceList", "resources": resources}
    if parts == ["apis"]:
        return {
            "apiVersion": "v1",
            "groups": [_api_group(g, vs) for g, vs in state.groups()],
            "kind": "APIGroupList",
        }
    if len(parts) == 2 and parts[0] == "apis":
        for group, versions in state.groups():
            if group == parts[1]:
                return {"apiVersion": "v1", "kind": "APIGroup", **_api_group(group, versions)}
    if len(parts) == 3 and parts[0] == "apis" and parts[1]:
        resources = state.resources(parts[1], parts[2])
        if resources is not None:
            return {
                "apiVersion": "v1",
                "groupVersion": f"{parts[1]}/{parts[2]}",
                "kind": "APIResourceList",
                "resources": resources,
            }
    raise errs.resource_not_found()


def _api_group(group: str, versions: list[str]) -> Doc:
    entries = [{"groupVersion": _group_version(group, v), "version": v} for v in versions]
    return {"name": group, "preferredVersion": dict(entries[0]), "versions": entries}


def openapi(state: State, path: str) -> Doc:
    """The OpenAPI v3 document at `path` (`/openapi/v3`, `/openapi/v3/api/v1`,
    `/openapi/v3/apis/<g>/<v>`; the `?hash=` query is ignored); 404 NotFound otherwise."""
    parts = _split(path)
    if parts[:2] != ["openapi", "v3"]:
        raise errs.resource_not_found()
    rest = parts[2:]
    if not rest:
        index: Doc = {}
        for group, version in state.openapi_group_versions():
            doc = state.openapi_document(group, version)
            if doc is None:
                continue
            key = f"apis/{group}/{version}" if group else f"api/{version}"
            index[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={_hash(doc)}"}
        return {"paths": dict(sorted(index.items()))}
    doc = None
    if len(rest) == 2 and rest[0] == "api":
        doc = state.openapi_document("", rest[1])
    elif len(rest) == 3 and rest[0] == "apis" and rest[1]:
        doc = state.openapi_document(rest[1], rest[2])
    if doc is None:
        raise errs.resource_not_found()
    return doc
