"""The chart's RBAC, proven on a real consumer cluster: sufficient, and every grant needed.

`helm install` puts the chart on a fresh consumer cluster (rbac.boundResourceGroups
[example.org], leader election on). The real `konnector` process then runs with a token of the
chart's ServiceAccount (TokenRequest API) and the flags the chart's Deployment passes, while a
scenario walks through what the konnector does on a consumer: bind an API (CRD installed), sync
a Widget up and its status down, a conflict (annotation and Event), related Secrets and
ConfigMaps from the provider next to a Widget (copies created, updated and garbage-collected),
a provider schema change (CRD updated), a namespaced Binding, unbind (CRD deleted), autoBind
with pullPolicy None (ClusterBinding created and deleted, user CRD stamped), and Connection
deletion (kubeconfig Secret read afresh and released).

The consumer API server audits the ServiceAccount's requests, which is the ground truth,
independent of what the konnector logs:
 - sufficient: the scenario completes and no request was refused (403), except the two LISTs
   that unbinding makes for related copies when rbac.relatedResources is false (the konnector
   treats them as "none"; see values.yaml);
 - minimal: every (rule, resource, verb) the chart grants was the only grant authorizing at
   least one request the konnector made, so none can be dropped without breaking a step.
Both settings of rbac.relatedResources are run, since they render different rules.

The clusters are this test's own (like tests/e2e/test_konnector.py): the scenario installs CRDs,
Connections and bindings that would disturb the session's shared clusters.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore.api import keys
from kbcore.api.resources import CONFIGMAPS, EVENTS
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbshell.client import KubeClient
from tests.chart.audited import (
    NAMESPACE,
    RELEASE,
    WIDGETS_CRD,
    assert_every_grant_needed,
    audit_events,
    audit_policy,
    denied,
    gone,
    service_account_kubeconfig,
    service_account_user,
)
from tests.chart.conftest import CHART, Helm, Obj, by_kind, konnector_container
from tests.harness.clusters import Clusters, build_binaries, start_clusters
from tests.harness.konnector import (
    CLUSTERBINDINGS,
    CONNECTIONS,
    CRDS,
    NAMESPACES,
    SECRETS,
    WIDGETS,
    Konnector,
    Pair,
    eventually,
    wait_established,
)

pytestmark = pytest.mark.realcluster

SA_NAME = f"{RELEASE}-konnector"
SA_USER = service_account_user(NAMESPACE, SA_NAME)
BINDINGS = GVR("core.kube-bind.io", "v1alpha1", "bindings")
API_VERSION = "core.kube-bind.io/v1alpha1"
TIMEOUT = 60.0
SECRET_REF = {"namespace": NAMESPACE, "name": "provider-kubeconfig", "key": "kubeconfig"}
MANAGED_SELECTOR = f"{keys.LABEL_MANAGED}=true"

AUDIT_POLICY = audit_policy(SA_USER)


@pytest.fixture
def audited_clusters() -> Iterator[Clusters]:
    """A fresh provider and consumer whose API servers audit the konnector's requests."""
    clusters = start_clusters(
        ["provider", "consumer"], bin_dir=build_binaries(), audit_policy=AUDIT_POLICY
    )
    try:
        yield clusters
    finally:
        clusters.stop()


@pytest.mark.parametrize("related", [True, False], ids=["relatedResources", "noRelatedResources"])
def test_the_chart_rbac_is_sufficient_and_every_grant_is_needed(
    helm: Helm, audited_clusters: Clusters, tmp_path: Path, related: bool
) -> None:
    values = {
        "rbac": {"boundResourceGroups": ["example.org"], "relatedResources": related},
        "leaderElect": True,
    }
    pair = Pair(audited_clusters, tmp_path)
    try:
        s = Scenario(helm, pair, values, tmp_path)
        assert "--leader-elect" in konnector_container(s.objs)["args"]  # its Lease rules too
        s.install(related)
        s.sync_and_status()
        s.conflict()
        if related:
            s.related_resources()
        s.schema_change()
        s.delete_instance()
        s.unbind()
        s.auto_bind_with_pull_policy_none()
        s.delete_connections()
        assert s.konnector.terminate() == 0, s.konnector.log_tail()  # releases the Lease
        log = s.konnector.log_path.read_text()
    finally:
        pair.close()

    events = audit_events(audited_clusters.consumer, SA_USER)
    refused = denied(events, excused=lambda e: not related and _is_related_drain_list(e))
    assert not refused, f"the chart's RBAC refused the konnector: {refused}"
    assert "Forbidden" not in log, s.konnector.log_tail()

    roles = [*by_kind(s.objs, "ClusterRole"), *by_kind(s.objs, "Role")]
    assert_every_grant_needed(events, roles, NAMESPACE, who="konnector")


def test_without_bound_groups_the_konnector_is_unready_and_says_why(
    helm: Helm, audited_clusters: Clusters, tmp_path: Path
) -> None:
    """The install notes' warning, as it happens: with rbac.boundResourceGroups empty, a bound
    API's CRD is installed, but its cache cannot fill, /readyz names it, the log names the 403,
    and nothing reaches the provider."""
    pair = Pair(audited_clusters, tmp_path)
    try:
        s = Scenario(helm, pair, {"rbac": {"relatedResources": False}}, tmp_path)
        s.install(related=False, wait=False)
        k = s.konnector
        crd = ObjectKey("", "widgets.example.org")
        eventually(lambda: not gone(pair.consumer, CRDS, crd), TIMEOUT, "bound API's CRD")
        # Established, not only stored: until then the API server answers 404 for Widgets.
        wait_established(pair.consumer, [crd.name], TIMEOUT)
        pair.create_widgets(["w1"])

        def explained() -> str | None:
            status, body = k.readyz()
            denied = 'cannot list resource "widgets" in API group "example.org"'
            if status == 503 and any(denied in m for m in _log_messages(k)):
                return body
            return None

        body = eventually(explained, TIMEOUT, "unready, with a 403 for widgets in the log")
        assert "caches not synced: consumer/widgets.example.org" in body
        assert k.alive and pair.provider_widgets() == []
    finally:
        pair.close()


class Scenario:
    """The steps, each waiting for its effect; `c`/`p` are admin clients of consumer/provider."""

    def __init__(self, helm: Helm, pair: Pair, values: dict[str, Any], tmp: Path) -> None:
        self.helm, self.pair, self.values, self.tmp = helm, pair, values, tmp
        self.c, self.p = pair.consumer, pair.provider
        self.consumer_cluster = pair.clusters.consumer
        self.objs = helm.template(values, release=RELEASE, namespace=NAMESPACE)
        self.pokes = 0

    def install(self, related: bool, *, wait: bool = True) -> None:
        """The chart by `helm install`, the provider's API, the bundle, and the konnector."""
        c, p = self.c, self.p
        self.helm.run(
            "install",
            RELEASE,
            str(CHART),
            "-n",
            NAMESPACE,
            "--create-namespace",
            "-f",
            str(self.helm.values_file(self.values)),
            "--kubeconfig",
            str(self.consumer_cluster.kubeconfig),
        )
        _apply(p, CRDS, yaml.safe_load(WIDGETS_CRD.read_text()))
        kubeconfig = self.pair.clusters.provider.kubeconfig.read_bytes()
        _apply(
            c,
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"namespace": NAMESPACE, "name": "provider-kubeconfig"},
                "data": {"kubeconfig": base64.b64encode(kubeconfig).decode()},
            },
        )
        _apply(
            c,
            CONNECTIONS,
            {
                "apiVersion": API_VERSION,
                "kind": "Connection",
                "metadata": {"name": "demo-provider"},
                "spec": {"kubeconfigSecretRef": SECRET_REF},
            },
        )
        spec: Obj = {
            "connectionRef": {"name": "demo-provider"},
            "apis": [{"name": "widgets.example.org"}],
        }
        if related:
            spec["relatedResources"] = [
                {
                    "group": "",
                    "resource": r,
                    "direction": "FromProvider",
                    "selector": {"labelSelector": {"matchLabels": {"app": "widget"}}},
                }
                for r in ("secrets", "configmaps")
            ]
        _apply(
            c,
            CLUSTERBINDINGS,
            {
                "apiVersion": API_VERSION,
                "kind": "ClusterBinding",
                "metadata": {"name": "widgets"},
                "spec": spec,
            },
        )
        # A namespaced Binding of the same API: the ClusterBinding wins, the Binding says so.
        _apply(
            c,
            BINDINGS,
            {
                "apiVersion": API_VERSION,
                "kind": "Binding",
                "metadata": {"name": "widgets", "namespace": "default"},
                "spec": {
                    "connectionRef": {"name": "demo-provider"},
                    "apis": [{"name": "widgets.example.org"}],
                },
            },
        )

        # The konnector as the chart runs it: its ServiceAccount and its flags (the bind
        # addresses are free loopback ports here).
        args = [
            a
            for a in konnector_container(self.objs)["args"]
            if not a.startswith(("--metrics-bind-address", "--health-probe-bind-address"))
        ]
        kubeconfig_path = service_account_kubeconfig(
            self.consumer_cluster, self.tmp / "sa.kc", NAMESPACE, SA_NAME, "consumer"
        )
        with KubeClient.from_kubeconfig_file(kubeconfig_path) as sa:
            review = sa.create(
                GVR("authentication.k8s.io", "v1", "selfsubjectreviews"),
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
        assert review["status"]["userInfo"]["username"] == SA_USER
        self.konnector = Konnector(
            kubeconfig_path, self.tmp / "konnector.log", namespace=NAMESPACE, extra=args
        )
        self.pair.konnectors.append(self.konnector)
        self.konnector.start()
        if wait:
            self.konnector.wait_ready()
            self.pair.wait_bound()

    def sync_and_status(self) -> None:
        c, p = self.c, self.p
        self.pair.create_widgets(["w1"])
        eventually(
            lambda: [w["spec"] for w in self.pair.provider_widgets()] == [{"size": "w1"}],
            TIMEOUT,
            "w1 copied to the provider",
        )
        key = ObjectKey("default", "w1")
        p.patch(WIDGETS, key, {"status": {"phase": "Ready"}}, "merge", "e2e", False, "status")
        eventually(
            lambda: (c.get(WIDGETS, key).get("status") or {}).get("phase") == "Ready",
            TIMEOUT,
            "w1 status back on the consumer",
        )

    def conflict(self) -> None:
        """A foreign provider object of the same name: annotated and reported, not written."""
        c, p = self.c, self.p
        _apply(
            p,
            WIDGETS,
            {
                "apiVersion": "example.org/v1",
                "kind": "Widget",
                "metadata": {"namespace": "default", "name": "taken"},
                "spec": {"size": "theirs"},
            },
        )
        self.pair.create_widgets(["taken"])

        def reported() -> bool:
            w = c.get(WIDGETS, ObjectKey("default", "taken"))
            annotated = keys.ANNOTATION_CONFLICT in (w["metadata"].get("annotations") or {})
            events = c.list(EVENTS, "default")[0]
            return annotated and any(e["involvedObject"].get("name") == "taken" for e in events)

        eventually(reported, TIMEOUT, "conflict annotation and Event on the consumer")

    def related_resources(self) -> None:
        """Next to a Widget in team-x (kbcore.control.related T1; the konnector never creates a consumer
        namespace, T5): copied, updated, collected."""
        c, p = self.c, self.p
        for cluster in (c, p):
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-x"}}
            _apply(cluster, NAMESPACES, namespace)
        self.pair.create_widgets(["related"], "team-x")
        meta = {"namespace": "team-x", "labels": {"app": "widget"}}
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {**meta, "name": "creds"}}
        config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "name": "cfg"}}

        def poke() -> None:
            """Provider Secrets are not watched: the binding's next reconcile (30 s resync, or
            any change of the binding) copies them. Change the binding, not the wait."""
            self.pokes += 1
            note = {"metadata": {"annotations": {"test/poke": str(self.pokes)}}}
            c.patch(CLUSTERBINDINGS, ObjectKey("", "widgets"), note, "merge", "e2e", False)

        def copied(gvr: GVR, name: str, data: dict[str, str]) -> bool:
            try:
                return c.get(gvr, ObjectKey("team-x", name)).get("data") == data
            except ApiError:
                return False

        for token, colour in (("s3cr3t", "blue"), ("rotated", "red")):  # created, then applied
            _apply(p, SECRETS, {**secret, "stringData": {"token": token}})
            _apply(p, CONFIGMAPS, {**config, "data": {"colour": colour}})
            poke()
            b64 = base64.b64encode(token.encode()).decode()
            eventually(
                lambda b64=b64: copied(SECRETS, "creds", {"token": b64}), TIMEOUT, f"Secret {token}"
            )
            eventually(
                lambda colour=colour: copied(CONFIGMAPS, "cfg", {"colour": colour}),
                TIMEOUT,
                f"ConfigMap {colour}",
            )
        for gvr, name in ((SECRETS, "creds"), (CONFIGMAPS, "cfg")):
            unlabel = {"metadata": {"labels": {"app": None}}}
            p.patch(gvr, ObjectKey("team-x", name), unlabel, "merge", "e2e", False)
            poke()
            eventually(
                lambda gvr=gvr, name=name: gone(c, gvr, ObjectKey("team-x", name)),
                TIMEOUT,
                f"{gvr.resource} copy garbage-collected",
            )

    def schema_change(self) -> None:
        """A provider printer column follows to the consumer CRD (updatePolicy Always)."""
        c, p = self.c, self.p
        columns = [{"name": "Colour", "type": "string", "jsonPath": ".spec.colour"}]
        crd = p.get(CRDS, ObjectKey("", "widgets.example.org"))
        crd["spec"]["versions"][0]["additionalPrinterColumns"] = columns
        p.update(CRDS, crd)

        def followed() -> bool:
            version = c.get(CRDS, ObjectKey("", "widgets.example.org"))["spec"]["versions"][0]
            return version.get("additionalPrinterColumns") == columns

        eventually(followed, TIMEOUT, "printer column on the consumer CRD")

    def delete_instance(self) -> None:
        c, p = self.c, self.p
        c.delete(WIDGETS, ObjectKey("default", "w1"))
        eventually(lambda: gone(p, WIDGETS, ObjectKey("default", "w1")), TIMEOUT, "w1 copy gone")
        eventually(lambda: gone(c, WIDGETS, ObjectKey("default", "w1")), TIMEOUT, "w1 released")

    def unbind(self) -> None:
        c = self.c
        c.delete(BINDINGS, ObjectKey("default", "widgets"))
        c.delete(CLUSTERBINDINGS, ObjectKey("", "widgets"))
        for gvr, key in (
            (CLUSTERBINDINGS, ObjectKey("", "widgets")),
            (BINDINGS, ObjectKey("default", "widgets")),
            (CRDS, ObjectKey("", "widgets.example.org")),
        ):
            eventually(
                lambda gvr=gvr, key=key: gone(c, gvr, key), TIMEOUT, f"{gvr.resource} {key} gone"
            )

    def auto_bind_with_pull_policy_none(self) -> None:
        """A CRD the user installed is stamped, not replaced; the ClusterBinding is made."""
        c = self.c
        user_crd = yaml.safe_load(WIDGETS_CRD.read_text())
        del user_crd["metadata"]["labels"]
        _apply(c, CRDS, user_crd)
        _apply(
            c,
            CONNECTIONS,
            {
                "apiVersion": API_VERSION,
                "kind": "Connection",
                "metadata": {"name": "auto"},
                "spec": {
                    "kubeconfigSecretRef": SECRET_REF,
                    "autoBind": True,
                    "schema": {"pullPolicy": "None"},
                },
            },
        )

        def stamped() -> bool:
            crd = c.get(CRDS, ObjectKey("", "widgets.example.org"))
            return (crd["metadata"].get("labels") or {}).get(keys.LABEL_MANAGED) == "true"

        auto = ObjectKey("", "auto")
        eventually(lambda: not gone(c, CLUSTERBINDINGS, auto), TIMEOUT, "autoBind ClusterBinding")
        eventually(stamped, TIMEOUT, "user CRD stamped with the managed label")

    def delete_connections(self) -> None:
        """The autoBind ClusterBinding goes with its Connection; the last one releases the
        kubeconfig Secret."""
        c = self.c
        c.delete(CONNECTIONS, ObjectKey("", "auto"))
        eventually(lambda: gone(c, CLUSTERBINDINGS, ObjectKey("", "auto")), TIMEOUT, "auto CB gone")
        eventually(lambda: gone(c, CONNECTIONS, ObjectKey("", "auto")), TIMEOUT, "auto gone")
        c.delete(CONNECTIONS, ObjectKey("", "demo-provider"))
        eventually(
            lambda: gone(c, CONNECTIONS, ObjectKey("", "demo-provider")), TIMEOUT, "demo gone"
        )

        def released() -> bool:
            secret = c.get(SECRETS, ObjectKey(NAMESPACE, "provider-kubeconfig"))
            return keys.FINALIZER_CLEANUP not in (secret["metadata"].get("finalizers") or [])

        eventually(released, TIMEOUT, "kubeconfig Secret released")


def _log_messages(k: Konnector) -> list[str]:
    """Each log record's message with its fields (the values, such as an `error`, are fields:
    messages are constant)."""
    out = []
    for line in k.log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        fields = (f"{key}={value}" for key, value in record.items() if key not in ("ts", "msg"))
        out.append(" ".join([str(record.get("msg", "")), *fields]))
    return out


def _is_related_drain_list(ev: dict[str, Any]) -> bool:
    """Unbinding lists related copies of both kinds; refused, they count as none."""
    ref = ev["objectRef"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(ev.get("requestURI", "")).query)
    return (
        ev["verb"] == "list"
        and ref.get("resource") in ("secrets", "configmaps")
        and query.get("labelSelector") == [MANAGED_SELECTOR]
    )


def _apply(client: KubeClient, gvr: GVR, obj: Obj) -> Obj:
    meta = obj["metadata"]
    key = ObjectKey(meta.get("namespace", ""), meta["name"])
    return client.patch(gvr, key, obj, "apply", "e2e", True)
