"""Totality of the control-plane kernels on hostile objects (docs/design.md, "The laws").

A Connection, binding or Secret can hold anything a user, a buggy client or a hostile provider
wrote. Whatever they hold, `plan_connection` and `plan_binding` return a Plan: they never
raise, and never ask for a read forever. And whatever they hold, a Connection whose
credentials reach the consumer itself never plans a write on the "provider" (rule 6a). (A read that *failed* is a different matter: it is
raised as its ApiError so the shell backs off, never taken for absence; that is tested in
tests/unit/test_binding.py and test_connection.py.)
"""

from __future__ import annotations

import base64
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from kbcore import objects as o
from kbcore.actions import CONSUMER, PROVIDER, Plan
from kbcore.control.binding import BindingView, plan_binding
from kbcore.control.connection import ConnectionView, plan_connection
from kbcore.control.kubeconfig import Credentials, credentials_for
from kbcore.identity import identity_reads
from kbcore.reads import Discovery, Get, List, OpenAPIDoc, Read
from tests.property.strategies import json_objects, json_values


def hostile(kind: str, name: str) -> st.SearchStrategy[dict[str, Any]]:
    """An object of `kind` whose spec/status/metadata fields may be anything."""
    return st.fixed_dictionaries(
        {"apiVersion": st.just("core.kube-bind.io/v1alpha1"), "kind": st.just(kind)},
        optional={f: st.one_of(json_values(8), json_objects(8)) for f in ("spec", "status")},
    ).map(lambda o: {**o, "metadata": {"name": name, "uid": "u1", "resourceVersion": "1"}})


GOOD_KUBECONFIG = base64.b64encode(
    b"clusters: [{name: p, cluster: {server: 'https://p.kbsim'}}]\n"
    b"users: [{name: u, user: {token: t}}]\n"
    b"contexts: [{name: p, context: {cluster: p, user: u}}]\ncurrent-context: p\n"
).decode()
READY = {
    "type": "Ready",
    "status": "True",
    "reason": "AsExpected",
    "message": "",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}


def plausible(kind: str, name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly well-formed objects with junk in some fields: reaches the deeper rules."""
    junk = st.one_of(json_values(4), json_objects(4))
    if kind == "Connection":
        spec = st.fixed_dictionaries(
            {"kubeconfigSecretRef": st.just({"namespace": "kube-bind", "name": "kc"})},
            optional={
                "schema": st.one_of(
                    junk,
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "source": st.sampled_from(["Auto", "CRD", "OpenAPI", "x"]),
                            "pullPolicy": st.sampled_from(["Bound", "All", "None", 3]),
                            "updatePolicy": st.sampled_from(["Always", "Once", None]),
                        },
                    ),
                ),
                "autoBind": st.one_of(st.booleans(), junk),
            },
        )
    else:
        spec = st.fixed_dictionaries(
            {
                "connectionRef": st.one_of(st.just({"name": "p"}), junk),
                "apis": st.one_of(st.just([{"name": "widgets.example.org"}]), junk),
            },
            optional={
                "relatedResources": st.one_of(
                    junk, st.just([{"resource": "secrets", "direction": "FromProvider"}])
                )
            },
        )
    status = st.fixed_dictionaries(
        {},
        optional={
            "conditions": st.one_of(st.just([READY]), junk),
            "localClusterUID": st.one_of(st.just("l"), junk),
            "remoteClusterUID": st.one_of(st.just("r"), junk),
            "activeSchemaSource": st.sampled_from(["CRD", "OpenAPI", ""]),
            "exportedAPIs": st.one_of(
                junk, st.just([{"name": "widgets.example.org", "scope": "Namespaced"}])
            ),
            "boundAPIs": junk,
        },
    )
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just("core.kube-bind.io/v1alpha1"),
            "kind": st.just(kind),
            "spec": spec,
            "status": status,
        }
    ).map(
        lambda o: {
            **o,
            "metadata": {
                "name": name,
                "uid": "u1",
                "resourceVersion": "1",
                "finalizers": ["core.kube-bind.io/cleanup"],
            },
        }
    )


def answer(read: Read, junk: Any, consumer_uid: str | None = None, absent: bool = False) -> Any:
    """A plausible server answer for `read`, with junk where the server returns objects; the
    consumer's identity objects carry `consumer_uid` when given (else the same junk as the
    provider's, which makes the two clusters one); with `absent`, every other object is not
    found (so the kernel gets as far as creating what it creates)."""
    identity = (*identity_reads(CONSUMER), *identity_reads(PROVIDER))
    if consumer_uid is not None and isinstance(read, Get) and read in identity_reads(CONSUMER):
        return {"metadata": {"name": read.key.name, "uid": consumer_uid}}
    if absent and isinstance(read, Get) and read not in identity:
        return None
    if isinstance(read, Get):
        return junk if isinstance(junk, dict) else None
    if isinstance(read, List):
        return [junk] if isinstance(junk, dict) else []
    if isinstance(read, Discovery | OpenAPIDoc):
        return junk if isinstance(junk, dict) else {}
    raise TypeError(read)


def drive(
    planner: Any, view: Any, junk: Any, consumer_uid: str | None = None, absent: bool = False
) -> Plan:
    observed: dict[Read, Any] = {}
    for _ in range(40):
        plan: Plan = planner(attrs.evolve(view, observed=dict(observed)))
        if not plan.needs:
            return plan
        for need in plan.needs:
            assert isinstance(need, Get | List | Discovery | OpenAPIDoc), need
            observed[need] = answer(need, junk, consumer_uid, absent)
    raise AssertionError(f"kept asking for reads: {plan.needs}")


SECRET_DATA = st.one_of(
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
    st.just({"kubeconfig": base64.b64encode(b"clusters: [}").decode()}),
    st.just({"kubeconfig": GOOD_KUBECONFIG}),
)
JUNK_ANSWERS = st.one_of(
    st.none(),
    json_objects(6),
    st.just({"metadata": {"name": "kube-system", "uid": "r"}}),
    st.just(
        {
            "metadata": {"name": "x", "uid": "r", "labels": {"core.kube-bind.io/managed": "true"}},
            "spec": {
                "group": "example.org",
                "names": {"plural": "widgets", "kind": "Widget"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": True, "storage": True}],
            },
        }
    ),
)


@given(
    conn=st.one_of(hostile("Connection", "p"), plausible("Connection", "p")),
    data=SECRET_DATA,
    junk=JUNK_ANSWERS,
    now=st.floats(0, 4e9, allow_nan=False),
    consumer_uid=st.sampled_from([None, "l", "r"]),
    absent=st.booleans(),
)
def test_plan_connection_is_total_on_hostile_objects(
    conn: dict[str, Any],
    data: dict[str, str],
    junk: Any,
    now: float,
    consumer_uid: str | None,
    absent: bool,
) -> None:
    secret = {"metadata": {"namespace": "kube-bind", "name": "kc"}, "data": data}
    creds = credentials_for(conn, secret, "kube-bind")
    view = ConnectionView(
        connection=conn,
        konnector_namespace="kube-bind",
        secret=secret,
        credentials=creds,
        observed={},
        now=now,
    )
    plan = drive(plan_connection, view, junk, consumer_uid, absent)
    assert isinstance(plan, Plan)
    provider_uid = o.uid(junk) if isinstance(junk, dict) else ""
    if consumer_uid is None or consumer_uid == provider_uid:
        # Rule 6a: credentials that reach the consumer itself never write "on the provider".
        assert not [a for a in plan.writes if _cluster_of(a) == PROVIDER], plan


def _cluster_of(action: Any) -> str:
    target = getattr(action, "target", None)
    return str(target.cluster) if target is not None else str(getattr(action, "cluster", ""))


@given(
    binding=st.one_of(
        hostile("ClusterBinding", "b"),
        hostile("Binding", "b"),
        plausible("ClusterBinding", "b"),
        plausible("Binding", "b"),
    ),
    conn=st.one_of(st.none(), hostile("Connection", "p"), plausible("Connection", "p")),
    junk=JUNK_ANSWERS,
    deleting=st.booleans(),
)
def test_plan_binding_is_total_on_hostile_objects(
    binding: dict[str, Any], conn: dict[str, Any] | None, junk: Any, deleting: bool
) -> None:
    if deleting:
        binding["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if binding["kind"] == "Binding":
        binding["metadata"]["namespace"] = "team-a"
    binding["metadata"]["finalizers"] = ["core.kube-bind.io/cleanup"]
    view = BindingView(
        binding=binding,
        connection=conn,
        credentials=Credentials(server="https://p.example") if conn else None,
        observed={},
        now=0.0,
        konnector_namespace="kube-bind",
    )
    assert isinstance(drive(plan_binding, view, junk), Plan)
