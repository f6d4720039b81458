"""kbsim's `related-within-trust-boundary` invariant (kbsim/invariants.py) catches each way a
konnector write can break the trust boundary of related resources (kbcore.control.related T1-T6), judged
against the world's truth at the instant of the write, and lets every allowed write through.

Each test builds a bound world from a small scenario, then makes one write *as the konnector*
(the monitor judges only the konnector's writes) and reads the monitor's verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import CLUSTERBINDINGS, NAMESPACES, SECRETS
from kbcore.objects import GVR, ObjectKey
from kbsim import scenario
from kbsim.apiserver import ADMIN
from kbsim.world import World

WIDGETS = GVR("example.org", "v1", "widgets")
COMMON = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "_common"
TRUST = "related-within-trust-boundary"

SCENARIO = f"""
name: invariants
clusters: [provider, consumer]
konnector: {{cluster: consumer, namespace: kube-bind}}
setup:
  - {{cluster: provider, file: {COMMON}/widgets-crd.yaml}}
  - {{cluster: consumer, file: {COMMON}/bundle.yaml}}
  - cluster: consumer
    object:
      apiVersion: core.kube-bind.io/v1alpha1
      kind: ClusterBinding
      metadata: {{name: widgets}}
      spec:
        connectionRef: {{name: demo-provider}}
        apis: [{{name: widgets.example.org}}]
        relatedResources:
          - {{resource: secrets, direction: FromProvider}}
          - resource: secrets
            direction: FromConsumer
            selector: {{labelSelector: {{matchLabels: {{share: up}}}}}}
  - cluster: consumer
    object: {{apiVersion: v1, kind: Namespace, metadata: {{name: team-x}}}}
steps: []
"""


@pytest.fixture
def world(tmp_path: Path) -> World:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    w = scenario.build_world(scenario.load(path), seed=3)
    assert w.settle(30)
    widget = {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"namespace": "default", "name": "w1"},
        "spec": {"size": "s"},
    }
    w.user_call(lambda: w.clusters["consumer"].create(WIDGETS, widget, user=ADMIN))
    assert w.settle(30)
    assert w.monitor.violations == []
    return w


def binding_uid(w: World) -> str:
    return o.uid(w.clusters["consumer"].get(CLUSTERBINDINGS, ObjectKey("", "widgets")))


def copy_of(
    w: World, key: str, *, uid: str | None = None, secret_type: str = "Opaque"
) -> dict[str, Any]:
    ns, name = key.split("/")
    annotations = {
        keys.ANNOTATION_CONSUMER_CLUSTER_UID: "x",
        keys.ANNOTATION_RELATED_BINDING: binding_uid(w) if uid is None else uid,
    }
    meta = {
        "namespace": ns,
        "name": name,
        "labels": {keys.LABEL_MANAGED: "true"},
        "annotations": annotations,
    }
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": secret_type}


def as_konnector(w: World, cluster: str, gvr: GVR, obj: dict[str, Any]) -> list[str]:
    """Create `obj` as the konnector would; the trust-boundary violations it caused."""
    before = len(w.monitor.violations)
    w.as_konnector(lambda: w.clusters[cluster].create(gvr, obj, user=ADMIN))
    return [m for name, m in w.monitor.violations[before:] if name == TRUST]


def user_secret(w: World, cluster: str, key: str, labels: dict[str, str]) -> None:
    ns, name = key.split("/")
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": ns, "name": name}}
    obj["metadata"]["labels"] = labels
    w.user_call(lambda: w.clusters[cluster].create(SECRETS, obj, user=ADMIN))


def test_a_copy_next_to_a_bound_object_is_allowed(world: World) -> None:
    assert as_konnector(world, "consumer", SECRETS, copy_of(world, "default/creds")) == []


def test_t1_a_copy_where_the_binding_syncs_nothing(world: World) -> None:
    (message,) = as_konnector(world, "consumer", SECRETS, copy_of(world, "team-x/creds"))
    assert "create of consumer secrets team-x/creds" in message
    assert "where binding widgets syncs no object (T1)" in message


def test_t1_allows_what_a_stale_read_showed(world: World) -> None:
    consumer = world.clusters["consumer"]
    extra = {"apiVersion": "example.org/v1", "kind": "Widget", "spec": {"size": "s"},
             "metadata": {"namespace": "team-x", "name": "w2"}}  # fmt: skip
    world.user_call(lambda: consumer.create(WIDGETS, extra, user=ADMIN))
    world.inject("stale-reads", {"cluster": "consumer", "duration": "60s"})
    # The Widget goes (no finalizer yet: at once), but the konnector may still read it.
    world.user_call(lambda: consumer.delete(WIDGETS, ObjectKey("team-x", "w2"), user=ADMIN))
    assert as_konnector(world, "consumer", SECRETS, copy_of(world, "team-x/a")) == []
    world.advance(61)  # the fault is over: what the konnector reads is the truth again
    assert len(as_konnector(world, "consumer", SECRETS, copy_of(world, "team-x/b"))) == 1


@pytest.mark.parametrize(
    "namespace", ["kube-system", "kube-public", "kube-node-lease", "kube-bind"]
)
def test_t2_a_copy_in_a_kube_or_the_konnectors_namespace(world: World, namespace: str) -> None:
    messages = as_konnector(world, "consumer", SECRETS, copy_of(world, f"{namespace}/creds"))
    assert f"a related copy in namespace {namespace} (T2)" in messages[0]


def test_t3_a_copy_named_kube(world: World) -> None:
    (message,) = as_konnector(world, "consumer", SECRETS, copy_of(world, "default/kube-x"))
    assert message.endswith("a related copy named kube-x (T3)")


@pytest.mark.parametrize(
    "secret_type", ["kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"]
)
def test_t4_a_copy_of_a_credential_type(world: World, secret_type: str) -> None:
    body = copy_of(world, "default/creds", secret_type=secret_type)
    (message,) = as_konnector(world, "consumer", SECRETS, body)
    assert message.endswith(f"a related copy of type {secret_type} (T4)")


def test_t5_a_consumer_namespace_created(world: World) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "team-new", "labels": {keys.LABEL_MANAGED: "true"}}}  # fmt: skip
    (message,) = as_konnector(world, "consumer", NAMESPACES, ns)
    assert message.endswith("created consumer namespace team-new (T5)")


def test_a_copy_for_a_binding_that_does_not_exist(world: World) -> None:
    (message,) = as_konnector(world, "consumer", SECRETS, copy_of(world, "default/x", uid="gone"))
    assert message.endswith("a related copy for binding uid gone, which is gone")


def test_t6_an_upload_no_explicit_selector_selects(world: World) -> None:
    user_secret(world, "consumer", "default/shared", {"share": "up"})
    user_secret(world, "consumer", "default/private", {})
    assert as_konnector(world, "provider", SECRETS, copy_of(world, "default/shared")) == []
    (message,) = as_konnector(world, "provider", SECRETS, copy_of(world, "default/private"))
    assert "create of provider secrets default/private: uploaded a consumer object no " in message
    assert message.endswith("explicit FromConsumer selector of binding widgets selects (T6)")


def test_t2_an_upload_from_the_konnectors_namespace(world: World) -> None:
    user_secret(world, "consumer", "kube-bind/other-kubeconfig", {"share": "up"})
    body = copy_of(world, "kube-bind/other-kubeconfig")  # the heartbeat made kube-bind there
    messages = as_konnector(world, "provider", SECRETS, body)
    assert any(m.endswith("a related copy in namespace kube-bind (T2)") for m in messages)


def test_deleting_a_copy_is_always_allowed(world: World) -> None:
    consumer = world.clusters["consumer"]
    body = copy_of(world, "kube-system/old")
    world.user_call(lambda: consumer.create(SECRETS, body, user=ADMIN))  # an older konnector's
    before = len(world.monitor.violations)
    world.as_konnector(lambda: consumer.delete(SECRETS, ObjectKey("kube-system", "old")))
    assert world.monitor.violations[before:] == []
