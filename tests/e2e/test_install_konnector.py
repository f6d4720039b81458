"""`kubectl bind --install-konnector`'s machinery (kbshell/install.py) against a real consumer API
server of its own, empty at the start: a user with only read rights is refused before anything
is written; an install creates exactly the chart's rendering (with the image asked for); a second
run writes nothing (resourceVersions and the server's own write counters unchanged); an upgrade
to another image changes the Deployment alone, as does repairing an edit made with kubectl since
(the installer's apply is forced), and another bound API group changes the ClusterRole alone
(the konnector's ServiceAccount may then sync both groups, as the authorizer says); a konnector
of another release and a foreign same-named Deployment are refused, and left as they were. The
tests run in order, each on the state the previous one left.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from kbcore import objects as o
from kbcore.api.resources import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, SECRETS, SERVICE_ACCOUNTS
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.views import install as plan
from kbshell.client import KubeClient
from kbshell.install import (
    InstallForbidden,
    InstallRefused,
    install_konnector,
    rendered_manifests,
)
from tests.harness.clusters import Cluster, Clusters, build_binaries, start_clusters
from tests.harness.konnector import eventually

pytestmark = pytest.mark.realcluster

IMAGE_1 = "registry.example/kube-bind/konnector:e2e-1"
IMAGE_2 = "registry.example/kube-bind/konnector:e2e-2"
DEPLOYMENT = ObjectKey(plan.NAMESPACE, "kube-bind-konnector")
# The resources the installer writes, as the API server's write counter names them.
SUBJECT_ACCESS_REVIEWS = GVR("authorization.k8s.io", "v1", "subjectaccessreviews")
RESOURCES = {f"{g.resource}.{g.group}" if g.group else g.resource for g in plan.RESOURCES.values()}


@pytest.fixture(scope="module")
def consumer_cluster() -> Iterator[Cluster]:
    clusters: Clusters = start_clusters(["consumer"], bin_dir=build_binaries())
    try:
        yield clusters["consumer"]
    finally:
        clusters.stop()


@pytest.fixture(scope="module")
def admin(consumer_cluster: Cluster) -> KubeClient:
    return KubeClient.from_kubeconfig_file(consumer_cluster.kubeconfig)


def targets(image: str, groups: tuple[str, ...] = ("a.example",)) -> tuple[plan.Target, ...]:
    return plan.targets(rendered_manifests(), image, groups)


def konnector_may(admin: KubeClient, verb: str, group: str, resource: str) -> bool:
    """What the API server's authorizer lets the installed konnector's ServiceAccount do."""
    sa = f"system:serviceaccount:{plan.NAMESPACE}:kube-bind-konnector"
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": sa, "groups": ["system:serviceaccounts", "system:authenticated"],
                       "resourceAttributes": {"verb": verb, "group": group, "resource": resource}}}  # fmt: skip
    return bool(admin.create(SUBJECT_ACCESS_REVIEWS, review)["status"].get("allowed"))


def lines() -> tuple[list[str], Any]:
    said: list[str] = []
    return said, said.append


def present(admin: KubeClient) -> dict[str, dict[str, Any]]:
    """Every installer target that exists, by label."""
    out = {}
    for t in targets(IMAGE_1):
        try:
            out[t.label] = admin.get(t.gvr, t.key)
        except ApiError as err:
            assert err.code == 404, err
    return out


def versions(admin: KubeClient) -> dict[str, str]:
    return {label: obj["metadata"]["resourceVersion"] for label, obj in present(admin).items()}


def writes(cluster: Cluster) -> dict[str, float]:
    return {r: n for r, n in cluster.write_requests().items() if r in RESOURCES}


def reader(cluster: Cluster, admin: KubeClient) -> KubeClient:
    """A ServiceAccount whose token may read everything and write nothing."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "e2e-read-all"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]}  # fmt: skip
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "e2e-read-all"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "e2e-read-all"},
               "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}]}  # fmt: skip
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "reader", "namespace": "default"},
    }
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
              "metadata": {"name": "reader-token", "namespace": "default",
                           "annotations": {"kubernetes.io/service-account.name": "reader"}}}  # fmt: skip
    admin.create(CLUSTER_ROLES, role)
    admin.create(CLUSTER_ROLE_BINDINGS, binding)
    admin.create(SERVICE_ACCOUNTS, sa)
    admin.create(SECRETS, secret)

    def token() -> str | None:
        data = admin.get(SECRETS, ObjectKey("default", "reader-token")).get("data") or {}
        return base64.b64decode(data["token"]).decode() if "token" in data else None

    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {
            "server": cluster.url,
            "certificate-authority-data": base64.b64encode(cluster.ca.cert.read_bytes()).decode()}}],
        "users": [{"name": "reader", "user": {"token": eventually(token, 60, "token Secret filled")}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "reader"}}],
    }  # fmt: skip
    return KubeClient.from_kubeconfig(config)


def test_a_reader_is_told_every_missing_permission_and_nothing_is_written(
    consumer_cluster: Cluster, admin: KubeClient
) -> None:
    client = reader(consumer_cluster, admin)
    before = writes(consumer_cluster)
    said, progress = lines()
    with pytest.raises(InstallForbidden) as caught:
        install_konnector(client, image=IMAGE_1, progress=progress)
    message = str(caught.value)
    assert said == ["checking your permissions for the install"]
    assert "nothing was changed" in message
    for needed in (
        "create customresourcedefinitions.apiextensions.k8s.io",
        "create namespaces",
        "create deployments.apps in namespace kube-bind",
        "patch deployments.apps kube-bind-konnector in namespace kube-bind",
        "escalate clusterroles.rbac.authorization.k8s.io kube-bind-konnector",
        "bind clusterroles.rbac.authorization.k8s.io kube-bind-konnector",
    ):
        assert needed in message, (needed, message)
    assert len(caught.value.lacking) == len(targets(IMAGE_1)) + 4  # + 2 roles, 2 bindings
    assert present(admin) == {}
    assert writes(consumer_cluster) == before


def test_install_into_an_empty_cluster_creates_the_rendering(admin: KubeClient) -> None:
    said, progress = lines()
    result = install_konnector(admin, image=IMAGE_1, progress=progress, bound_groups=["a.example"])
    assert result.outcome == "install"
    assert result.previous is None
    assert result.installed == plan.Version("0.1.0", IMAGE_1)
    wanted = targets(IMAGE_1)
    assert result.written == tuple(t.label for t in wanted)
    found = present(admin)
    assert set(found) == {t.label for t in wanted}
    for t in wanted:
        assert plan.differences(found[t.label], t.body) == [], t.label
    container = found[f"Deployment {DEPLOYMENT.namespace}/{DEPLOYMENT.name}"]["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert container["image"] == IMAGE_1
    for t in wanted:
        if t.kind == "CustomResourceDefinition":
            conditions = found[t.label]["status"]["conditions"]
            assert {"type": "Established", "status": "True"}.items() <= next(
                c for c in conditions if c["type"] == "Established"
            ).items()
    assert konnector_may(admin, "list", "a.example", "widgets")
    assert konnector_may(admin, "patch", "a.example", "widgets")
    assert not konnector_may(admin, "create", "a.example", "widgets")
    assert not konnector_may(admin, "list", "b.example", "gadgets")
    managers = {m["manager"] for m in found[wanted[-1].label]["metadata"]["managedFields"]}
    assert managers == {plan.FIELD_MANAGER}
    assert any(line.startswith("installing konnector 0.1.0") for line in said)


def test_a_second_run_writes_nothing(consumer_cluster: Cluster, admin: KubeClient) -> None:
    before_versions, before_writes = versions(admin), writes(consumer_cluster)
    said, progress = lines()
    result = install_konnector(admin, image=IMAGE_1, progress=progress)
    assert result.outcome == "up-to-date"
    assert result.written == ()
    assert result.previous == result.installed == plan.Version("0.1.0", IMAGE_1)
    assert versions(admin) == before_versions
    assert writes(consumer_cluster) == before_writes
    assert said == [f"konnector {result.installed} is up to date in namespace kube-bind"]


def test_an_upgrade_to_another_image_changes_only_the_deployment(
    consumer_cluster: Cluster, admin: KubeClient
) -> None:
    before = versions(admin)
    said, progress = lines()
    result = install_konnector(admin, image=IMAGE_2, progress=progress)
    assert result.outcome == "upgrade"
    label = f"Deployment {DEPLOYMENT.namespace}/{DEPLOYMENT.name}"
    assert result.written == (label,)
    assert result.previous == plan.Version("0.1.0", IMAGE_1)
    assert result.installed == plan.Version("0.1.0", IMAGE_2)
    after = versions(admin)
    assert {k for k in after if after[k] != before[k]} == {label}
    deployment = present(admin)[label]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_2
    assert f"  {label} updated: spec.template.spec.containers[0].image" in said


def test_an_edit_made_since_with_kubectl_is_repaired(admin: KubeClient) -> None:
    admin.patch(plan.DEPLOYMENTS, DEPLOYMENT, {"spec": {"replicas": 3}}, "merge", "kubectl-edit")
    said, progress = lines()
    result = install_konnector(admin, image=IMAGE_2, progress=progress)
    assert (result.outcome, result.written) == (
        "upgrade",
        (f"Deployment {DEPLOYMENT.namespace}/{DEPLOYMENT.name}",),
    )
    assert admin.get(plan.DEPLOYMENTS, DEPLOYMENT)["spec"]["replicas"] == 1
    assert f"  Deployment {DEPLOYMENT.namespace}/{DEPLOYMENT.name} updated: spec.replicas" in said


def test_binding_another_group_adds_it_to_the_cluster_role_alone(admin: KubeClient) -> None:
    before = versions(admin)
    said, progress = lines()
    result = install_konnector(admin, image=IMAGE_2, progress=progress, bound_groups=["b.example"])
    assert result.outcome == "upgrade"
    assert result.written == ("ClusterRole kube-bind-konnector",)
    after = versions(admin)
    assert {k for k in after if after[k] != before[k]} == {"ClusterRole kube-bind-konnector"}
    assert konnector_may(admin, "list", "a.example", "widgets")
    assert konnector_may(admin, "list", "b.example", "gadgets")
    role = present(admin)["ClusterRole kube-bind-konnector"]
    assert plan.installed_groups(role) == ("a.example", "b.example")
    assert "  ClusterRole kube-bind-konnector updated: rules[8].apiGroups" in said


def test_a_konnector_of_another_release_refuses_the_install(
    consumer_cluster: Cluster, admin: KubeClient
) -> None:
    other = o.deepcopy(targets(IMAGE_2)[-1].body)
    other["metadata"].update(name="konnector", namespace="default")
    for labels in (other["metadata"]["labels"], other["spec"]["template"]["metadata"]["labels"]):
        labels["app.kubernetes.io/instance"] = "konnector"
    other["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] = "konnector"
    admin.create(plan.DEPLOYMENTS, other)
    before_versions, before_writes = versions(admin), writes(consumer_cluster)
    try:
        with pytest.raises(InstallRefused) as caught:
            install_konnector(admin, image=IMAGE_1, progress=lines()[1])
        assert caught.value.reasons == (
            "another konnector runs as Deployment default/konnector (release 'konnector'); two "
            "konnectors would both write every object: remove it, or upgrade that one instead",
        )
        assert versions(admin) == before_versions
        assert writes(consumer_cluster) == before_writes
    finally:
        admin.delete(plan.DEPLOYMENTS, ObjectKey("default", "konnector"))


def test_a_foreign_same_named_deployment_is_refused_and_left_alone(
    consumer_cluster: Cluster, admin: KubeClient
) -> None:
    deployments = plan.DEPLOYMENTS
    admin.delete(deployments, DEPLOYMENT)
    eventually(lambda: DEPLOYMENT.name not in {o["metadata"]["name"] for o in admin.list(deployments, "kube-bind")[0]}, 30, "Deployment gone")  # fmt: skip
    labels = {"app": "someone-elses"}
    foreign = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": DEPLOYMENT.name, "namespace": DEPLOYMENT.namespace, "labels": labels},
               "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "someone/else:1"}]}}}}  # fmt: skip
    admin.create(deployments, foreign)
    before_versions, before_writes = versions(admin), writes(consumer_cluster)
    said, progress = lines()
    with pytest.raises(InstallRefused) as caught:
        install_konnector(admin, image=IMAGE_2, progress=progress)
    assert caught.value.reasons == (
        f"Deployment {DEPLOYMENT.namespace}/{DEPLOYMENT.name} exists and was not installed by "
        "kube-bind (it lacks the labels app.kubernetes.io/name=konnector, "
        "app.kubernetes.io/instance=kube-bind, app.kubernetes.io/part-of=kube-bind); it is left "
        "untouched: remove or rename it, or install the konnector with Helm into another namespace",
    )
    assert said == []
    assert versions(admin) == before_versions
    assert writes(consumer_cluster) == before_writes
    kept = admin.get(deployments, DEPLOYMENT)
    assert kept["spec"]["template"]["spec"]["containers"][0]["image"] == "someone/else:1"
