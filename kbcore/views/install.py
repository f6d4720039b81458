"""`kubectl bind --install-konnector`: what to write so the consumer runs the konnector.

The shell (kbshell/install.py) hands in the chart's rendering (kbshell/data/konnector.yaml,
`helm template kube-bind charts/konnector -n kube-bind --skip-tests` with default values, kept
equal to a fresh render by tools/gen_konnector_manifests.py --check), the objects it found on the
consumer under the same names, and the image the user asked for. This module decides:

 1. The desired objects are the rendering, as rendered, plus the Namespace its namespaced
    objects live in (the chart leaves that to `helm --create-namespace`). Nothing else is ever
    written, and nothing is ever deleted: an object the rendering no longer has stays.
 2. The image override replaces the `image` of the Deployment's container `konnector`, and
    nothing else (the chart's `app.kubernetes.io/version` label stays the chart's). An image
    reference that is empty or holds whitespace or control characters is refused.
 3. Ownership: an existing object is ours when it carries the chart's labels
    (`app.kubernetes.io/name: konnector`, `app.kubernetes.io/instance: kube-bind`,
    `app.kubernetes.io/part-of: kube-bind`). A CRD of the `core.kube-bind.io` group is ours by
    its name (that group is kube-bind's; `kubectl apply -f crds/` leaves no labels). The
    Namespace is shared (the bundle's Secret lives there too): an existing one is used as it is,
    never changed, whatever its labels.
 4. Refusals, each with its reason, and then nothing is written at all: a same-named object that
    is not ours (rule 3); another konnector Deployment (labels `app.kubernetes.io/name:
    konnector` and `app.kubernetes.io/part-of: kube-bind`, under another name or namespace: a
    Helm release of another name), since two konnectors would both write every object; an
    object of a Helm release (annotation `meta.helm.sh/release-name`:
    `helm upgrade` owns it, two installers would fight); an object being deleted; an invalid
    image (rule 2); a kind in the rendering this module has no resource for.
 5. An object is up to date when everything the desired object says is in the observed one:
    maps by key (the server adds defaults and status), lists element by element at the same
    length, scalars equal as JSON values. Up to date means no write; otherwise the whole
    desired object is applied (server-side apply, which leaves other managers' fields alone).
 6. Order: CRDs, the Namespace, the ServiceAccount, RBAC (roles before their bindings), any
    other kind (the Service), the Deployment last, so the konnector never starts before what it
    needs; within a kind, by namespace and name. The same inputs give the same plan.
 7. The outcome: `refused` (rule 4), else `up-to-date` (no step), else `install` when no
    konnector Deployment exists yet, else `upgrade`.
 8. Versions: a Deployment's version is its `app.kubernetes.io/version` label and its
    `konnector` container's image; the plan reports the observed one and the one it installs.
 9. Permissions the caller needs for the plan (checked by the shell with
    SelfSubjectAccessReviews before it writes anything): `patch` for every step (server-side
    apply) and `create` as well where the object does not exist yet. A Role or ClusterRole can
    only be written by someone who holds every permission it grants, or `escalate` on it; a
    binding by someone who holds the bound role's permissions, or `bind` on it (the RBAC
    escalation check): either alternative satisfies the requirement.
10. Bound API groups: the default rendering lets the konnector touch no bound API's objects
    (the chart's `rbac.boundResourceGroups` is empty). The groups asked for are added to the
    ClusterRole as the chart renders them (one rule, after the others: every resource of those
    groups, `list`, `watch`, `update`, `patch`; tests/chart checks it equals helm's rendering),
    together with the groups the installed ClusterRole's rule already lists: binding another
    API never takes a group away. A group must be an API group name (lower-case DNS); `*` and
    anything else is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    CRDS,
    NAMESPACES,
    ROLE_BINDINGS,
    ROLES,
    SERVICE_ACCOUNTS,
)
from kbcore.objects import GVR, ObjectKey

Obj = dict[str, Any]

RELEASE = "kube-bind"
"""The release name the rendering uses (object names are `kube-bind-konnector`)."""
NAMESPACE = "kube-bind"
"""The konnector's namespace: its `--namespace`, where the bundles' kubeconfig Secrets live."""
FIELD_MANAGER = "kubectl-bind"
CONTAINER = "konnector"
HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"
LABEL_VERSION = "app.kubernetes.io/version"
OWNER_LABELS = {
    "app.kubernetes.io/name": "konnector",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/part-of": "kube-bind",
}
"""Rule 3: the chart's labels that mark an object as installed by kube-bind."""

SERVICES = GVR("", "v1", "services")
DEPLOYMENTS = GVR("apps", "v1", "deployments")
RESOURCES: Mapping[tuple[str, str], GVR] = {
    (CRDS.api_version, "CustomResourceDefinition"): CRDS,
    ("v1", "Namespace"): NAMESPACES,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNTS,
    ("v1", "Service"): SERVICES,
    (CLUSTER_ROLES.api_version, "ClusterRole"): CLUSTER_ROLES,
    (ROLES.api_version, "Role"): ROLES,
    (CLUSTER_ROLE_BINDINGS.api_version, "ClusterRoleBinding"): CLUSTER_ROLE_BINDINGS,
    (ROLE_BINDINGS.api_version, "RoleBinding"): ROLE_BINDINGS,
    (DEPLOYMENTS.api_version, "Deployment"): DEPLOYMENTS,
}
CLUSTER_SCOPED = frozenset({CRDS, NAMESPACES, CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS})
_RANK = {
    "CustomResourceDefinition": 0,
    "Namespace": 1,
    "ServiceAccount": 2,
    "ClusterRole": 3,
    "Role": 3,
    "ClusterRoleBinding": 4,
    "RoleBinding": 4,
    "Deployment": 9,
}
_OTHER_RANK = 5  # rule 6: any other kind after RBAC, before the Deployment
_IMAGE = re.compile(r"[^\s\x00-\x1f\x7f]+")
_GROUP = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
BOUND_VERBS = ("list", "watch", "update", "patch")
"""Rule 10: the chart's rule for `rbac.boundResourceGroups`."""

Outcome = Literal["install", "upgrade", "up-to-date", "refused"]


@attrs.frozen
class Target:
    """One object the installer manages: where it is and what it should be."""

    gvr: GVR
    key: ObjectKey
    kind: str
    body: Obj = attrs.field(eq=False, repr=False)

    @property
    def label(self) -> str:
        where = f"{self.key.namespace}/{self.key.name}" if self.key.namespace else self.key.name
        return f"{self.kind} {where}"


@attrs.frozen
class Step:
    """Server-side apply of `target.body`; `create` when the object does not exist yet;
    `changes` the desired fields the observed object lacks or has otherwise (for updates)."""

    target: Target
    create: bool
    changes: tuple[str, ...] = ()


@attrs.frozen
class Version:
    """Rule 8."""

    label: str
    image: str

    def __str__(self) -> str:
        return f"{self.label or '(unlabelled)'} (image {self.image or '(none)'})"


@attrs.frozen
class Permission:
    """One SelfSubjectAccessReview's resourceAttributes."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        what = f"{self.resource}.{self.group}" if self.group else self.resource
        if self.name:
            what += f" {self.name}"
        return f"{self.verb} {what}" + (f" in namespace {self.namespace}" if self.namespace else "")

    def attributes(self) -> dict[str, str]:
        attrs_ = {"verb": self.verb, "group": self.group, "resource": self.resource}
        if self.namespace:
            attrs_["namespace"] = self.namespace
        if self.name:
            attrs_["name"] = self.name
        return attrs_


@attrs.frozen
class Requirement:
    """Rule 9: satisfied when every permission of at least one alternative is allowed."""

    why: str
    alternatives: tuple[tuple[Permission, ...], ...]


@attrs.frozen
class InstallPlan:
    outcome: Outcome
    steps: tuple[Step, ...] = ()
    refusals: tuple[str, ...] = ()
    current: Version | None = None
    target: Version | None = None
    crds: tuple[str, ...] = ()
    """Every CRD of the rendering, which the shell waits to be Established."""
    needs: tuple[Requirement, ...] = ()
    """Rule 9: what the caller must be allowed to do for `steps`."""


def _gvr(obj: Mapping[str, Any]) -> GVR | None:
    return RESOURCES.get((str(obj.get("apiVersion", "")), str(obj.get("kind", ""))))


def _rank(target: Target) -> tuple[int, str, str]:
    return (_RANK.get(target.kind, _OTHER_RANK), target.key.namespace, target.key.name)


def targets(
    rendered: Sequence[Mapping[str, Any]], image: str | None, bound_groups: Iterable[str] = ()
) -> tuple[Target, ...]:
    """Rules 1, 2, 6 and 10: the desired objects in apply order. A kind without a resource
    (rule 4), an invalid image or group is left to `plan`, which refuses; this never raises."""
    groups = sorted({g for g in bound_groups if valid_group(g)})
    out: dict[tuple[GVR, ObjectKey], Target] = {}
    namespaces: set[str] = set()
    for raw in rendered:
        gvr = _gvr(raw)
        if gvr is None:
            continue
        body = o.deepcopy(dict(raw))
        key = ObjectKey("" if gvr in CLUSTER_SCOPED else o.namespace(body), o.name(body))
        if key.namespace:
            namespaces.add(key.namespace)
        if gvr == DEPLOYMENTS and image is not None and valid_image(image):
            for container in _containers(body):
                if container.get("name") == CONTAINER:
                    container["image"] = image
        if gvr == CLUSTER_ROLES and groups:
            rule = {"apiGroups": groups, "resources": ["*"], "verbs": list(BOUND_VERBS)}
            body["rules"] = [*(body.get("rules") or []), rule]
        out[(gvr, key)] = Target(gvr, key, str(body["kind"]), body)
    for ns in sorted(namespaces):
        key = ObjectKey("", ns)
        if (NAMESPACES, key) not in out:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            out[(NAMESPACES, key)] = Target(NAMESPACES, key, "Namespace", body)
    return tuple(sorted(out.values(), key=_rank))


def valid_group(group: str) -> bool:
    """Rule 10: an API group name."""
    return len(group) <= 253 and bool(_GROUP.fullmatch(group))


def _is_bound_rule(rule: Any) -> bool:
    return (
        isinstance(rule, dict)
        and rule.get("resources") == ["*"]
        and rule.get("verbs") == list(BOUND_VERBS)
        and not rule.get("resourceNames")
    )


def installed_groups(cluster_role: Mapping[str, Any]) -> tuple[str, ...]:
    """Rule 10: the bound groups an installed ClusterRole already allows."""
    rules = cluster_role.get("rules") or []
    found = {str(g) for r in rules if _is_bound_rule(r) for g in r.get("apiGroups") or []}
    return tuple(sorted(g for g in found if valid_group(g)))


def valid_image(image: str) -> bool:
    """Rule 2: a non-empty reference without whitespace or control characters."""
    return bool(_IMAGE.fullmatch(image))


def _containers(deployment: Mapping[str, Any]) -> list[Obj]:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def version_of(deployment: Mapping[str, Any]) -> Version:
    """Rule 8."""
    image = next(
        (str(c.get("image", "")) for c in _containers(deployment) if c.get("name") == CONTAINER), ""
    )
    return Version(o.labels_of(deployment).get(LABEL_VERSION, ""), image)


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{parent}.{key}" if parent else key
    return f'{parent}["{key}"]'


def differences(observed: Any, desired: Any, path: str = "") -> list[str]:
    """Rule 5: the paths where `observed` does not cover `desired` (empty: up to date)."""
    out: list[str] = []
    stack: list[tuple[Any, Any, str]] = [(observed, desired, path)]
    while stack:
        have, want, where = stack.pop()
        if isinstance(want, dict) and isinstance(have, dict):
            for k in sorted(want, reverse=True):
                if k in have:
                    stack.append((have[k], want[k], _path(where, k)))
                else:
                    out.append(_path(where, k))
        elif isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
            for i in reversed(range(len(want))):
                stack.append((have[i], want[i], _path(where, i)))
        elif isinstance(want, dict | list) or not o.json_equal(have, want):
            out.append(where or ".")
    return out


def _ours(target: Target, observed: Mapping[str, Any]) -> bool:
    if target.gvr == CRDS:
        return target.key.name.endswith("." + keys.GROUP)
    labels = o.labels_of(observed)
    return all(labels.get(k) == v for k, v in OWNER_LABELS.items())


KONNECTOR_LABELS = {
    k: OWNER_LABELS[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/part-of")
}
"""Rule 4: the labels of a konnector Deployment of any release."""
KONNECTOR_SELECTOR = ",".join(f"{k}={v}" for k, v in KONNECTOR_LABELS.items())
"""The same as a label selector, for the shell's list."""


def _is_konnector(deployment: Mapping[str, Any]) -> bool:
    labels = o.labels_of(deployment)
    return all(labels.get(k) == v for k, v in KONNECTOR_LABELS.items())


def _refusal(target: Target, observed: Mapping[str, Any]) -> str | None:
    """Rules 3 and 4 for one existing object."""
    if o.is_deleting(observed):
        return f"{target.label} is being deleted; run again once it is gone"
    if target.gvr == NAMESPACES:
        return None
    release = o.annotations_of(observed).get(HELM_RELEASE_ANNOTATION)
    if release:
        return (
            f"{target.label} belongs to the Helm release {release!r}; upgrade that release "
            "with helm instead"
        )
    if not _ours(target, observed):
        want = ", ".join(f"{k}={v}" for k, v in OWNER_LABELS.items())
        return (
            f"{target.label} exists and was not installed by kube-bind (it lacks the labels "
            f"{want}); it is left untouched: remove or rename it, or install the konnector "
            "with Helm into another namespace"
        )
    return None


def plan(
    rendered: Sequence[Mapping[str, Any]],
    observed: Iterable[Mapping[str, Any]],
    image: str | None,
    bound_groups: Iterable[str] = (),
) -> InstallPlan:
    """Rules 1-10. `observed`: the consumer's objects under the targets' names (absent ones are
    simply not there) and every konnector Deployment of the cluster (rule 4); anything else in
    it is ignored."""
    refusals: list[str] = []
    if image is not None and not valid_image(image):
        refusals.append(f"image {image!r} is not an image reference")
    asked = tuple(bound_groups)
    refusals.extend(
        f"bound group {g!r} is not an API group name"
        for g in sorted(set(asked))
        if not valid_group(g)
    )
    for raw in rendered:
        if _gvr(raw) is None:
            refusals.append(
                f"the rendering holds a {raw.get('kind')} ({raw.get('apiVersion')}) the "
                "installer has no resource for"
            )
    seen: dict[tuple[GVR, ObjectKey], Mapping[str, Any]] = {}
    for obj in observed:
        gvr = _gvr(obj)
        if gvr is not None:
            key = ObjectKey("" if gvr in CLUSTER_SCOPED else o.namespace(obj), o.name(obj))
            seen[(gvr, key)] = obj
    ours = {(t.gvr, t.key) for t in targets(rendered, image)}
    for (gvr, key), obj in sorted(seen.items(), key=lambda kv: (kv[0][1].namespace, kv[0][1].name)):
        if gvr == DEPLOYMENTS and (gvr, key) not in ours and _is_konnector(obj):
            release = o.labels_of(obj).get("app.kubernetes.io/instance", "")
            refusals.append(
                f"another konnector runs as Deployment {key.namespace}/{key.name} (release "
                f"{release!r}); two konnectors would both write every object: remove it, or "
                "upgrade that one instead"
            )
    kept: set[str] = set()
    for t in targets(rendered, image):
        have = seen.get((t.gvr, t.key))
        if t.gvr == CLUSTER_ROLES and have is not None and _refusal(t, have) is None:
            kept.update(installed_groups(have))
    wanted = targets(rendered, image, [*asked, *kept])
    steps: list[Step] = []
    current: Version | None = None
    target_version: Version | None = None
    for t in wanted:
        have = seen.get((t.gvr, t.key))
        if t.gvr == DEPLOYMENTS:
            target_version = version_of(t.body)
            if have is not None:
                current = version_of(have)
        if have is None:
            steps.append(Step(t, create=True))
            continue
        reason = _refusal(t, have)
        if reason:
            refusals.append(reason)
            continue
        if t.gvr == NAMESPACES:
            continue  # rule 3: an existing Namespace is used as it is
        diff = differences(have, t.body)
        if diff:
            steps.append(Step(t, create=False, changes=tuple(diff)))
    crds = tuple(t.key.name for t in wanted if t.gvr == CRDS)
    if refusals:
        return InstallPlan("refused", (), tuple(refusals), current, target_version, crds)
    if not steps:
        return InstallPlan("up-to-date", (), (), current, target_version, crds)
    outcome: Outcome = "install" if current is None else "upgrade"
    roles = [t for t in wanted if t.kind in ("Role", "ClusterRole")]
    needs = requirements(steps, roles)
    return InstallPlan(outcome, tuple(steps), (), current, target_version, crds, needs)


def _rule_permissions(rules: Iterable[Mapping[str, Any]], namespace: str) -> list[Permission]:
    out: list[Permission] = []
    for rule in rules:
        names = list(rule.get("resourceNames") or []) or [""]
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    out.extend(
                        Permission(str(verb), str(group), str(resource), namespace, str(n))
                        for n in names
                    )
    return out


def requirements(
    steps: Sequence[Step], rendered_roles: Sequence[Target] = ()
) -> tuple[Requirement, ...]:
    """Rule 9 for the steps of a plan. `rendered_roles`: the Roles and ClusterRoles among the
    targets, whose rules a binding's escalation alternative needs (a binding whose role is
    up to date has no step of its own for the role)."""
    roles = {(t.kind, t.key.namespace, t.key.name): t for t in rendered_roles}
    out: list[Requirement] = []
    for step in steps:
        t = step.target
        base: tuple[Permission, ...] = (
            Permission("patch", t.gvr.group, t.gvr.resource, t.key.namespace, t.key.name),
        )
        if step.create:
            # A create cannot be limited to a name; the name is left out.
            base += (Permission("create", t.gvr.group, t.gvr.resource, t.key.namespace),)
        out.append(Requirement(f"to apply {t.label}", (base,)))
        if t.kind in ("Role", "ClusterRole"):
            own = (
                Permission("escalate", t.gvr.group, t.gvr.resource, t.key.namespace, t.key.name),
            )
            held = tuple(_rule_permissions(t.body.get("rules") or [], t.key.namespace))
            out.append(Requirement(f"to grant what {t.label} grants", (own, held)))
        elif t.kind in ("RoleBinding", "ClusterRoleBinding"):
            ref = t.body.get("roleRef") or {}
            ref_kind = str(ref.get("kind", ""))
            ref_ns = t.key.namespace if ref_kind == "Role" else ""
            role_gvr = ROLES if ref_kind == "Role" else CLUSTER_ROLES
            bind = (
                Permission(
                    "bind", role_gvr.group, role_gvr.resource, ref_ns, str(ref.get("name", ""))
                ),
            )
            role = roles.get((ref_kind, ref_ns, str(ref.get("name", ""))))
            alternatives: tuple[tuple[Permission, ...], ...] = (bind,)
            if role is not None:
                alternatives += (
                    tuple(_rule_permissions(role.body.get("rules") or [], t.key.namespace)),
                )
            out.append(
                Requirement(f"to bind {ref_kind} {ref.get('name', '')} in {t.label}", alternatives)
            )
    return tuple(out)


def permissions(reqs: Iterable[Requirement]) -> tuple[Permission, ...]:
    """Every distinct permission to ask about, in a stable order."""
    seen: dict[Permission, None] = {}
    for r in reqs:
        for alt in r.alternatives:
            for p in alt:
                seen.setdefault(p, None)
    return tuple(seen)


def missing(reqs: Iterable[Requirement], allowed: Mapping[Permission, bool]) -> tuple[str, ...]:
    """One line per unmet requirement, naming the permissions of its first (simplest)
    alternative that are not allowed; a permission not in `allowed` counts as denied."""
    out: list[str] = []
    for r in reqs:
        if any(all(allowed.get(p, False) for p in alt) for alt in r.alternatives):
            continue
        lacking = [str(p) for p in r.alternatives[0] if not allowed.get(p, False)]
        line = f"{r.why}: {'; '.join(lacking)}"
        if len(r.alternatives) > 1:
            line += " (or hold every permission it grants)"
        out.append(line)
    return tuple(out)
