"""Laws of the konnector installer's planner (kbcore/views/install.py), over the real rendering
(kbshell/data/konnector.yaml) and observed clusters a server could hold: the rendered objects as
a server returns them (defaults and status added), some of them out of date, some missing, in
any order.

Deterministic; idempotent (a cluster holding the rendering plans nothing, and applying a plan
leaves nothing to plan); an upgrade rewrites exactly the objects that differ; the image override
changes only the konnector container's image; nothing outside the rendering is ever a step;
a same-named object that is not ours refuses the whole plan with its name in the reason.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kbcore import objects as o
from kbcore.views import install as ins
from kbshell.install import rendered_manifests

RENDERED = rendered_manifests()
IMAGES = st.sampled_from(
    [None, "registry.example/konnector:1", "r.example:5000/k@sha256:" + "a" * 64]
)


def served(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """`body` as a server might return it: every map may gain fields (defaults), the object
    gains metadata the server sets and a status."""
    out = o.deepcopy(body)
    stack: list[Any] = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
            if rng.random() < 0.2:
                node[f"x-default-{rng.randrange(100)}"] = rng.choice(["d", 1, True, {"k": "v"}])
        elif isinstance(node, list):
            stack.extend(node)
    meta = out["metadata"]
    meta.update(uid=f"uid-{rng.randrange(10**6)}", resourceVersion=str(rng.randrange(1, 10**6)))
    meta.setdefault("annotations", {})["x"] = "y"
    out["status"] = {"observed": rng.randrange(10)}
    return out


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, (*path, i))]
    return [path]


def mutable(path: tuple[Any, ...]) -> bool:
    """Leaves an out-of-date copy of ours may differ in: not its identity, not the owner
    labels (without them it is not ours)."""
    if path[:1] in (("apiVersion",), ("kind",)):
        return False
    if path[:1] == ("metadata",):
        return path[1:2] == ("labels",) and path[2] not in ins.OWNER_LABELS
    return True


def mutate(body: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], tuple[Any, ...]]:
    out = o.deepcopy(body)
    path = rng.choice([p for p in leaves(out) if mutable(p)])
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    old = node[path[-1]]
    node[path[-1]] = (
        (not old) if isinstance(old, bool) else old + 1 if isinstance(old, int) else f"{old}-old"
    )
    return out, path


@st.composite
def clusters(draw: st.DrawFn) -> tuple[str | None, list[dict[str, Any]], set[str], set[str]]:
    """(image, observed objects, labels of missing targets, labels of out-of-date ones)."""
    image = draw(IMAGES)
    rng = draw(st.randoms(use_true_random=False))
    observed, missing, stale = [], set(), set()
    for t in ins.targets(RENDERED, image):
        fate = draw(st.sampled_from(["same", "same", "missing", "stale"]))
        if fate == "missing":
            missing.add(t.label)
            continue
        body = t.body
        if fate == "stale" and t.kind != "Namespace":
            body, _ = mutate(body, rng)
            stale.add(t.label)
        observed.append(served(body, rng))
    observed.append(served({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "kube-bind"}}, rng))  # fmt: skip
    return image, draw(st.permutations(observed)), missing, stale


def labels(p: ins.InstallPlan) -> set[str]:
    return {s.target.label for s in p.steps}


def applied(
    p: ins.InstallPlan, observed: list[dict[str, Any]], rng: random.Random
) -> list[dict[str, Any]]:
    """The cluster after the plan's steps (each object replaced by the applied one, served)."""
    written = {(s.target.gvr, s.target.key): s.target.body for s in p.steps}
    out = []
    for obj in observed:
        gvr = ins._gvr(obj)
        key = o.ObjectKey("" if gvr in ins.CLUSTER_SCOPED else o.namespace(obj), o.name(obj))
        if (gvr, key) not in written:
            out.append(obj)
    return out + [served(b, rng) for b in written.values()]


@given(clusters(), st.randoms(use_true_random=False))
def test_deterministic_and_order_independent(cluster: Any, rng: random.Random) -> None:
    image, observed, _, _ = cluster
    shuffled = list(observed)
    rng.shuffle(shuffled)
    assert ins.plan(RENDERED, observed, image) == ins.plan(RENDERED, shuffled, image)


@given(clusters(), st.randoms(use_true_random=False))
def test_steps_are_exactly_what_is_missing_or_differs_and_applying_them_leaves_nothing(
    cluster: Any, rng: random.Random
) -> None:
    image, observed, missing, stale = cluster
    p = ins.plan(RENDERED, observed, image)
    assert labels(p) == missing | stale
    assert {s.target.label for s in p.steps if s.create} == missing
    assert all(s.changes for s in p.steps if not s.create)
    if not p.steps:
        assert p.outcome == "up-to-date"
    elif "Deployment kube-bind/kube-bind-konnector" in missing:
        assert p.outcome == "install" and p.current is None
    else:
        assert p.outcome == "upgrade" and p.current is not None
    again = ins.plan(RENDERED, applied(p, observed, rng), image)
    assert again.outcome == "up-to-date" and again.steps == ()


@given(clusters())
def test_steps_keep_the_apply_order_and_never_leave_the_rendering(cluster: Any) -> None:
    image, observed, _, _ = cluster
    p = ins.plan(RENDERED, observed, image)
    order = [t.label for t in ins.targets(RENDERED, image)]
    got = [s.target.label for s in p.steps]
    assert got == [label for label in order if label in set(got)]
    kinds = [t.kind for t in ins.targets(RENDERED, image)]
    assert kinds[:4] == ["CustomResourceDefinition"] * 3 + ["Namespace"]
    assert kinds[4] == "ServiceAccount" and kinds[-1] == "Deployment"
    assert kinds.index("ClusterRoleBinding") > kinds.index("ClusterRole")
    assert kinds.index("RoleBinding") > kinds.index("Role")


@given(IMAGES.filter(lambda i: i is not None))
def test_the_image_override_replaces_only_the_konnector_image(image: str) -> None:
    default = {t.label: t.body for t in ins.targets(RENDERED, None)}
    over = {t.label: t.body for t in ins.targets(RENDERED, image)}
    assert default.keys() == over.keys()
    changed = {k for k in default if not o.json_equal(default[k], over[k])}
    deployment = "Deployment kube-bind/kube-bind-konnector"
    assert changed == (
        {deployment} if image != ins.version_of(default[deployment]).image else set()
    )
    containers = over[deployment]["spec"]["template"]["spec"]["containers"]
    index = next(i for i, c in enumerate(containers) if c["name"] == ins.CONTAINER)
    assert ins.differences(default[deployment], over[deployment]) in (
        [], [f"spec.template.spec.containers[{index}].image"],
    )  # fmt: skip
    assert ins.version_of(over[deployment]).image == image


FOREIGN = st.sampled_from(
    [
        t
        for t in ins.targets(RENDERED, None)
        if t.kind not in ("Namespace", "CustomResourceDefinition")
    ]
)


@given(
    clusters(),
    FOREIGN,
    st.sampled_from(["unlabelled", "helm", "deleting"]),
    st.randoms(use_true_random=False),
)
def test_a_same_named_object_not_ours_refuses_everything(
    cluster: Any, foreign: ins.Target, how: str, rng: random.Random
) -> None:
    image, observed, _, _ = cluster
    others = [
        ob
        for ob in observed
        if (ob["kind"], o.namespace(ob), o.name(ob))
        != (foreign.kind, foreign.key.namespace, foreign.key.name)
    ]
    obj = served(foreign.body, rng)
    if how == "unlabelled":
        obj["metadata"]["labels"] = {"app": "mine"}
    elif how == "helm":
        obj["metadata"]["annotations"][ins.HELM_RELEASE_ANNOTATION] = "theirs"
    else:
        obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    p = ins.plan(RENDERED, [*others, obj], image)
    assert p.outcome == "refused" and p.steps == () and p.needs == ()
    assert any(r.startswith(foreign.label) for r in p.refusals), p.refusals


@given(
    clusters(), st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=3)
)
def test_an_existing_namespace_is_used_as_it_is(cluster: Any, labels_: dict[str, str]) -> None:
    image, observed, _, _ = cluster
    others = [ob for ob in observed if ob["kind"] != "Namespace"]
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "kube-bind", "labels": labels_},
    }
    p = ins.plan(RENDERED, [*others, ns], image)
    assert p.outcome != "refused"
    assert "Namespace kube-bind" not in labels(p)


GROUPS = st.sets(st.sampled_from(["a.example", "b.example", "c.example.org", "d"]))


@given(GROUPS, GROUPS, IMAGES)
def test_bound_groups_are_only_ever_added(
    installed: set[str], asked: set[str], image: str | None
) -> None:
    cluster = [t.body for t in ins.targets(RENDERED, image, installed)]
    p = ins.plan(RENDERED, cluster, image, sorted(asked))
    role = next(
        t for t in ins.targets(RENDERED, image, installed | asked) if t.kind == "ClusterRole"
    )
    if asked <= installed:
        assert p.outcome == "up-to-date"
    else:
        assert [s.target.label for s in p.steps] == [role.label]
        assert o.json_equal(p.steps[0].target.body, role.body)
        assert ins.installed_groups(p.steps[0].target.body) == tuple(sorted(installed | asked))
