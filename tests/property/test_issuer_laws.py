"""Laws of the issuer (kbcore/service/issuer.py):

- everything a Grant mints is inside its boundary: the home namespace, `<home>-*`, and
  cluster-scoped objects named after the Grant; cluster-wide rules name their objects;
- a plan carried out (on a simulated API server, its token controller running) is followed
  by an empty one;
- `plan_grant` never raises, whatever the Grant, the Export and the answers to its reads.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kbcore import objects as o
from kbcore.actions import PROVIDER, Create, Delete, Plan, Update, UpdateStatus
from kbcore.api.iam import OIDCIdentity
from kbcore.api.resources import CLUSTER_ROLES, CRDS, EXPORTS, GRANTS
from kbcore.objects import ObjectKey
from kbcore.reads import Get, Read
from kbcore.service import issuer as iss
from kbcore.service.issuer import GrantView
from tests.property.strategies import json_objects, json_values
from tests.unit import bindworld as bw
from tests.unit.service.provider import NOW, converge, grant_pass, provider, run
from tests.unit.service.provider import export as export_body

READY = [{"type": "Ready", "status": "True", "reason": "AsExpected", "message": "",
          "lastTransitionTime": "2026-01-01T00:00:00Z"}]  # fmt: skip
labels = st.from_regex(r"\A[a-z][a-z0-9]{0,6}\Z")
groups = st.builds(lambda a, b: f"{a}.{b}", labels, labels)
apis = st.lists(st.tuples(groups, labels), min_size=1, max_size=4, unique=True)
identities = st.builds(
    OIDCIdentity, issuer=st.sampled_from(["https://dex.example", "https://x"]), subject=labels
)
cluster_uids = st.uuids().map(str)
junk = st.one_of(json_values(6), json_objects(6))


def ready_export(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    body = export_body(apis=tuple(pairs))
    body["status"] = {"conditions": READY}
    return body


def inside(home: str, plan: Plan) -> list[str]:
    """The writes of `plan` outside the Grant's boundary."""
    out = []
    for action in plan.writes:
        assert isinstance(action, Create | Update | Delete | UpdateStatus), action
        t = action.target
        if t.gvr == GRANTS and t.key == ObjectKey("", home) and isinstance(action, UpdateStatus):
            continue
        ns = t.key.namespace
        if ns == home or ns.startswith(f"{home}-") or (not ns and t.key.name == home):
            if isinstance(action, Create | Update) and t.gvr == CLUSTER_ROLES:
                rules = action.body.get("rules") or []
                if not all(r.get("resourceNames") for r in rules):
                    out.append(f"cluster-wide rule without names: {rules}")
            continue
        out.append(str(t))
    return out


def answer(read: Read, draw: st.DrawFn) -> Any:
    """Absent, a junk object, or the object as the issuer would make it, drifted."""
    assert isinstance(read, Get), read
    choice = draw(st.sampled_from(["absent", "junk", "own"]))
    if choice == "absent":
        return None
    meta = {"name": read.key.name, "namespace": read.key.namespace, "uid": "u"}
    if choice == "junk":
        return {**draw(json_objects(6)), "metadata": meta}
    return {"metadata": {**meta, "labels": {"iam.kube-bind.io/grant": read.key.name}},
            "rules": draw(junk), "subjects": draw(junk), "roleRef": draw(junk),
            "type": iss.TOKEN_TYPE, "data": draw(junk)}  # fmt: skip


@given(identities, cluster_uids, apis, st.data())
def test_everything_minted_is_inside_the_boundary(
    identity: OIDCIdentity, uid: str, pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    grant = iss.grant_for(identity, "widgets", uid)
    grant["metadata"]["uid"] = "g"
    home = o.name(grant)
    observed: dict[Read, Any] = {}
    for _ in range(5):
        plan = iss.plan_grant(GrantView(grant, ready_export(pairs), observed, NOW))
        if not plan.needs:
            break
        observed.update({r: answer(r, data.draw) for r in plan.needs})
    assert not plan.needs
    assert inside(home, plan) == []


@given(st.lists(st.sampled_from(["widgets", "gadgets"]), min_size=1, max_size=2, unique=True),
       identities, cluster_uids)  # fmt: skip
def test_a_carried_out_plan_is_followed_by_an_empty_one(
    plurals: list[str], identity: OIDCIdentity, uid: str
) -> None:
    server, api = provider()
    api.create(CRDS, bw.crd("gadgets", "Gadget"), "test")
    body = export_body(apis=tuple(("example.org", p) for p in plurals))
    api.create(EXPORTS, body, "test")
    stored = api.get(EXPORTS, ObjectKey("", "widgets"))
    api.update(EXPORTS, {**stored, "status": {"conditions": READY}}, "status", "test")
    run(api, iss.plan_issue, iss.IssueView(identity, "widgets", uid, {}, NOW))
    home = o.name(iss.grant_for(identity, "widgets", uid))
    converge(server, api, home)
    assert grant_pass(api, home, NOW + 30).writes == ()
    ready = api.get(GRANTS, ObjectKey("", home))["status"]["conditions"]
    assert [(c["type"], c["reason"]) for c in ready] == [("Ready", "Issued")]


@given(junk, st.one_of(st.none(), junk), st.data())
def test_plan_grant_never_raises_on_hostile_bodies(
    grant_spec: Any, export: Any, data: st.DataObject
) -> None:
    grant = {"metadata": {"name": data.draw(st.sampled_from(["kb-0000000000", ""]))},
             "spec": grant_spec, "status": data.draw(junk)}  # fmt: skip
    if data.draw(st.booleans()):  # a well-formed key, so the deeper rules are reached
        grant = {**iss.grant_for(OIDCIdentity(issuer="i", subject="s"), "widgets", "u"),
                 "status": data.draw(junk)}  # fmt: skip
    exp = export if isinstance(export, dict) else None
    if exp is not None and data.draw(st.booleans()):
        exp = {**exp, "metadata": {"name": "widgets"}, "status": {"conditions": READY}}
    observed: dict[Read, Any] = {}
    for _ in range(5):
        plan = iss.plan_grant(GrantView(grant, exp, observed, NOW))
        if not plan.needs:
            break
        observed.update({r: data.draw(st.one_of(st.none(), json_objects(6))) for r in plan.needs})
    iss.issued_bundle(grant, exp or {}, data.draw(st.one_of(st.none(), json_objects(4))), "s", "")
    assert all(a.target.cluster == PROVIDER for a in plan.writes if hasattr(a, "target"))
