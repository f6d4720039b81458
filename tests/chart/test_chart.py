"""The Helm chart `charts/konnector`, rendered by a real `helm` and checked for what a user
relies on: it rejects mistyped values, runs the konnector with flags it understands, installs
exactly the generated CRDs, keeps the konnector's rights narrow, and tells the user what is
missing. That it lints, renders valid objects the API server accepts and documents every value
is test_charts.py, for both charts.

The RBAC rules are proven sufficient and minimal on a real cluster in test_rbac_in_practice.py.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore.schema import crdgen
from kbshell.main import build_parser
from tests.chart.conftest import (
    CHART,
    CI_VALUES,
    REPO,
    Helm,
    HelmError,
    Obj,
    by_kind,
    konnector_container,
    one,
    probe_ports,
    rule_allows,
)
from tools import gen_crds

ci_values = pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)


def _pod_specs(objs: list[Obj]) -> list[Obj]:
    return [one(objs, "Deployment")["spec"]["template"]["spec"]] + [
        p["spec"] for p in by_kind(objs, "Pod")
    ]


def _rules(objs: list[Obj], kind: str) -> list[Obj]:
    roles = by_kind(objs, kind)
    return [rule for role in roles for rule in role["rules"]]


def _cluster_allows(objs: list[Obj], group: str, resource: str, verb: str, **kw: str) -> bool:
    return any(rule_allows(r, group, resource, verb, **kw) for r in _rules(objs, "ClusterRole"))


# ---------------------------------------------------------------------------------------------
# Values.


def test_ci_values_cover_the_documented_combinations() -> None:
    names = {p.name for p in CI_VALUES}
    assert {
        "default-values.yaml",
        "replicas-2-values.yaml",
        "no-crds-values.yaml",
        "custom-groups-values.yaml",
    } <= names


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"rbac": {"boundResourceGroup": ["example.org"]}}, "'boundResourceGroup' not allowed"),
        ({"replicaCuont": 2}, "'replicaCuont' not allowed"),
        ({"image": {"repository": "r", "tagg": "1"}}, "'tagg' not allowed"),
        ({"replicaCount": "2"}, "/replicaCount"),
        ({"installCRDs": "false"}, "/installCRDs"),
        ({"rbac": {"boundResourceGroups": "example.org"}}, "/rbac/boundResourceGroups"),
        ({"rbac": {"boundResourceGroups": [""]}}, "/rbac/boundResourceGroups/0"),
        ({"logFormat": "yaml"}, "/logFormat"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
        ({"extraArgs": "--workers=4"}, "/extraArgs"),
    ],
    ids=lambda v: str(v),
)
def test_the_schema_rejects_typos_and_wrong_types_naming_the_key(
    helm: Helm, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(HelmError) as err:
        helm.template(values)
    assert "values don't meet the specifications of the schema" in err.value.stderr
    assert named in err.value.stderr


def test_metrics_and_probe_ports_must_differ(helm: Helm) -> None:
    with pytest.raises(HelmError) as err:
        helm.template({"metrics": {"port": 9000}, "healthProbe": {"port": 9000}})
    assert "metrics.port and healthProbe.port must differ" in err.value.stderr


# ---------------------------------------------------------------------------------------------
# The konnector's command line.


@ci_values
def test_the_rendered_flags_are_the_konnectors_own(helm: Helm, values_file: Path) -> None:
    """The Deployment passes flags `konnector` parses (argparse exits 2 on anything else), on
    the ports the container and its probes name, in the release namespace."""
    objs = helm.template(files=[values_file], namespace="team-kb")
    container = konnector_container(objs)
    assert "command" not in container, "the image's entrypoint is the konnector"
    args = build_parser().parse_args(container["args"])
    ports = probe_ports(container, args.health_probe_bind_address)
    assert args.namespace == "team-kb"
    assert args.metrics_bind_address == f":{ports['metrics']}"
    assert args.log_format in ("json", "text")
    # The Lease the konnector elects with is the one the Role lets it use.
    for rule in _rules(objs, "Role"):
        if "leases" in rule["resources"] and "resourceNames" in rule:
            assert rule["resourceNames"] == [args.leader_election_id]


def test_values_reach_the_konnectors_flags(helm: Helm) -> None:
    objs = helm.template(
        {
            "metrics": {"port": 9090},
            "healthProbe": {"port": 9091},
            "leaderElectionID": "my-lease",
            "logFormat": "text",
            "logLevel": "debug",
            "extraArgs": ["--workers=16", "--resync-period=120"],
        }
    )
    args = build_parser().parse_args(konnector_container(objs)["args"])
    assert (args.metrics_bind_address, args.health_probe_bind_address) == (":9090", ":9091")
    assert (args.leader_election_id, args.log_format, args.log_level) == (
        "my-lease",
        "text",
        "debug",
    )
    assert (args.workers, args.resync_period) == (16, 120.0)
    service = one(objs, "Service")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "metrics": 9090,
        "probe": 9091,
    }


def test_more_than_one_replica_forces_leader_election(helm: Helm) -> None:
    objs = helm.template({"replicaCount": 2, "leaderElect": False})
    deployment = one(objs, "Deployment")
    args = konnector_container(objs)["args"]
    assert "--leader-elect" in args
    assert build_parser().parse_args(args).leader_elect is True
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"].get("strategy", {}).get("type") != "Recreate"


def test_one_replica_without_leader_election_never_runs_two_writers(helm: Helm) -> None:
    """Without leader election an upgrade must stop the old Pod before starting the new one."""
    objs = helm.template()
    assert build_parser().parse_args(konnector_container(objs)["args"]).leader_elect is False
    assert one(objs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    elected = helm.template({"leaderElect": True})
    assert build_parser().parse_args(konnector_container(elected)["args"]).leader_elect is True
    assert "strategy" not in one(elected, "Deployment")["spec"]  # RollingUpdate


# ---------------------------------------------------------------------------------------------
# CRDs.


def _committed_crds() -> dict[str, Obj]:
    out = {}
    for path in sorted((REPO / "crds").glob("*.yaml")):
        (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        out[doc["metadata"]["name"]] = doc
    return out


def test_rendered_crds_are_exactly_the_generated_ones(helm: Helm) -> None:
    rendered = {
        c["metadata"]["name"]: c for c in by_kind(helm.template(), "CustomResourceDefinition")
    }
    assert rendered == _committed_crds()
    assert rendered == {c["metadata"]["name"]: c for c in crdgen.all_crds()}
    assert sorted(rendered) == [
        "bindings.core.kube-bind.io",
        "clusterbindings.core.kube-bind.io",
        "connections.core.kube-bind.io",
    ]


def test_install_crds_false_renders_no_crds(helm: Helm) -> None:
    objs = helm.template({"installCRDs": False})
    assert by_kind(objs, "CustomResourceDefinition") == []
    assert one(objs, "Deployment")


def test_gen_crds_check_fails_when_the_chart_copy_drifts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen_crds.main(["--check"]) == 0  # the committed copies are current
    crds, chart = tmp_path / "crds", tmp_path / "chart-crds"
    monkeypatch.setattr(gen_crds, "CRD_DIRS", (crds, chart))
    monkeypatch.setattr(gen_crds, "SERVICE_CRD_DIRS", (tmp_path / "service-crds",))
    assert gen_crds.main(["--write"]) == 0
    assert gen_crds.main(["--check"]) == 0
    stale = chart / "core.kube-bind.io_connections.yaml"
    stale.write_text(stale.read_text().replace("default: Auto", "default: CRD"))
    capsys.readouterr()
    assert gen_crds.main(["--check"]) == 1
    assert "chart-crds/core.kube-bind.io_connections.yaml (committed)" in capsys.readouterr().out
    assert gen_crds.main(["--write"]) == 0
    (chart / "core.kube-bind.io_removed.yaml").write_text("{}\n")  # the chart would install it
    assert gen_crds.main(["--check"]) == 1
    assert "core.kube-bind.io_removed.yaml: not generated" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# RBAC, as rendered (test_rbac_in_practice.py runs it).


def test_default_rbac_has_no_wildcards_and_no_escalation(helm: Helm) -> None:
    objs = helm.template()
    rules = _rules(objs, "ClusterRole") + _rules(objs, "Role")
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
        assert "rbac.authorization.k8s.io" not in rule["apiGroups"], rule
    groups = {g for r in _rules(objs, "ClusterRole") for g in r["apiGroups"]}
    assert groups == {"core.kube-bind.io", "apiextensions.k8s.io", "", "core.kcp.io"}
    # No bound API group is allowed until the user names one.
    assert not _cluster_allows(objs, "example.org", "widgets", "list")


def test_bound_groups_allow_syncing_but_never_creating_or_deleting(helm: Helm) -> None:
    objs = helm.template({"rbac": {"boundResourceGroups": ["example.org"]}})
    for verb in ("list", "watch", "update", "patch"):
        assert _cluster_allows(objs, "example.org", "widgets", verb)
    assert _cluster_allows(objs, "example.org", "widgets", "update", subresource="status")
    for verb in ("create", "delete", "deletecollection"):
        assert not _cluster_allows(objs, "example.org", "widgets", verb)
    assert not _cluster_allows(objs, "other.org", "gadgets", "list")


def test_without_related_resources_secrets_are_readable_only_in_the_release_namespace(
    helm: Helm,
) -> None:
    objs = helm.template({"rbac": {"relatedResources": False}}, namespace="kb-system")
    for resource in ("secrets", "configmaps"):
        for verb in ("get", "list", "watch", "create", "patch", "delete"):
            assert not _cluster_allows(objs, "", resource, verb), (resource, verb)
    role = one(objs, "Role")
    assert role["metadata"]["namespace"] == "kb-system"
    for verb in ("get", "list", "watch", "patch"):
        assert any(rule_allows(r, "", "secrets", verb) for r in role["rules"]), verb
    assert not any(rule_allows(r, "", "secrets", "delete") for r in role["rules"])
    # Namespaces: only kube-system's identity, nothing created.
    assert _cluster_allows(objs, "", "namespaces", "get", name="kube-system")
    assert not _cluster_allows(objs, "", "namespaces", "get", name="default")
    assert not _cluster_allows(objs, "", "namespaces", "create")


def test_related_resources_allow_copies_in_every_namespace(helm: Helm) -> None:
    objs = helm.template()  # relatedResources is on by default
    for resource in ("secrets", "configmaps"):
        for verb in ("get", "list", "create", "patch", "delete"):
            assert _cluster_allows(objs, "", resource, verb), (resource, verb)
    # A copy's namespace is read, never created (kbcore.control.related T5).
    assert _cluster_allows(objs, "", "namespaces", "get", name="team-x")
    assert not _cluster_allows(objs, "", "namespaces", "create")


def test_bindings_grant_the_roles_to_the_konnectors_service_account(helm: Helm) -> None:
    objs = helm.template(namespace="kb-system", release="prod")
    sa = one(objs, "ServiceAccount")
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"] == "prod-konnector"
    subject = {"kind": "ServiceAccount", "name": "prod-konnector", "namespace": "kb-system"}
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding, role = one(objs, binding_kind), one(objs, role_kind)
        assert binding["subjects"] == [subject]
        assert binding["roleRef"]["kind"] == role_kind
        assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_rbac_and_service_account_can_be_brought_by_the_user(helm: Helm) -> None:
    objs = helm.template(files=[CHART / "ci" / "byo-identity-values.yaml"])
    kinds = {o["kind"] for o in objs}
    assert not kinds & {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role"}
    assert not kinds & {"RoleBinding", "Service", "Pod"}
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "konnector-managed-elsewhere"
    assert one(objs, "Deployment")["metadata"]["name"] == "kb-konnector"
    assert pod["tolerations"][0]["value"] == "kube-bind"
    assert pod["hostAliases"][0]["hostnames"] == ["provider.example.internal"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


# ---------------------------------------------------------------------------------------------
# Names, labels, security.


def test_names_and_labels_fit_kubernetes_limits(helm: Helm) -> None:
    release = "r" * 53  # helm's longest release name
    objs = helm.template({"nameOverride": "n" * 70}, release=release)
    objs += helm.template({"fullnameOverride": "f" * 70 + "-x"})
    for obj in objs:
        if obj["kind"] == "CustomResourceDefinition":
            continue
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and not name.endswith("-"), name
        for key, value in obj["metadata"].get("labels", {}).items():
            assert len(value) <= 63, (key, value)
    for deployment in by_kind(objs, "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_names_default_to_release_and_chart(helm: Helm) -> None:
    assert one(helm.template(release="prod"), "Deployment")["metadata"]["name"] == "prod-konnector"
    # A release named after the chart is not repeated.
    assert one(helm.template(release="konnector"), "Deployment")["metadata"]["name"] == "konnector"


def test_pods_run_as_nonroot_with_a_read_only_root_and_no_privileges(helm: Helm) -> None:
    objs = helm.template()
    for spec in _pod_specs(objs):
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["runAsUser"] == 65532 and sc["runAsNonRoot"] is True
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    (mount,) = konnector_container(objs)["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume
    assert pod["terminationGracePeriodSeconds"] > 30  # the konnector drains for up to 30 s


def test_image_tag_defaults_to_the_app_version(helm: Helm) -> None:
    assert konnector_container(helm.template())["image"] == "ghcr.io/kube-bind/konnector-py:0.1.0"
    custom = helm.template({"image": {"repository": "reg.example/kb", "tag": "dev"}})
    assert konnector_container(custom)["image"] == "reg.example/kb:dev"


# ---------------------------------------------------------------------------------------------
# `helm test`.


def test_the_helm_test_pod_asks_the_service_for_readyz(helm: Helm) -> None:
    objs = helm.template(namespace="kb-system")
    pod, service = one(objs, "Pod"), one(objs, "Service")
    deployment = one(objs, "Deployment")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    url = urllib.parse.urlsplit(container["args"][0])
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert url.hostname == f"{service['metadata']['name']}.kb-system.svc"
    assert url.port == ports["probe"]["port"] and url.path == "/readyz"
    assert ports["probe"]["targetPort"] == "probe"
    assert container["image"] == konnector_container(objs)["image"]  # nothing else to pull
    selector = service["spec"]["selector"].items()
    assert selector <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert not selector <= pod["metadata"]["labels"].items(), "the Service would select it"
    for off in ({"tests": {"enabled": False}}, {"service": {"enabled": False}}):
        assert by_kind(helm.template(off), "Pod") == []


class _Probe(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"ok" if self.status == 200 else b"caches not synced")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[tuple[str, type[_Probe]]]:
    handler = type("Handler", (_Probe,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/readyz", handler
    server.shutdown()


def test_the_helm_test_pod_fails_unless_readyz_answers_200(
    helm: Helm, probe_server: tuple[str, type[_Probe]]
) -> None:
    """Its script run here with this Python (the image's is 3.11 too) against a stand-in."""
    (container,) = one(helm.template(), "Pod")["spec"]["containers"]
    assert container["command"][:2] == ["/venv/bin/python3", "-c"]
    url, handler = probe_server

    def run() -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-c", container["command"][2], url]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)

    ok = run()
    assert ok.returncode == 0, ok.stderr
    assert "200" in ok.stdout
    handler.status = 503
    assert run().returncode != 0


# ---------------------------------------------------------------------------------------------
# NOTES.txt


def _notes(helm: Helm, tmp_path: Path, values: dict[str, Any] | None = None) -> str:
    """NOTES.txt as `helm install` prints it: rendered through a copy of the chart in which a
    ConfigMap carries it (`helm template` does not print notes)."""
    chart = tmp_path / f"chart-{uuid.uuid4().hex[:6]}"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_probe_notes.tpl").write_text(
        '{{- define "probe.notes" -}}\n' + notes + "{{- end -}}\n"
    )
    (chart / "templates" / "probe-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ include "probe.notes" . | toJson }}\n'
    )
    objs = helm.template(values, chart=chart, extra=["--show-only", "templates/probe-notes.yaml"])
    return str(one(objs, "ConfigMap")["data"]["notes"])


def test_notes_warn_that_nothing_syncs_until_bound_groups_are_set(
    helm: Helm, tmp_path: Path
) -> None:
    notes = _notes(helm, tmp_path)
    assert "rbac.boundResourceGroups is empty" in notes and "NOTHING SYNCS" in notes
    assert "rollout status deployment/kb-konnector" in notes
    assert "helm test kb" in notes
    named = _notes(helm, tmp_path, {"rbac": {"boundResourceGroups": ["example.org", "a.io"]}})
    assert "NOTHING SYNCS" not in named
    assert "API groups: example.org, a.io." in named
    wildcard = _notes(helm, tmp_path, {"rbac": {"boundResourceGroups": ["*"]}})
    assert 'contains "*"' in wildcard


def test_notes_say_when_leader_election_was_forced_and_crds_are_missing(
    helm: Helm, tmp_path: Path
) -> None:
    forced = _notes(helm, tmp_path, {"replicaCount": 3, "installCRDs": False})
    assert "leader election was switched on" in forced
    assert "installCRDs is false" in forced
    plain = _notes(helm, tmp_path)
    assert "switched on" not in plain and "installCRDs is false" not in plain
    assert "leader election off" in plain
