"""`kubectl bind` against real clusters: the console script as a user runs it.

The session's shared provider and consumer (tests/e2e/conftest.py) are used, so everything here
has names no other test uses: an API group, a konnector namespace, a Connection and a consumer
namespace per test, all removed afterwards. The provider credentials in the bundle belong to a
user minted for the test and granted exactly what `kubectl bind rbac` prints, so the whole
flow also proves that RBAC on a real API server.

What a user relies on:
 - `-o yaml` writes a bundle the CRDs accept and applies nothing; `--dry-run` applies nothing;
 - applying it and starting the konnector syncs a Widget; `status` shows Ready;
 - `plan` at rest (konnector stopped) has nothing to do; after a new Widget it shows the
   pending create, after an edit the field its apply would change; it writes nothing on either
   cluster (every resourceVersion unchanged);
 - `unbind` says what will happen, waits for the drain, and the binding is gone;
 - a kubeconfig the konnector would refuse, one that points at the consumer itself, an
   unreachable provider, an API not exported and a consumer user without access each fail
   with exit status 1, the problem and the fix.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import (
    BINDINGS,
    CLUSTERBINDINGS,
    CONFIGMAPS,
    CONNECTIONS,
    CRDS,
    EVENTS,
    LEASES,
    NAMESPACES,
    SECRETS,
)
from kbcore.control.kubeconfig import SecretProblem, sanitize
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbshell.client import KubeClient
from tests.harness.clusters import Clusters, build_binaries
from tests.harness.konnector import Konnector, eventually, free_port

KUBECTL_BIND = Path(sys.executable).parent / "kubectl-bind"
REPO = Path(__file__).resolve().parents[2]
RBAC_GVRS = {
    "ClusterRole": GVR("rbac.authorization.k8s.io", "v1", "clusterroles"),
    "ClusterRoleBinding": GVR("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
    "Role": GVR("rbac.authorization.k8s.io", "v1", "roles"),
    "RoleBinding": GVR("rbac.authorization.k8s.io", "v1", "rolebindings"),
    "Namespace": NAMESPACES,
}
CRD_SCHEMAS = {
    doc["spec"]["names"]["kind"]: doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path in sorted((REPO / "crds").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
}


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`kubectl-bind ARGV` as a user runs it (no KUBECONFIG unless `env` sets one)."""
    base = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [str(KUBECTL_BIND), *argv],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def apply(client: KubeClient, gvr: GVR, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return client.patch(
        gvr, ObjectKey(meta.get("namespace", ""), meta["name"]), obj, "apply", "e2e", True
    )


def widget_crd(group: str, plural: str, kind: str, *, exported: bool) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "examples/scenarios/_common/widgets-crd.yaml").read_text())
    crd["metadata"]["name"] = f"{plural}.{group}"
    crd["metadata"]["labels"] = {keys.LABEL_EXPORTED: "true"} if exported else {}
    crd["spec"]["group"] = group
    crd["spec"]["names"] = {
        "plural": plural,
        "singular": kind.lower(),
        "kind": kind,
        "listKind": f"{kind}List",
    }
    return crd


class Env:
    """One test's names on the shared clusters, its clients, and its clean-up."""

    def __init__(self, clusters: Clusters, tmp: Path) -> None:
        self.clusters = clusters
        self.tmp = tmp
        u = uuid.uuid4().hex[:6]
        self.group = f"g{u}.bind.example.org"
        self.api = f"widgets.{self.group}"
        self.widgets = GVR(self.group, "v1", "widgets")
        self.ns = f"kb-{u}"  # the konnector's namespace on the consumer
        self.team = f"team-{u}"  # where Widgets live
        self.connection = f"c-{u}"
        self.user = f"bind-{u}"  # the provider user the bundle's kubeconfig authenticates as
        self.rbac_name = f"kb-{u}"
        self.consumer = KubeClient.from_kubeconfig_file(clusters.consumer.kubeconfig)
        self.provider = KubeClient.from_kubeconfig_file(clusters.provider.kubeconfig)
        self.consumer_kubeconfig = str(clusters.consumer.kubeconfig)
        self.konnectors: list[Konnector] = []
        self.rbac_objects: list[dict[str, Any]] = []

    # -- setup ------------------------------------------------------------------------------
    def install(self) -> None:
        for path in sorted((REPO / "crds").glob("*.yaml")):
            apply(self.consumer, CRDS, yaml.safe_load(path.read_text()))
        for ns in (self.ns, self.team):
            apply(self.consumer, NAMESPACES, _namespace(ns))
        self.export(widget_crd(self.group, "widgets", "Widget", exported=True))

    def export(self, crd: dict[str, Any]) -> None:
        apply(self.provider, CRDS, crd)

        def established() -> bool:
            live = self.provider.get(CRDS, ObjectKey("", crd["metadata"]["name"]))
            conds = (live.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

        eventually(established, 30, f"CRD {crd['metadata']['name']} established")

    def provider_user_kubeconfig(self, *rbac_flags: str) -> Path:
        """A kubeconfig for a fresh provider user holding exactly `kubectl bind rbac`'s rules."""
        text = ok(run("rbac", "--api", self.api, "--user", self.user, "--name", self.rbac_name,
                      *rbac_flags))  # fmt: skip
        self.rbac_objects = [d for d in yaml.safe_load_all(text) if d]
        for obj in self.rbac_objects:
            apply(self.provider, RBAC_GVRS[obj["kind"]], obj)
        return self.clusters.provider.mint_kubeconfig(self.user)

    def konnector(self) -> Konnector:
        k = Konnector(
            self.clusters.consumer.kubeconfig,
            self.tmp / f"konnector-{len(self.konnectors)}.log",
            namespace=self.ns,
        )
        self.konnectors.append(k)
        return k.start().wait_ready()

    def bind(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return run("--konnector-namespace", self.ns, "--connection", self.connection, *argv)

    def create_widget(self, name: str) -> None:
        body = {
            "apiVersion": f"{self.group}/v1",
            "kind": "Widget",
            "metadata": {"namespace": self.team, "name": name},
            "spec": {"size": name},
        }
        self.consumer.create(self.widgets, body)

    def provider_copy(self, name: str) -> dict[str, Any] | None:
        try:
            return self.provider.get(self.widgets, ObjectKey(self.team, name))
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def logs(self) -> str:
        return "\n".join(f"--- {k.log_path.name}\n{k.log_tail()}" for k in self.konnectors)

    # -- what plan must not change ----------------------------------------------------------------
    def resource_versions(self) -> dict[str, str]:
        """resourceVersion of every object this test's konnector could write, on both sides."""
        out: dict[str, str] = {}
        reads = [
            ("consumer", self.consumer, CONNECTIONS, ""),
            ("consumer", self.consumer, CLUSTERBINDINGS, ""),
            ("consumer", self.consumer, BINDINGS, ""),
            ("consumer", self.consumer, CRDS, ""),
            ("consumer", self.consumer, SECRETS, self.ns),
            ("consumer", self.consumer, self.widgets, ""),
            ("consumer", self.consumer, EVENTS, self.team),
            ("consumer", self.consumer, SECRETS, self.team),
            ("consumer", self.consumer, CONFIGMAPS, self.team),
            ("provider", self.provider, CRDS, ""),
            ("provider", self.provider, self.widgets, ""),
            ("provider", self.provider, LEASES, "kube-bind"),
            ("provider", self.provider, SECRETS, self.team),
            ("provider", self.provider, CONFIGMAPS, self.team),
        ]
        for side, client, gvr, ns in reads:
            try:
                items = client.list(gvr, ns)[0]
            except ApiError as err:
                if err.code == 404:  # a namespace or API not there (yet): nothing to change
                    continue
                raise
            for obj in items:
                out[f"{side} {gvr.group_resource} {o.key_of(obj)}"] = o.resource_version(obj)
        for side, client in (("consumer", self.consumer), ("provider", self.provider)):
            for ns in (self.ns, self.team, "kube-bind"):
                with contextlib.suppress(ApiError):
                    obj = client.get(NAMESPACES, ObjectKey("", ns))
                    out[f"{side} namespace {ns}"] = o.resource_version(obj)
        return out

    # -- clean-up ----------------------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._teardown()
        for k in self.konnectors:
            k.stop()
        self._force_gone()
        self.consumer.close()
        self.provider.close()

    def _teardown(self) -> None:
        """Unbind and disconnect through a running konnector, as a user would."""
        c = self.consumer
        if not self._exists(c, CONNECTIONS, ObjectKey("", self.connection)):
            return
        if not any(k.alive for k in self.konnectors):
            self.konnector()
        for gvr, key in (
            (CLUSTERBINDINGS, ObjectKey("", self.connection)),
            (BINDINGS, ObjectKey(self.team, self.connection)),
            (CONNECTIONS, ObjectKey("", self.connection)),
        ):
            with contextlib.suppress(ApiError):
                c.delete(gvr, key)
            eventually(lambda gvr=gvr, key=key: not self._exists(c, gvr, key), 60, f"{key} gone")

    def _force_gone(self) -> None:
        """Whatever is left (a failed test): finalizers dropped, objects deleted."""
        c, p = self.consumer, self.provider
        leftovers = [
            (c, CLUSTERBINDINGS, ObjectKey("", self.connection)),
            (c, BINDINGS, ObjectKey(self.team, self.connection)),
            (c, CONNECTIONS, ObjectKey("", self.connection)),
            (c, SECRETS, ObjectKey(self.ns, f"{self.connection}-kubeconfig")),
        ]
        for client, gvr in ((c, self.widgets), (p, self.widgets)):
            with contextlib.suppress(ApiError):
                leftovers += [(client, gvr, o.key_of(x)) for x in client.list(gvr)[0]]
        for client, gvr, key in leftovers:
            with contextlib.suppress(ApiError):
                client.patch(gvr, key, {"metadata": {"finalizers": None}}, "merge")
            with contextlib.suppress(ApiError):
                client.delete(gvr, key)
        for client in (c, p):
            for name in (self.api, f"gizmos.{self.group}"):
                with contextlib.suppress(ApiError):
                    client.delete(CRDS, ObjectKey("", name))
            for ns in (self.ns, self.team):
                with contextlib.suppress(ApiError):
                    client.delete(NAMESPACES, ObjectKey("", ns))
        for obj in self.rbac_objects:
            if obj["kind"] == "Namespace":
                continue  # kube-bind on the provider is shared
            meta = obj["metadata"]
            with contextlib.suppress(ApiError):
                p.delete(RBAC_GVRS[obj["kind"]], ObjectKey(meta.get("namespace", ""), meta["name"]))

    @staticmethod
    def _exists(client: KubeClient, gvr: GVR, key: ObjectKey) -> bool:
        try:
            client.get(gvr, key)
        except ApiError as err:
            if err.code == 404:
                return False
            raise
        return True


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.fixture
def env(clusters: Clusters, tmp_path: Path) -> Iterator[Env]:
    e = Env(clusters, tmp_path)
    try:
        e.install()
        yield e
    finally:
        e.close()


def rows(text: str) -> dict[str, list[str]]:
    """`status` lines by "KIND NAME"."""
    out = {}
    for line in text.splitlines()[1:]:
        cols = line.split()
        out[f"{cols[0]} {cols[1]}"] = cols
    return out


def plan(e: Env) -> dict[str, Any]:
    text = ok(run("--kubeconfig", e.consumer_kubeconfig, "plan", "--konnector-namespace", e.ns,
                  "-o", "json"))  # fmt: skip
    result: dict[str, Any] = json.loads(text)
    return result


def test_bind_sync_status_plan_and_unbind(env: Env) -> None:
    e = env
    provider_kubeconfig = str(e.provider_user_kubeconfig())

    # -o yaml: the bundle, valid for the CRDs, nothing applied.
    out = ok(e.bind("--provider-kubeconfig", provider_kubeconfig, "--api", e.api, "-o", "yaml"))
    secret, conn, cb = yaml.safe_load_all(out)
    assert [secret["kind"], conn["kind"], cb["kind"]] == ["Secret", "Connection", "ClusterBinding"]
    for obj in (conn, cb):
        jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
    assert cb["spec"]["apis"] == [{"name": e.api}]
    held = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    assert sanitize(held) == sanitize(yaml.safe_load(Path(provider_kubeconfig).read_text()))
    assert not e._exists(e.consumer, CONNECTIONS, ObjectKey("", e.connection))

    # --dry-run: checked, shown, not applied (and no consumer kubeconfig needed for either).
    out = ok(e.bind("--provider-kubeconfig", provider_kubeconfig, "--api", e.api, "--dry-run"))
    assert f"Connection {e.connection} (dry run: not applied)" in out
    assert not e._exists(e.consumer, CONNECTIONS, ObjectKey("", e.connection))

    # Apply; the konnector connects as the restricted user and syncs a Widget.
    out = ok(e.bind("--kubeconfig", e.consumer_kubeconfig, "--provider-kubeconfig",
                    provider_kubeconfig, "--api", e.api))  # fmt: skip
    assert f"ClusterBinding {e.connection} applied" in out
    k = e.konnector()

    def status_ready() -> dict[str, list[str]] | None:
        # KUBECONFIG instead of --kubeconfig, as kubectl users do.
        listed = rows(ok(run("status", env={"KUBECONFIG": e.consumer_kubeconfig})))
        got = [listed.get(f"{kind} {e.connection}") for kind in ("Connection", "ClusterBinding")]
        return listed if all(r is not None and r[2] == "True" for r in got) else None

    listed = eventually(status_ready, 90, f"status shows Ready\n{e.logs()}", interval=1.0)
    assert listed[f"ClusterBinding {e.connection}"][-1] == e.api
    e.create_widget("w1")
    eventually(lambda: e.provider_copy("w1"), 60, f"w1 synced\n{e.logs()}")

    # At rest, konnector stopped: plan has nothing to do and writes nothing.
    k.quiet()
    assert k.terminate() == 0
    before = e.resource_versions()
    result = plan(e)
    assert e.resource_versions() == before, "plan wrote to a cluster"
    mine = {x["key"]: x for x in result["keys"]}
    assert f"instance {e.api} {e.team}/w1" in mine, result
    assert result["converged"], json.dumps(result, indent=2)
    text = ok(run("--kubeconfig", e.consumer_kubeconfig, "plan", "--konnector-namespace", e.ns))
    assert text.splitlines()[-1].startswith("nothing to do:"), text

    # A new Widget while the konnector is stopped: plan shows the pending create, writes nothing.
    e.create_widget("w2")
    before = e.resource_versions()
    result = plan(e)
    assert e.resource_versions() == before, "plan wrote to a cluster"
    assert not result["converged"]
    pending = [x for x in result["keys"] if x["pending"]]
    assert [x["key"] for x in pending] == [f"instance {e.api} {e.team}/w2"], pending
    assert f"create {e.api} {e.team}/w2 on the provider" in pending[0]["actions"]
    assert e.provider_copy("w2") is None

    # Started again, the konnector does it.
    k = e.konnector()
    eventually(lambda: e.provider_copy("w2"), 60, f"w2 synced\n{e.logs()}")

    # An edit while the konnector is stopped: plan lists the field its apply would change, as
    # the real API server's managed fields make it.
    k.quiet()
    assert k.terminate() == 0
    w1 = ObjectKey(e.team, "w1")
    e.consumer.patch(e.widgets, w1, {"spec": {"size": "huge"}}, field_manager="e2e-user")
    result = plan(e)
    (pending,) = [x for x in result["keys"] if x["pending"]]
    assert pending["key"] == f"instance {e.api} {e.team}/w1", pending
    applied = pending["actions"].index(f"apply {e.api} {e.team}/w1 on the provider")
    assert pending["changes"][applied] == ['spec.size: "w1" -> "huge"'], pending
    e.konnector()
    eventually(
        lambda: (e.provider_copy("w1") or {}).get("spec") == {"size": "huge"},
        60,
        f"w1 updated\n{e.logs()}",
    )

    # Unbind: what will happen, then the drain, then gone.
    out = ok(run("--kubeconfig", e.consumer_kubeconfig, "unbind", e.connection, "--timeout", "90"))
    assert f"{e.api}: 2 provider copies will be deleted" in out, out
    assert f"then the consumer CRD {e.api} is deleted" in out
    assert out.splitlines()[-1] == f"ClusterBinding {e.connection} is gone"
    assert e.provider_copy("w1") is None and e.provider_copy("w2") is None


def test_a_namespaced_binding_with_its_rbac(env: Env) -> None:
    """`-n`: a Binding, and provider RBAC whose writes are confined to that namespace."""
    e = env
    provider_kubeconfig = str(e.provider_user_kubeconfig("-n", e.team))
    assert {(x["kind"], x["metadata"].get("namespace")) for x in e.rbac_objects} >= {
        ("Role", e.team),
        ("RoleBinding", e.team),
    }
    out = ok(e.bind("--kubeconfig", e.consumer_kubeconfig, "--provider-kubeconfig",
                    provider_kubeconfig, "--api", e.api, "-n", e.team))  # fmt: skip
    assert f"Binding {e.team}/{e.connection} applied" in out
    e.konnector()

    def ready() -> bool:
        listed = rows(ok(run("--kubeconfig", e.consumer_kubeconfig, "status")))
        row = listed.get(f"Binding {e.team}/{e.connection}")
        return row is not None and row[2] == "True"

    eventually(ready, 90, f"the Binding is Ready\n{e.logs()}", interval=1.0)
    e.create_widget("w1")
    eventually(lambda: e.provider_copy("w1"), 60, f"w1 synced\n{e.logs()}")
    out = ok(run("--kubeconfig", e.consumer_kubeconfig, "unbind", e.connection, "-n", e.team,
                 "--timeout", "90"))  # fmt: skip
    # A Binding never deletes the cluster-wide CRD: the consumer objects stay.
    assert f"{e.api}: 1 provider copy will be deleted; the 1 consumer object(s) stay" in out
    assert out.splitlines()[-1] == f"Binding {e.team}/{e.connection} is gone"
    assert e.provider_copy("w1") is None


def test_a_kubeconfig_the_konnector_refuses_is_refused_with_its_reason(
    env: Env, tmp_path: Path
) -> None:
    doc = yaml.safe_load(env.clusters.provider.kubeconfig.read_text())
    doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                        "command": "get-token"}}  # fmt: skip
    bad = tmp_path / "exec.kubeconfig"
    bad.write_text(yaml.safe_dump(doc))
    reason = sanitize(doc)
    assert isinstance(reason, SecretProblem)
    result = env.bind("--provider-kubeconfig", str(bad), "--api", env.api, "-o", "yaml")
    assert result.returncode == 1, result
    assert reason.message in result.stderr
    assert "fix: " in result.stderr and "--minify --flatten" in result.stderr
    assert result.stdout == ""


def test_a_provider_kubeconfig_that_points_at_this_cluster_is_refused(env: Env) -> None:
    # The consumer exports an API of its own, so everything up to applying succeeds.
    apply(env.consumer, CRDS, widget_crd(env.group, "widgets", "Widget", exported=True))
    own = env.consumer_kubeconfig
    result = env.bind("--kubeconfig", own, "--provider-kubeconfig", own, "--api", env.api)
    assert result.returncode == 1, result
    assert f"the provider kubeconfig {own} points at this cluster itself" in result.stderr
    assert "fix: pass the provider's kubeconfig" in result.stderr
    assert not env._exists(env.consumer, CONNECTIONS, ObjectKey("", env.connection))
    assert not env._exists(env.consumer, SECRETS, ObjectKey(env.ns, f"{env.connection}-kubeconfig"))


def test_an_unreachable_provider_names_the_address(env: Env, tmp_path: Path) -> None:
    doc = yaml.safe_load(env.clusters.provider.kubeconfig.read_text())
    server = f"https://127.0.0.1:{free_port()}"
    doc["clusters"][0]["cluster"]["server"] = server
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    result = env.bind("--provider-kubeconfig", str(path), "--api", env.api, "-o", "yaml")
    assert result.returncode == 1, result
    assert f"cannot reach the provider at {server}" in result.stderr
    assert "fix: check that the provider's API server is up" in result.stderr


def test_an_api_not_exported_lists_those_that_are(env: Env) -> None:
    env.export(widget_crd(env.group, "gizmos", "Gizmo", exported=False))
    admin = str(env.clusters.provider.kubeconfig)
    gizmos = f"gizmos.{env.group}"
    result = env.bind("--provider-kubeconfig", admin, "--api", gizmos, "-o", "yaml")
    assert result.returncode == 1, result
    assert f"not exported by the provider: {gizmos}" in result.stderr
    exported = result.stderr.split("it exports: ", 1)[1]
    assert env.api in exported and gizmos not in exported


def test_a_consumer_user_without_access_is_told_so(env: Env) -> None:
    nobody = env.clusters.consumer.mint_kubeconfig(f"nobody-{env.connection}")
    admin = str(env.clusters.provider.kubeconfig)
    result = env.bind("--kubeconfig", str(nobody), "--provider-kubeconfig", admin, "--api", env.api)
    assert result.returncode == 1, result
    assert "no consumer access while applying Secret" in result.stderr
    assert "fix: " in result.stderr
    assert not env._exists(env.consumer, CONNECTIONS, ObjectKey("", env.connection))


def test_without_an_api_the_exported_ones_are_listed(env: Env) -> None:
    admin = str(env.clusters.provider.kubeconfig)
    result = env.bind("--provider-kubeconfig", admin, "-o", "yaml")
    assert result.returncode == 2, result
    assert "no API chosen: pass --api NAME (one of: " in result.stderr
    assert env.api in result.stderr


def test_list_shows_the_exports_and_exits_0(env: Env) -> None:
    """The README's walk-through lists what the provider exports; a script goes on after it."""
    admin = str(env.clusters.provider.kubeconfig)
    result = env.bind("--provider-kubeconfig", admin, "--list")
    assert result.returncode == 0, result
    row = next(line.split() for line in result.stdout.splitlines() if env.api in line)
    assert row[:2] == [env.api, "Namespaced"]
    assert "bind with: kubectl bind --provider-kubeconfig FILE --api NAME" in result.stdout


def test_usage_errors_exit_2() -> None:
    assert run("--provider-kubeconfig", "x", "--api", "a.b", "--all").returncode == 2
    assert run("--api", "a.b").returncode == 2  # no --provider-kubeconfig
    assert run("--api", "a.b", "status").returncode == 2  # a bind flag on another command
    assert run("rbac").returncode == 2  # --api is required


def test_kubectl_finds_the_plugin_and_runs_it(env: Env) -> None:
    """A real kubectl (built with the API servers) on PATH with the installed console script:
    `kubectl bind ...` is the plugin, arguments passed through, output and status unchanged."""
    e = env
    kubectl = build_binaries() / "kubectl"
    path = f"{KUBECTL_BIND.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    base = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    user = {**base, "PATH": path, "KUBECONFIG": e.consumer_kubeconfig}

    def kubectl_run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kubectl), *argv], env=user, capture_output=True, text=True, timeout=120
        )

    listed = kubectl_run("plugin", "list")
    assert str(KUBECTL_BIND) in listed.stdout, listed.stdout + listed.stderr
    provider_kubeconfig = str(e.provider_user_kubeconfig())
    out = ok(kubectl_run("bind", "--konnector-namespace", e.ns, "--connection", e.connection,
                         "--provider-kubeconfig", provider_kubeconfig, "--api", e.api))  # fmt: skip
    assert f"ClusterBinding {e.connection} applied" in out, out
    listed = rows(ok(kubectl_run("bind", "status")))
    # No konnector runs in this test: the bundle is there, not reconciled yet.
    assert listed[f"Connection {e.connection}"][2] == "Unknown", listed
    assert listed[f"ClusterBinding {e.connection}"][2] == "Unknown", listed
    refused = kubectl_run("bind", "--api", e.api)  # no provider kubeconfig: a usage error
    assert refused.returncode == 2 and "--provider-kubeconfig" in refused.stderr, refused
