"""Provider namespaces the konnector created, and when it removes them.

Instance sync creates a provider namespace when a copy needs one, labelled `managed=true` and
`consumer-cluster-uid=<localClusterUID>`, as upstream does. Upstream never removes them; we do,
on unbind (docs/design.md, "Differences from upstream"), but only when that is certainly safe:

 1. Only namespaces carrying both of our labels (never one that existed before us) and, for a
    namespaced Binding, only the provider namespace its own namespace maps to.
 2. Only when the namespace is empty of every listable namespaced resource the provider serves
    (from discovery), ignoring what the cluster itself puts in every namespace (the
    `kube-root-ca.crt` ConfigMap, the `default` ServiceAccount, Events). Anything else — a
    copy another binding still owns, a PVC a provider controller made — keeps it.
 3. A resource that cannot be listed (Forbidden, not found) means emptiness is unproven: the
    namespace stays. A transient failure (5xx, 429) is raised, so the caller retries instead
    of leaving the namespace behind. The delete is best effort and carries the UID.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kbcore import objects as o
from kbcore.actions import PROVIDER, Action, CreateNamespace, Delete
from kbcore.api import keys
from kbcore.api.resources import NAMESPACES
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Discovery, Failed, List, Observed, need, need_all

CLUSTER_ITEMS = {
    ("", "configmaps"): {"kube-root-ca.crt"},
    ("", "serviceaccounts"): {"default"},
}
"""Objects the cluster itself creates in every namespace."""
IGNORED_GROUPS_RESOURCES = {("", "events"), ("events.k8s.io", "events")}


def owned_namespace(cluster: str, name: str, local_cluster_uid: str) -> CreateNamespace:
    """Create namespace `name` as ours: every namespace the konnector creates (for a synced
    copy, a related copy or the heartbeat Lease) carries the same two labels, which are what
    `plan_namespace_cleanup` later recognises."""
    labels = {keys.LABEL_MANAGED: "true", keys.ANNOTATION_CONSUMER_CLUSTER_UID: local_cluster_uid}
    return CreateNamespace(cluster, name, labels=labels)


def created_namespaces(local_cluster_uid: str) -> List:
    """The read listing provider namespaces instance sync created for this consumer."""
    selector = (
        f"{keys.LABEL_MANAGED}=true,{keys.ANNOTATION_CONSUMER_CLUSTER_UID}={local_cluster_uid}"
    )
    return List(PROVIDER, NAMESPACES, label_selector=selector)


def namespaced_resources(observed: Observed) -> list[GVR]:
    """Every listable namespaced resource the provider serves (preferred versions)."""
    core, groups = need_all(
        observed, (Discovery(PROVIDER, "/api/v1"), Discovery(PROVIDER, "/apis"))
    )
    _raise_if_transient(groups)
    if not isinstance(groups, Mapping):
        raise ValueError("discovery of /apis failed")  # emptiness unprovable
    docs: list[tuple[str, Any]] = [("", core)]
    paths: list[tuple[str, Discovery]] = []
    for g in o.list_at(groups, "groups"):
        pref = g.get("preferredVersion") if isinstance(g, Mapping) else None
        gv = pref.get("groupVersion") if isinstance(pref, Mapping) else None
        if isinstance(gv, str):
            paths.append((str(g.get("name", "")), Discovery(PROVIDER, f"/apis/{gv}")))
    results = need_all(observed, tuple(d for _, d in paths))
    docs.extend((group, doc) for (group, _), doc in zip(paths, results, strict=True))
    out: list[GVR] = []
    for group, doc in docs:
        _raise_if_transient(doc)
        if not isinstance(doc, Mapping):
            raise ValueError(f"discovery of group {group!r} failed")  # emptiness unprovable
        _, version = o.split_api_version(str(doc.get("groupVersion", "")))
        for r in o.list_at(doc, "resources"):
            name = r.get("name", "") if isinstance(r, Mapping) else ""
            if (
                "/" in name
                or not r.get("namespaced")
                or "list" not in o.list_at(r, "verbs")
                or (group, name) in IGNORED_GROUPS_RESOURCES
            ):
                continue
            out.append(GVR(group, version, name))
    return sorted(out)


def plan_namespace_cleanup(
    observed: Observed,
    *,
    local_cluster_uid: str,
    only: set[str] | None = None,
    ignore: frozenset[tuple[GVR, ObjectKey]] = frozenset(),
) -> tuple[Action, ...]:
    """Deletes for our provider namespaces (in `only`, if given) that are provably empty;
    objects in `ignore` (being deleted by the same plan) do not count."""
    listed = need(observed, created_namespaces(local_cluster_uid))
    _raise_if_transient(listed)
    candidates = [
        ns
        for ns in (listed if isinstance(listed, list) else [])
        if not o.is_deleting(ns)
        and (only is None or o.name(ns) in only)
        and o.labels_of(ns).get(keys.ANNOTATION_CONSUMER_CLUSTER_UID) == local_cluster_uid
    ]
    if not candidates:
        return ()
    try:
        resources = namespaced_resources(observed)
    except ValueError:
        return ()
    reads = tuple(List(PROVIDER, gvr, o.name(ns)) for ns in candidates for gvr in resources)
    results = dict(zip(reads, need_all(observed, reads), strict=True))
    actions: list[Action] = []
    for ns in candidates:
        empty = True
        for gvr in resources:
            items = results[List(PROVIDER, gvr, o.name(ns))]
            _raise_if_transient(items)
            if isinstance(items, Failed) or not isinstance(items, list):
                empty = False
                break
            ignored = CLUSTER_ITEMS.get((gvr.group, gvr.resource), set())
            if any(
                o.name(i) not in ignored and (gvr, ObjectKey(o.name(ns), o.name(i))) not in ignore
                for i in items
            ):
                empty = False
                break
        if empty:
            ref = ObjectRef(PROVIDER, NAMESPACES, ObjectKey("", o.name(ns)))
            actions.append(Delete(ref, o.uid(ns), best_effort=True))
    return tuple(actions)


def _raise_if_transient(result: Any) -> None:
    if isinstance(result, Failed) and result.error.is_retryable:
        raise result.error
