"""The Helm chart `charts/backend` (kube-bind-backend on the provider), rendered by a real
`helm`: it refuses values that cannot work (a typo, a memory session store or the controllers
on several replicas), runs the backend with flags it parses, ships exactly crds/service/, and
grants exactly `backend_rules(reaper mode)`. That it lints, renders valid objects the API
server accepts and documents every value is test_charts.py, for both charts.

The RBAC is proven sufficient and minimal on a real provider in
test_backend_rbac_in_practice.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore.service.backend_rbac import backend_rules
from kbshell.backend.main import build_parser
from kbshell.backend.reaper import MODES
from tests.chart.conftest import BACKEND, REPO, Helm, HelmError, Obj, by_kind, one, probe_ports
from tools import gen_crds

CHART = BACKEND.path
CI_VALUES = BACKEND.ci_values
DEFAULTS = BACKEND.defaults
BASE = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text())
ci_values = pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)


def _template(helm: Helm, values: dict[str, Any] | None = None, **kw: Any) -> list[Obj]:
    return helm.template({**BASE, **(values or {})}, chart=CHART, **kw)


def _container(objs: list[Obj]) -> Obj:
    (container,) = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _args(objs: list[Obj]) -> Any:
    container = _container(objs)
    assert container["command"] == ["/venv/bin/python3", "-m", "kbshell.backend"]
    return build_parser().parse_args(container["args"])


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"replicaCuont": 2}, "'replicaCuont' not allowed"),
        ({"oidc": {"clientSecret": "s3cr3t"}}, "'clientSecret' not allowed"),
        ({"sessionStore": {"type": "memcached"}}, "/sessionStore/type"),
        ({"sessionStore": {"type": "redis"}}, "/sessionStore"),
        ({"replicaCount": 2}, "/sessionStore/type"),
        (
            {"replicaCount": 2, "sessionStore": {"type": "redis", "redisURL": "redis://r:6379"}},
            "/run/1",
        ),
        ({"provider": {"server": "http://provider:6443"}}, "/provider/server"),
        ({"run": ["reaper"]}, "/run/0"),
        ({"run": []}, "/run"),
        ({"bindRateLimit": {"limit": 0}}, "/bindRateLimit/limit"),
        ({"oidc": {"scopes": "email profile"}}, "/oidc/scopes"),
        ({"allow": {"emails": ["alice"]}}, "/allow/emails/0"),
        ({"allow": {"emailDomains": ["a@example.com"]}}, "/allow/emailDomains/0"),
        ({"allow": {"groups": [""]}}, "/allow/groups/0"),
        ({"allow": {"users": ["alice@example.com"]}}, "'users' not allowed"),
        ({"pickupTTLSeconds": 7200}, "/pickupTTLSeconds"),
        ({"enableApply": "yes"}, "/enableApply"),
        ({"reaper": {"mode": False}}, "/reaper/mode"),  # a bare `off` in YAML
        ({"reaper": {"mode": "kill"}}, "/reaper/mode"),
        ({"reaper": {"ttl": "soon"}}, "/reaper/ttl"),
        ({"reaper": {"ttl": 3600}}, "/reaper/ttl"),
        (
            {
                "replicaCount": 2,
                "run": ["gateway"],
                "reaper": {"mode": "revoke"},
                "sessionStore": {"type": "redis", "redisURL": "redis://r:6379"},
            },
            "/reaper/mode",
        ),
    ],
    ids=lambda v: str(v),
)
def test_the_schema_refuses_values_that_cannot_work(
    helm: Helm, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(HelmError) as err:
        _template(helm, values)
    assert "values don't meet the specifications of the schema" in err.value.stderr
    assert named in err.value.stderr


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"replicaCount": 2}, "replicaCount > 1 needs sessionStore.type redis"),
        (
            {"replicaCount": 2, "sessionStore": {"type": "redis", "redisURL": "redis://r:6379"}},
            "replicaCount > 1 needs run: [gateway]",
        ),
        ({"provider": {"server": ""}}, "provider.server is required"),
        ({"externalURL": ""}, "externalURL is required when the gateway runs"),
        ({"oidc": {"issuerURL": "", "clientID": "c"}}, "oidc.issuerURL is required"),
        ({"port": 8081}, "port and healthProbe.port must differ"),
        (
            {
                "replicaCount": 2,
                "run": ["gateway"],
                "reaper": {"mode": "revoke"},
                "sessionStore": {"type": "redis", "redisURL": "redis://r:6379"},
            },
            "reaper.mode needs replicaCount 1",
        ),
    ],
    ids=lambda v: str(v),
)
def test_the_templates_refuse_what_the_schema_cannot_see(
    helm: Helm, values: dict[str, Any], named: str
) -> None:
    """Also without the schema (`--skip-schema-validation`), with the reason spelt out."""
    with pytest.raises(HelmError) as err:
        _template(helm, values, extra=["--skip-schema-validation"])
    assert named in err.value.stderr


@ci_values
def test_the_rendered_flags_are_the_backends_own(helm: Helm, values_file: Path) -> None:
    objs = helm.template(files=[values_file], chart=CHART)
    args = _args(objs)
    container = _container(objs)
    ports = probe_ports(container, args.health_probe_bind_address)
    assert args.issuer == "provider"
    assert args.listen_address == f":{ports['http']}"
    assert args.provider_server.startswith("https://")
    assert args.provider_kubeconfig is None  # in-cluster: the chart's ServiceAccount
    reaper = {**DEFAULTS["reaper"], **(yaml.safe_load(values_file.read_text()).get("reaper") or {})}
    assert (args.reap, args.reap_ttl) == (reaper["mode"], reaper["ttl"])


def test_values_reach_the_backends_flags_and_secrets_stay_files(helm: Helm) -> None:
    objs = helm.template(files=[CHART / "ci" / "production-values.yaml"], chart=CHART)
    args = _args(objs)
    assert args.run == "gateway,issuer"
    assert args.session_store == "redis://redis.kube-bind.svc:6379/0"
    assert (args.bind_rate_limit, args.bind_rate_window) == (5, 120.0)
    assert args.oidc_accept_audience == ["kubectl-bind"]
    assert args.oidc_scopes == "openid email profile"
    assert (args.allow_email, args.allow_email_domain) == ([], ["example.com"])
    assert args.allow_group == ["kube-bind-users"]
    assert (args.enable_apply, args.pickup_ttl) == (True, 120.0)
    assert _args(_template(helm)).enable_apply is False  # off unless asked for
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in _container(objs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes["oidc-client-secret"]["secret"]
    assert secret["secretName"] == "kube-bind-oidc"
    assert args.oidc_client_secret_file == f"{mounts['oidc-client-secret']}/client-secret"
    assert volumes["provider-ca"]["configMap"]["name"] == "provider-ca"
    assert args.provider_ca_file == f"{mounts['provider-ca']}/ca.crt"
    assert "s3cr3t" not in json.dumps(objs)


def test_the_controllers_alone_take_no_gateway_flags_and_never_overlap(helm: Helm) -> None:
    objs = helm.template(files=[CHART / "ci" / "controllers-only-values.yaml"], chart=CHART)
    args = _args(objs)
    assert args.run == "issuer" and args.external_url is None and args.oidc_issuer_url is None
    assert one(objs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    gateways = helm.template(files=[CHART / "ci" / "replicas-3-gateway-values.yaml"], chart=CHART)
    deployment = one(gateways, "Deployment")["spec"]
    assert deployment["replicas"] == 3 and "strategy" not in deployment  # rolling update
    assert _args(gateways).session_store.startswith("rediss://")


def _expanded(rules: list[Obj]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (group, resource, verb, tuple(rule.get("resourceNames") or ()))
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


RBAC_VALUES = [p for p in CI_VALUES if (yaml.safe_load(p.read_text()).get("rbac") or {}) == {}]


@pytest.mark.parametrize(
    "values", [*RBAC_VALUES, *({"reaper": {"mode": m}} for m in MODES)], ids=lambda v: str(v)
)
def test_the_cluster_role_is_exactly_backend_rules(
    helm: Helm, values: Path | dict[str, Any]
) -> None:
    """For each ci values file and each reaper mode: the rules of `backend_rules(mode)`."""
    if isinstance(values, Path):
        objs = helm.template(files=[values], chart=CHART)
    else:
        objs = _template(helm, values)
    role = one(objs, "ClusterRole")
    mode = MODES[_args(objs).reap]
    want = {(r.group, r.resource, verb, r.names) for r in backend_rules(mode) for verb in r.verbs}
    assert _expanded(role["rules"]) == want
    assert "*" not in json.dumps(role["rules"])
    # Secrets and ServiceAccounts are readable only by the two constant names.
    for _group, resource, verb, names in want:
        if resource in ("secrets", "serviceaccounts") and verb != "create":
            assert names, (resource, verb)


def test_the_binding_grants_the_role_to_the_backends_service_account(helm: Helm) -> None:
    objs = _template(helm, namespace="kb-system", release="prod")
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(objs, "ServiceAccount")["metadata"]["name"]
    binding, role = one(objs, "ClusterRoleBinding"), one(objs, "ClusterRole")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prod-backend", "namespace": "kb-system"}
    ]
    byo = helm.template(files=[CHART / "ci" / "byo-identity-values.yaml"], chart=CHART)
    assert not {o["kind"] for o in byo} & {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    assert one(byo, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == (
        "backend-managed-elsewhere"
    )


def test_the_chart_ships_exactly_the_service_crds(helm: Helm) -> None:
    """One source of truth: the chart's CRDs are crds/service/ (make crds-check keeps its
    files/crds/ copy generated from kbcore; this checks what helm renders)."""
    rendered = by_kind(_template(helm), "CustomResourceDefinition")
    want = [
        yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds" / "service").glob("*.yaml"))
    ]
    key = lambda c: c["metadata"]["name"]  # noqa: E731
    assert sorted(rendered, key=key) == sorted(want, key=key)
    assert by_kind(_template(helm, {"installCRDs": False}), "CustomResourceDefinition") == []


def test_pods_run_as_nonroot_with_a_read_only_root(helm: Helm) -> None:
    objs = _template(helm)
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = _container(objs)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}


def test_gen_crds_check_fails_when_the_backend_charts_copy_drifts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen_crds.BACKEND_CHART_CRD_DIR == CHART / "files" / "crds"
    assert gen_crds.BACKEND_CHART_CRD_DIR in gen_crds.SERVICE_CRD_DIRS
    assert gen_crds.main(["--check"]) == 0  # the committed copies are current
    service, chart = tmp_path / "service", tmp_path / "backend-crds"
    monkeypatch.setattr(gen_crds, "CRD_DIRS", (tmp_path / "core",))
    monkeypatch.setattr(gen_crds, "SERVICE_CRD_DIRS", (service, chart))
    assert gen_crds.main(["--write"]) == 0
    stale = chart / "iam.kube-bind.io_grants.yaml"
    stale.write_text(stale.read_text().replace("self == oldSelf", "true"))
    capsys.readouterr()
    assert gen_crds.main(["--check"]) == 1
    assert "backend-crds/iam.kube-bind.io_grants.yaml (committed)" in capsys.readouterr().out
