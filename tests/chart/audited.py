"""What the RBAC-in-practice tests of both charts share: a ServiceAccount's kubeconfig from the
TokenRequest API, the API server's audit log of that ServiceAccount's requests, and the proof
that every grant of a chart's roles was needed (the only grant authorizing some request).

test_rbac_in_practice.py (konnector) and test_backend_rbac_in_practice.py use it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbshell.client import KubeClient
from tests.chart.conftest import REPO, Obj, rule_allows
from tests.harness.clusters import Cluster

RELEASE = "kb"
"""The release each test installs, into NAMESPACE."""
NAMESPACE = "kube-bind"
WIDGETS_CRD = REPO / "examples" / "scenarios" / "_common" / "widgets-crd.yaml"
"""The API the scenarios bind and sync."""

Event = dict[str, Any]
Grant = tuple[str, int, str, str]
"""(Role kind, rule index, resource, verb): one thing a rule allows."""


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def audit_policy(user: str) -> Obj:
    """Metadata of `user`'s requests, nothing else."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "users": [user]}, {"level": "None"}],
    }


def service_account_kubeconfig(
    cluster: Cluster, path: Path, namespace: str, name: str, cluster_name: str
) -> Path:
    """A kubeconfig with a token of the chart's ServiceAccount, as the Pod would have it."""
    status, data = cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    assert status == 201, data
    ca = base64.b64encode(cluster.ca.cert.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": cluster.url, "certificate-authority-data": ca},
            }
        ],
        "users": [{"name": name, "user": {"token": data["status"]["token"]}}],
        "contexts": [{"name": name, "context": {"cluster": cluster_name, "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def audit_events(cluster: Cluster, user: str) -> list[Event]:
    """`user`'s resource requests, once each (a watch logs two stages)."""
    events: dict[str, Event] = {}
    for line in cluster.audit_log.read_text().splitlines():
        ev = json.loads(line)
        if ev.get("user", {}).get("username") == user and "objectRef" in ev:
            events[ev["auditID"]] = ev
    assert events, f"the audit log has no request of {user}"
    return list(events.values())


def describe(ev: Event, *, detail: bool = True) -> str:
    ref = ev["objectRef"]
    what = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    group = ref.get("apiGroup", "")
    out = f"{ev['verb']} {what}.{group}" if group else f"{ev['verb']} {what}"
    if detail:
        out += f" {ev.get('requestURI', '')}"
    return out


def denied(
    events: Iterable[Event], *, excused: Callable[[Event], bool] = lambda _: False
) -> list[str]:
    """The requests refused (403), but for those `excused`."""
    return sorted(
        describe(e)
        for e in events
        if e.get("responseStatus", {}).get("code") == 403 and not excused(e)
    )


def grants(roles: Sequence[Obj]) -> dict[Grant, Obj]:
    """Every (role, rule, resource, verb) the roles grant, with its rule."""
    out: dict[Grant, Obj] = {}
    for role in roles:
        for i, rule in enumerate(role["rules"]):
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out[(role["kind"], i, resource, verb)] = rule
    return out


def authorizers(ev: Event, roles: Sequence[Obj], namespace: str) -> list[Grant]:
    """The grants that allow an audited request (a Role only in `namespace`, its own)."""
    ref = ev["objectRef"]
    resource, sub = ref.get("resource", ""), ref.get("subresource", "")
    found = []
    for (kind, i, granted, verb), rule in grants(roles).items():
        if kind == "Role" and ref.get("namespace") != namespace:
            continue
        if verb != ev["verb"] or granted not in ("*", resource, f"{resource}/{sub}"):
            continue
        one_resource = {**rule, "resources": [granted], "verbs": [verb]}
        group, name = ref.get("apiGroup", ""), ref.get("name", "")
        if rule_allows(one_resource, group, resource, verb, subresource=sub, name=name):
            found.append((kind, i, granted, verb))
    return found


def assert_every_grant_needed(
    events: Sequence[Event],
    roles: Sequence[Obj],
    namespace: str,
    *,
    who: str,
    unrequested_verbs: Iterable[str] = (),
) -> None:
    """Every grant of `roles` was the only grant authorizing at least one request, but for
    grants of `unrequested_verbs`, which no request names (a caller proves those otherwise)."""
    skip = set(unrequested_verbs)
    needed = set()
    for e in events:
        found = authorizers(e, roles, namespace)
        if len(found) == 1:
            needed.add(found[0])
    unused = sorted(g for g in grants(roles) if g[3] not in skip and g not in needed)
    used = sorted({describe(e, detail=False) for e in events})
    assert not unused, (
        f"granted but never the only grant of a {who} request: {unused}\nrequests made: {used}"
    )


def gone(client: KubeClient, gvr: GVR, key: ObjectKey) -> bool:
    try:
        client.get(gvr, key)
    except ApiError as err:
        return err.code == 404
    return False
