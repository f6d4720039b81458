"""The bundle `kubectl bind` writes (kbcore/views/bundle.py): what the konnector accepts, and what the
user is told before anything is written.

The facts a user relies on: the objects are valid for the CRDs in `crds/`; the Secret yields
exactly the credentials the file's context does, as the konnector reads it, and nothing else
of the file; the konnector takes the bundle to Ready and syncs through it; a kubeconfig the
konnector would refuse is refused first, with the konnector's reason; an API the provider
does not export is refused with the list of those it does.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore.actions import PROVIDER, AddFinalizer
from kbcore.api import keys
from kbcore.api.convert import structure_object
from kbcore.control.connection import ConnectionView, plan_connection
from kbcore.control.kubeconfig import Credentials, SecretProblem, credentials_for, sanitize
from kbcore.errors import ApiError
from kbcore.identity import identity_reads
from kbcore.objects import ObjectKey
from kbcore.reads import Failed, List
from kbcore.views import bundle as kb
from tests.unit import bindworld as bw

REPO = Path(__file__).resolve().parents[2]
CRD_SCHEMAS = {
    doc["spec"]["names"]["kind"]: doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path in sorted((REPO / "crds").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
}
WIDGETS_API = {
    "name": "widgets.example.org",
    "group": "example.org",
    "resource": "widgets",
    "scope": "Namespaced",
    "versions": ["v1"],
}
GADGETS_API = {**WIDGETS_API, "name": "gadgets.example.org", "resource": "gadgets",
               "scope": "Cluster"}  # fmt: skip
OFFER = kb.Offer("provider-uid", "CRD", (GADGETS_API, WIDGETS_API))


def made(apis: list[str], binding: kb.BindingRef | None = None, **kw: Any) -> list[dict[str, Any]]:
    single = kb.single_context(bw.provider_kubeconfig(**kw))
    assert isinstance(single, dict), single
    return kb.bundle(
        connection="provider",
        kubeconfig_text=yaml.safe_dump(single),
        apis=apis,
        binding=binding,
    )


# -- valid for the CRDs ----------------------------------------------------------------------


@pytest.mark.parametrize("binding", [None, kb.BindingRef("w", "team-x")])
def test_bundle_objects_are_valid_for_the_crds_and_the_api_types(
    binding: kb.BindingRef | None,
) -> None:
    secret, conn, bound = made(["widgets.example.org"], binding)
    assert [secret["kind"], conn["kind"]] == ["Secret", "Connection"]
    assert bound["kind"] == ("Binding" if binding else "ClusterBinding")
    for obj in (conn, bound):
        jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
        structure_object(obj)  # the strict converter the kernel reads them with
    assert bound["metadata"].get("namespace") == (binding.namespace if binding else None)
    assert bound["spec"] == {
        "connectionRef": {"name": "provider"},
        "apis": [{"name": "widgets.example.org"}],
    }
    assert conn["spec"]["kubeconfigSecretRef"] == {
        "namespace": "kube-bind",
        "name": secret["metadata"]["name"],
        "key": "kubeconfig",
    }
    assert secret["metadata"]["namespace"] == "kube-bind"


def test_schema_validation_would_catch_a_broken_bundle() -> None:
    """Guard the guard: the CRD schema refuses a binding without APIs."""
    _, _, bound = made(["widgets.example.org"])
    bound["spec"]["apis"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bound, CRD_SCHEMAS["ClusterBinding"])


# -- the Secret, as the konnector reads it ----------------------------------------------------


def test_the_secret_yields_the_credentials_of_the_files_context_and_nothing_else() -> None:
    doc = bw.provider_kubeconfig("s3cret")
    secret, conn, _ = made(["widgets.example.org"], token="s3cret")
    creds = credentials_for(conn, secret, "kube-bind")
    assert creds == sanitize(doc) == Credentials(server="https://provider.kbsim", token="s3cret")
    text = base64.b64decode(secret["data"]["kubeconfig"]).decode()
    assert "other-secret-token" not in text and "elsewhere" not in text


def test_a_chosen_context_is_the_one_the_secret_holds() -> None:
    single = kb.single_context(bw.provider_kubeconfig(), "other")
    assert isinstance(single, dict)
    assert sanitize(single) == Credentials(
        server="https://elsewhere.example.com", token="other-secret-token"
    )
    assert kb.cluster_name(single) == "elsewhere"


@settings(max_examples=60, deadline=None)
@given(
    chosen=st.integers(0, 3),
    n=st.integers(1, 4),
    token=st.text("abcdef0123456789", min_size=1, max_size=20),
    insecure=st.booleans(),
)
def test_law_the_secret_sanitizes_to_what_the_file_sanitizes_to(
    chosen: int, n: int, token: str, insecure: bool
) -> None:
    """For any context of any file the konnector accepts: sanitize(Secret) == sanitize(file)."""
    chosen %= n
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": f"c{i}", "cluster": {"server": f"https://h{i}.example.com:6443",
                                          "insecure-skip-tls-verify": insecure}}
            for i in range(n)
        ],
        # Unverified TLS only with a client certificate: a token there is refused (rule 8b).
        "users": [{"name": f"u{i}", "user": {"client-certificate-data": f"{token}{i}",
                                             "client-key-data": f"k{token}{i}"}
                   if insecure else {"token": f"{token}{i}"}} for i in range(n)],
        "contexts": [{"name": f"x{i}", "context": {"cluster": f"c{i}", "user": f"u{i}"}}
                     for i in range(n)],
    }  # fmt: skip
    single = kb.single_context(doc, f"x{chosen}")
    assert isinstance(single, dict)
    want = sanitize({**doc, "current-context": f"x{chosen}"})
    objects = kb.bundle(
        connection="p", kubeconfig_text=yaml.safe_dump(single), apis=["widgets.example.org"]
    )
    secret, conn, _ = objects
    assert credentials_for(conn, secret, "kube-bind") == want
    assert len(single["contexts"]) == len(single["clusters"]) == len(single["users"]) == 1


def test_the_connection_planner_accepts_the_bundle() -> None:
    secret, conn, _ = made(["widgets.example.org"])
    # As the API server returns them: with metadata the server fills in.
    secret["metadata"] |= {"uid": "s1", "resourceVersion": "1"}
    conn["metadata"] |= {"uid": "c1", "resourceVersion": "2", "generation": 1}
    creds = credentials_for(conn, secret, "kube-bind")
    view = ConnectionView(conn, "kube-bind", secret, creds, {}, 1e9)
    first = plan_connection(view)
    assert {a.target.gvr.resource for a in first.actions if isinstance(a, AddFinalizer)} == {
        "secrets",
        "connections",
    }
    conn["metadata"]["finalizers"] = [keys.FINALIZER_CLEANUP]
    secret["metadata"]["finalizers"] = [keys.FINALIZER_CLEANUP]
    second = plan_connection(ConnectionView(conn, "kube-bind", secret, creds, {}, 1e9))
    # Past the Secret: it asks the provider who it is, with these credentials.
    assert set(identity_reads(PROVIDER)) <= set(second.needs)


def test_the_konnector_takes_the_bundle_to_ready_and_syncs_through_it() -> None:
    w = bw.world()
    bw.start(w)
    bw.apply_bundle(w, made(["widgets.example.org"]))
    assert w.settle(60)
    consumer = "consumer"
    assert (
        bw.ready(bw.get(w, consumer, bw.CONNECTIONS, ObjectKey("", "provider")))
        == "True/AsExpected"
    )
    assert (
        bw.ready(bw.get(w, consumer, bw.CLUSTERBINDINGS, ObjectKey("", "provider")))
        == "True/AsExpected"
    )
    w.user_call(lambda: w.clusters[consumer].create(bw.WIDGETS, bw.widget("w1")))
    assert w.settle(60)
    copy = bw.get(w, "provider", bw.WIDGETS, ObjectKey("team-x", "w1"))
    assert copy is not None and copy["spec"] == {"size": "w1"}


def test_a_namespaced_binding_bundle_syncs_only_its_namespace() -> None:
    w = bw.world()
    bw.start(w)
    bw.apply_bundle(w, made(["widgets.example.org"], kb.BindingRef("w", "team-x")))
    assert w.settle(60)
    binding = bw.get(w, "consumer", bw.BINDINGS, ObjectKey("team-x", "w"))
    assert bw.ready(binding) == "True/AsExpected"
    w.user_call(lambda: w.clusters["consumer"].create(bw.NAMESPACES, bw.namespace("team-y")))
    for ns in ("team-x", "team-y"):
        w.user_call(lambda ns=ns: w.clusters["consumer"].create(bw.WIDGETS, bw.widget("w", ns)))
    assert w.settle(60)
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey("team-x", "w")) is not None
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey("team-y", "w")) is None


# -- refused before anything is written ---------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "cluster"),
    [
        ({"exec": {"command": "gcloud"}}, {}),
        ({"tokenFile": "/var/run/token"}, {}),
        ({"token": "t"}, {"certificate-authority": "/etc/ca.crt"}),
        ({"auth-provider": {"name": "oidc"}}, {}),
    ],
)
def test_a_kubeconfig_the_konnector_refuses_is_refused_with_its_reason(
    user: dict[str, Any], cluster: dict[str, Any]
) -> None:
    doc = bw.provider_kubeconfig()
    doc["users"][0]["user"] = user
    doc["clusters"][0]["cluster"] |= cluster
    refused = kb.single_context(doc)
    konnector = sanitize(doc)
    assert isinstance(refused, SecretProblem) and isinstance(konnector, SecretProblem)
    assert refused.message == konnector.message


def test_an_unknown_context_is_refused_naming_those_there_are() -> None:
    refused = kb.single_context(bw.provider_kubeconfig(), "nope")
    assert isinstance(refused, SecretProblem)
    assert "'nope'" in refused.message and "provider, other" in refused.message


def test_not_a_kubeconfig_is_refused() -> None:
    assert isinstance(kb.single_context(["a", "list"]), SecretProblem)


def test_an_api_not_exported_is_refused_listing_those_that_are() -> None:
    refused = kb.choose_apis(OFFER, ["widgets.example.org", "nope.example.org"], every=False,
                             namespaced=False)  # fmt: skip
    assert isinstance(refused, kb.NotBindable)
    assert "nope.example.org" in refused.message
    assert "it exports: gadgets.example.org, widgets.example.org" in refused.message


def test_apis_are_chosen_in_order_without_duplicates() -> None:
    chosen = kb.choose_apis(
        OFFER, ["widgets.example.org", "gadgets.example.org", "widgets.example.org"],
        every=False, namespaced=False,
    )  # fmt: skip
    assert chosen == ("widgets.example.org", "gadgets.example.org")


def test_all_binds_every_exported_api_and_a_binding_only_namespaced_ones() -> None:
    assert kb.choose_apis(OFFER, [], every=True, namespaced=False) == (
        "gadgets.example.org",
        "widgets.example.org",
    )
    assert kb.choose_apis(OFFER, [], every=True, namespaced=True) == ("widgets.example.org",)


def test_a_binding_cannot_bind_a_cluster_scoped_api() -> None:
    refused = kb.choose_apis(OFFER, ["gadgets.example.org"], every=False, namespaced=True)
    assert isinstance(refused, kb.NotBindable)
    assert "cluster-scoped" in refused.message and "leave out --namespace" in refused.message


def test_no_api_chosen_lists_what_there_is() -> None:
    refused = kb.choose_apis(OFFER, [], every=False, namespaced=False)
    assert isinstance(refused, kb.NotBindable)
    assert refused.message == (
        "no API chosen: pass --api NAME (one of: gadgets.example.org, widgets.example.org) or --all"
    )


def test_a_provider_exporting_nothing_says_how_to_export() -> None:
    empty = kb.Offer("uid", "OpenAPI", ())
    refused = kb.choose_apis(empty, ["widgets.example.org"], every=False, namespaced=False)
    assert isinstance(refused, kb.NotBindable)
    assert f"kubectl label crd <name> {keys.LABEL_EXPORTED}=true" in refused.message


# -- what the provider offers: asked as the Connection asks ------------------------------------


def _drive(gen: Any, answers: dict[Any, Any]) -> Any:
    try:
        read = next(gen)
        while True:
            read = gen.send(answers[read])
    except StopIteration as stop:
        return stop.value


def test_the_offer_is_the_providers_identity_and_exported_crds() -> None:
    crds = [bw.crd("widgets", "Widget"), bw.crd("gadgets", "Gadget", scope="Cluster")]
    logical, kube_system = identity_reads(PROVIDER)
    answers: dict[Any, Any] = {
        logical: None,
        kube_system: {"metadata": {"name": "kube-system", "uid": "prov-uid"}},
        List(PROVIDER, bw.CRDS, label_selector=f"{keys.LABEL_EXPORTED}=true"): crds,
    }
    offer = _drive(kb.provider_offer(), answers)
    assert offer.cluster_uid == "prov-uid" and offer.source == "CRD"
    assert offer.names == ("gadgets.example.org", "widgets.example.org")


def test_a_forbidden_identity_read_is_raised_not_skipped() -> None:
    logical, kube_system = identity_reads(PROVIDER)
    denied = Failed(ApiError(403, "Forbidden", "nope"))
    with pytest.raises(ApiError) as err:
        _drive(kb.provider_offer(), {logical: denied, kube_system: denied})
    assert err.value.code == 403


# -- names -------------------------------------------------------------------------------------


def test_names_the_api_server_would_refuse_are_reported() -> None:
    problems = kb.bundle_problems(
        connection="Bad_Name", konnector_namespace="kube-bind", binding=kb.BindingRef("ok", "x.y")
    )
    assert any("Connection name 'Bad_Name'" in p for p in problems)
    assert any("namespace 'x.y'" in p for p in problems)
    assert (
        kb.bundle_problems(
            connection="p", konnector_namespace="kube-bind", binding=kb.BindingRef("p")
        )
        == []
    )


def test_default_connection_name_is_a_label_made_from_the_cluster_name() -> None:
    assert kb.as_label("kind-Provider_1") == "kind-provider-1"
    assert kb.as_label("___") == "provider"
    assert kb.name_problem(kb.as_label("x" * 100 + ".y"), "n", label=True) is None
