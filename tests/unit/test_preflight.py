"""kbcore.views.preflight: what `kubectl bind` checks before applying a gateway's bundle, and
the verdict (its rules 1 to 6)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kbcore.sync.tenancy import Tenant
from kbcore.views import bundle as kb
from kbcore.views import preflight as pf
from kbcore.views import rbac

API = "widgets.example.org"
CORE_CRDS = frozenset({"connections.core.kube-bind.io", "clusterbindings.core.kube-bind.io",
                       "bindings.core.kube-bind.io"})  # fmt: skip
DEPLOYMENT = {"metadata": {"name": "konnector", "labels": {pf.VERSION_LABEL: "0.1.0"}},
              "status": {"availableReplicas": 1}}  # fmt: skip
HEALTHY = pf.ConsumerFacts(CORE_CRDS, True, DEPLOYMENT)


def tenant_bundle(namespace: str = "kube-bind") -> list[dict[str, Any]]:
    objects = kb.bundle(connection="widgets", kubeconfig_text="x: 1\n", apis=[API],
                        konnector_namespace=namespace, binding=kb.BindingRef("widgets", ""))  # fmt: skip
    objects[1]["spec"]["tenant"] = {"namespace": "kb-0123456789", "apis": [API]}
    return objects


def everything(bundle: list[dict[str, Any]], allowed: bool | str = True) -> dict[Any, Any]:
    return dict.fromkeys(pf.access_checks(bundle), allowed)


def test_a_healthy_consumer_and_a_provider_that_allows_everything_is_ok() -> None:
    bundle = tenant_bundle()
    verdict = pf.verdict(bundle, HEALTHY, everything(bundle))
    assert verdict.ok
    n = len(pf.access_checks(bundle))
    assert [f.what for f in verdict.findings] == [
        "konnector 0.1.0 is running in kube-bind",
        f"the provider allows all {n} requests the konnector makes",
    ]


def test_before_the_bind_only_the_consumer_is_checked() -> None:
    bundle = tenant_bundle()
    assert pf.verdict(bundle, HEALTHY, None).findings == (
        pf.Finding(pf.INFO, "konnector 0.1.0 is running in kube-bind"),
    )
    assert not pf.verdict(bundle, pf.ConsumerFacts(frozenset(), True, None), None).ok


def test_a_tenants_checks_are_exactly_tenant_rules_verb_by_verb_and_name_by_name() -> None:
    rules = rbac.tenant_rules(Tenant("kb-0123456789", (API,)))
    expected = {(r.group, r.resource, v, n, r.namespace)
                for r in rules for v in r.verbs for n in (r.names or ("",))}  # fmt: skip
    got = {(c.group, c.resource, c.verb, c.name, c.namespace)
           for c in pf.access_checks(tenant_bundle())}  # fmt: skip
    assert got == expected
    # Nothing cluster-wide without a name: a tenant never lists what other tenants have.
    assert all(c.name or c.namespace for c in pf.access_checks(tenant_bundle()))


def test_an_untenanted_binding_checks_provider_rules() -> None:
    bundle = kb.bundle(connection="c", kubeconfig_text="x: 1\n", apis=[API],
                       konnector_namespace="kube-bind", binding=kb.BindingRef("c", "team"))  # fmt: skip
    rules = rbac.provider_rules([API], binding_namespace="team")
    assert {(c.resource, c.verb, c.namespace) for c in pf.access_checks(bundle)} == {
        (r.resource, v, r.namespace) for r in rules for v in r.verbs}  # fmt: skip
    assert pf.consumer_crds(bundle) == ("connections.core.kube-bind.io",
                                        "bindings.core.kube-bind.io")  # fmt: skip


def test_a_review_is_a_self_subject_access_review_of_the_check() -> None:
    check = pf.AccessCheck("coordination.k8s.io", "leases", "update", "l", "kb-x", "heartbeat")
    assert check.review()["spec"] == {"resourceAttributes": {
        "verb": "update", "group": "coordination.k8s.io", "resource": "leases", "name": "l",
        "namespace": "kb-x"}}  # fmt: skip
    assert check.describe() == "update leases.coordination.k8s.io l in namespace kb-x"


facts = st.builds(
    pf.ConsumerFacts,
    st.frozensets(st.sampled_from(sorted(CORE_CRDS))),
    st.booleans(),
    st.sampled_from(
        [
            None,
            DEPLOYMENT,
            {
                "metadata": {"name": "konnector"},
                "spec": {
                    "template": {"spec": {"containers": [{"image": "ghcr.io/x/konnector:v9"}]}}
                },
            },
        ]
    ),
)


@given(facts, st.data())
def test_the_verdict_blocks_exactly_on_missing_crds_namespace_or_access(
    consumer: pf.ConsumerFacts, data: st.DataObject
) -> None:
    bundle = tenant_bundle()
    checks = pf.access_checks(bundle)
    answers = {c: data.draw(st.sampled_from([True, True, False, "503 unavailable"]))
               for c in checks}  # fmt: skip
    verdict = pf.verdict(bundle, consumer, answers)
    crds_missing = not {"connections.core.kube-bind.io",
                        "clusterbindings.core.kube-bind.io"} <= consumer.crds  # fmt: skip
    denied = [c for c in checks if answers[c] is not True]
    # Rule 6: ok exactly when nothing blocks; a missing konnector only warns (rule 3).
    assert verdict.ok == (not crds_missing and consumer.namespace_exists and not denied)
    text = " ".join(f.what for f in verdict.blockers)
    # Rule 5: every denied or unanswered check is named.
    for c in denied:
        assert c.describe() in text
    if consumer.deployment is None:
        assert any(f.level == pf.WARNS and "no konnector" in f.what for f in verdict.findings)


def test_an_unasked_check_blocks() -> None:
    bundle = tenant_bundle()
    assert not pf.verdict(bundle, HEALTHY, {}).ok


def test_the_konnector_version_is_the_label_else_the_image_tag() -> None:
    assert pf.deployment_version(DEPLOYMENT) == "0.1.0"
    image = {"spec": {"template": {"spec": {"containers": [{"image": "r:5000/k/konnector:v2"}]}}}}
    assert pf.deployment_version(image) == "v2"
    assert pf.deployment_version({}) == "?"


def test_the_konnector_is_the_chart_labelled_deployment_else_the_one_named_konnector() -> None:
    chart = {"metadata": {"name": "release-konnector", "labels": {pf.NAME_LABEL: "konnector"}}}
    named = {"metadata": {"name": "konnector"}}
    other = {"metadata": {"name": "web"}}
    assert pf.find_konnector([other, named, chart]) is chart
    assert pf.find_konnector([other, named]) is named
    assert pf.find_konnector([other]) is None


def test_what_the_installer_will_apply_counts_as_there() -> None:
    """Rule 7: an empty consumer, with --install-konnector, is ok; the rendering's CRDs,
    namespace and Deployment are what makes it so, and the version to be installed is said."""
    from kbshell.install import rendered_manifests  # the real rendering the CLI installs

    bundle = tenant_bundle()
    empty = pf.ConsumerFacts(frozenset(), False, None)
    assert not pf.verdict(bundle, empty, everything(bundle)).ok
    installs = [*rendered_manifests(), {"kind": "Namespace", "metadata": {"name": "kube-bind"}}]
    facts = pf.installing(empty, installs, "kube-bind")
    verdict = pf.verdict(bundle, facts, everything(bundle))
    assert verdict.ok, verdict.blockers
    (said,) = [f for f in verdict.findings if "will be installed" in f.what]
    assert said.level == pf.INFO and said.what.endswith("will be installed in kube-bind")
    # Without the Namespace, or with the Deployment elsewhere, it is not.
    no_namespace = pf.installing(empty, rendered_manifests(), "kube-bind")
    assert not pf.verdict(bundle, no_namespace, everything(bundle)).ok
    elsewhere = pf.installing(empty, installs, "other")
    assert elsewhere.deployment is None and not elsewhere.installing
