"""kbcore.schema.policy: refusals, the consumer-CRD transform, and plan_install's numbered rules.

Rule numbers refer to the module docstring of kbcore/schema/policy.py. Upstream's CRD-pull unit tests (e2e
step 25) run against a kbsim API server, which defaults CRD fields on create the way a
real one does, so "no second write" is checked against a stored object, not our own body.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore import objects as o
from kbcore.actions import CONSUMER, Action, Create, Delete, MergePatch, Update
from kbcore.api import conditions, keys
from kbcore.api.resources import CRDS
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.schema.policy import (
    Install,
    Refusal,
    crd_ref,
    created_by,
    established,
    for_consumer,
    owned_by,
    plan_install,
    plan_uninstall,
    refuse_exported_change,
    refuse_install,
    refuse_provider_crd,
    refuse_schema_change,
    schema_hash,
)
from kbsim.apiserver import APIServer
from kbsim.patch import merge_patch
from kbsim.schema import validate_crd
from tests import crds

CONN = "demo-provider"
OTHER = "other-provider"
NAME = "widgets.example.org"
REF = ObjectRef(CONSUMER, CRDS, ObjectKey("", NAME))
CRDS_YAML = Path(__file__).resolve().parents[1] / "data" / "openapi" / "crds.yaml"


def data_crds() -> list[dict[str, Any]]:
    with CRDS_YAML.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]


def provider(
    *,
    group: str = "example.org",
    plural: str = "widgets",
    kind: str = "Widget",
    versions: list[dict[str, Any]] | None = None,
    columns: list[dict[str, Any]] | None = None,
    labels: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A provider CRD as its API server returns it (server-owned fields included)."""
    if versions is None:
        versions = [crds.version(schema=crds.widget_schema("integer"), columns=columns)]
    out = crds.crd(plural, kind, group=group, singular=plural[:-1], versions=versions)
    out["metadata"].update(
        {
            "uid": "provider-uid",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": labels if labels is not None else {keys.LABEL_EXPORTED: "true"},
            "annotations": {"provider.example/note": "x"},
            "managedFields": [{"manager": "kubectl"}],
            "ownerReferences": [{"kind": "Thing", "name": "t", "uid": "u"}],
            "finalizers": ["provider.example/keep"],
        }
    )
    out["status"] = {"acceptedNames": {"plural": plural, "kind": kind}, "storedVersions": ["v1"]}
    return out


def condition_established(obj: dict[str, Any], status: str = "True") -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.setdefault("status", {})["conditions"] = [
        {"type": "NamesAccepted", "status": "True"},
        {"type": "Established", "status": status},
    ]
    return out


def installed_copy(desired: dict[str, Any], connection: str = CONN) -> dict[str, Any]:
    """The consumer CRD as the server holds it after our Create, Established."""
    out = condition_established(for_consumer(desired, connection))
    out["metadata"].update(uid="consumer-uid", resourceVersion="7", generation=1)
    storage = [v["name"] for v in out["spec"]["versions"] if v["storage"]]
    out["status"]["storedVersions"] = storage
    return out


# --- schema_hash --------------------------------------------------------------------------------


def test_schema_hash_is_sha256_prefix_of_canonical_json() -> None:
    spec = {"b": [1, {"y": 2, "x": "é"}], "a": True}
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    expected = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert schema_hash(spec) == expected
    assert len(expected) == len("sha256:") + 16
    assert schema_hash({"a": True, "b": [1, {"x": "é", "y": 2}]}) == expected  # key order
    assert schema_hash({"a": False, "b": [1, {"x": "é", "y": 2}]}) != expected


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("crd", data_crds(), ids=lambda c: c["metadata"]["name"])
def test_data_crds_are_accepted(crd: dict[str, Any]) -> None:
    assert refuse_provider_crd(crd) is None


def test_conversion_webhook_is_refused() -> None:
    crd = provider()
    crd["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {"clientConfig": {"url": "https://x"}, "conversionReviewVersions": ["v1"]},
    }
    refusal = refuse_provider_crd(crd)
    assert refusal == Refusal(
        conditions.CONVERSION_WEBHOOK,
        'CRD "widgets.example.org" converts versions through a webhook, which cannot run on the '
        "consumer; export a CRD with conversion strategy None",
    )


def test_conversion_none_is_accepted() -> None:
    crd = provider()
    crd["spec"]["conversion"] = {"strategy": "None"}
    assert refuse_provider_crd(crd) is None


@pytest.mark.parametrize("group", ["apps", "foo.k8s.io", "k8s.io", "core.kube-bind.io", "batch"])
def test_protected_group_is_refused(group: str) -> None:
    refusal = refuse_provider_crd(provider(group=group, plural="deployments"))
    assert refusal is not None
    assert refusal.reason == conditions.PROTECTED_GROUP
    assert f'"deployments.{group}"' in refusal.message
    assert f'protected API group "{group}"' in refusal.message


def test_protected_group_wins_over_webhook() -> None:
    crd = provider(group="apps")
    crd["spec"]["conversion"] = {"strategy": "Webhook"}
    refusal = refuse_provider_crd(crd)
    assert refusal is not None and refusal.reason == conditions.PROTECTED_GROUP


def _hostile(edit: str) -> Any:
    crd: Any = provider()
    spec = crd["spec"]
    if edit == "versions missing":
        del spec["versions"]
    elif edit == "versions empty":
        spec["versions"] = []
    elif edit == "versions not a list":
        spec["versions"] = {"v1": {"served": True}}
    elif edit == "version not a map":
        spec["versions"] = ["v1"]
    elif edit == "version unnamed":
        del spec["versions"][0]["name"]
    elif edit == "version twice":
        spec["versions"] = [spec["versions"][0], copy.deepcopy(spec["versions"][0])]
    elif edit == "nothing served":
        spec["versions"][0]["served"] = False
    elif edit == "served not a bool":
        spec["versions"][0]["served"] = "true"
    elif edit == "spec a list":
        crd["spec"] = [spec]
    elif edit == "spec missing":
        del crd["spec"]
    elif edit == "names missing":
        del spec["names"]
    elif edit == "names a string":
        spec["names"] = "widgets"
    elif edit == "plural missing":
        del spec["names"]["plural"]
    elif edit == "kind missing":
        del spec["names"]["kind"]
    elif edit == "group missing":
        del spec["group"]
    elif edit == "group a number":
        spec["group"] = 7
    elif edit == "name mismatch":
        crd["metadata"]["name"] = "gadgets.example.org"
    elif edit == "scope bad":
        spec["scope"] = "Everywhere"
    elif edit == "conversion a list":
        spec["conversion"] = ["None"]
    elif edit == "conversion unknown":
        spec["conversion"] = {"strategy": "Magic"}
    elif edit == "metadata a list":
        crd["metadata"] = ["x"]
        crd["spec"]["versions"] = 3
    elif edit == "not a dict":
        crd = [crd]
    return crd


HOSTILE = [
    "versions missing",
    "versions empty",
    "versions not a list",
    "version not a map",
    "version unnamed",
    "version twice",
    "nothing served",
    "served not a bool",
    "spec a list",
    "spec missing",
    "names missing",
    "names a string",
    "plural missing",
    "kind missing",
    "group missing",
    "group a number",
    "name mismatch",
    "scope bad",
    "conversion a list",
    "conversion unknown",
    "metadata a list",
    "not a dict",
]


@pytest.mark.parametrize("edit", HOSTILE)
def test_hostile_shapes_are_invalid_schema(edit: str) -> None:
    crd = _hostile(edit)
    refusal = refuse_provider_crd(crd)
    assert refusal is not None
    assert refusal.reason == conditions.INVALID_SCHEMA
    assert refusal.message.startswith('CRD "')
    assert "fix the CRD on the provider" in refusal.message
    # ... and every consumer of a provider CRD treats it as refused, without raising.
    install = plan_install(crd, None, connection=CONN, create=True, update=True)
    assert install == Install((), "", False, refusal)
    with pytest.raises(ValueError, match="cannot be installed on the consumer"):
        for_consumer(crd, CONN)


def test_invalid_schema_message_names_the_api() -> None:
    refusal = refuse_provider_crd(_hostile("nothing served"))
    assert refusal == Refusal(
        conditions.INVALID_SCHEMA,
        'CRD "widgets.example.org" cannot be installed on the consumer: it serves no version; '
        "fix the CRD on the provider",
    )


# --- for_consumer -------------------------------------------------------------------------------


def test_for_consumer_metadata_is_rebuilt() -> None:
    src = provider(labels={keys.LABEL_EXPORTED: "true", "team": "a", "bad": 3})
    out = for_consumer(src, CONN)
    assert out["apiVersion"] == "apiextensions.k8s.io/v1"
    assert out["kind"] == "CustomResourceDefinition"
    assert out["metadata"] == {
        "name": NAME,
        "labels": {keys.LABEL_EXPORTED: "true", "team": "a", keys.LABEL_MANAGED: "true"},
        "annotations": {
            keys.ANNOTATION_CONNECTION: CONN,
            keys.ANNOTATION_SCHEMA_HASH: schema_hash(out["spec"]),
        },
    }
    assert "status" not in out
    assert out["spec"]["conversion"] == {"strategy": "None"}
    assert src == provider(labels={keys.LABEL_EXPORTED: "true", "team": "a", "bad": 3})


def test_for_consumer_keeps_served_versions_with_one_storage() -> None:
    def v(name: str, served: bool, storage: bool) -> dict[str, Any]:
        return {"name": name, "served": served, "storage": storage, "schema": {}}

    # Storage version served: it stays storage.
    out = for_consumer(provider(versions=[v("v1", True, False), v("v2", True, True)]), CONN)
    assert [(x["name"], x["storage"]) for x in out["spec"]["versions"]] == [
        ("v1", False),
        ("v2", True),
    ]
    # Storage version not served: dropped, the first served one becomes storage.
    out = for_consumer(
        provider(versions=[v("v1", False, True), v("v2", True, False), v("v3", True, False)]),
        CONN,
    )
    assert [(x["name"], x["storage"]) for x in out["spec"]["versions"]] == [
        ("v2", True),
        ("v3", False),
    ]
    # No storage flag at all: the first served one.
    out = for_consumer(provider(versions=[v("a", True, False), v("b", True, False)]), CONN)
    assert [x["storage"] for x in out["spec"]["versions"]] == [True, False]


def test_for_consumer_drops_webhook_leftovers_and_is_idempotent() -> None:
    src = provider()
    src["spec"]["conversion"] = {"strategy": "None", "webhook": None}
    out = for_consumer(src, CONN)
    assert out["spec"]["conversion"] == {"strategy": "None"}
    assert for_consumer(out, CONN) == out
    assert for_consumer(out, OTHER)["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] == OTHER


def test_for_consumer_output_is_deep_copied() -> None:
    src = provider()
    out = for_consumer(src, CONN)
    out["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["type"] = "string"
    assert src["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["type"] == "object"


def run_to_idle(server: APIServer) -> None:
    while server.pending_work():
        server.tick()


def execute(server: APIServer, actions: tuple[Action, ...]) -> None:
    """A minimal shell: run the plan's writes against a kbsim server."""
    for action in actions:
        if isinstance(action, Create):
            server.create(CRDS, action.body, action.field_manager)
        elif isinstance(action, Update):
            server.update(CRDS, action.body, field_manager=action.field_manager)
        elif isinstance(action, MergePatch):
            assert action.resource_version
            patch = copy.deepcopy(action.patch)
            patch["metadata"]["resourceVersion"] = action.resource_version
            server.patch(CRDS, action.target.key, patch, "merge")
        elif isinstance(action, Delete):
            server.delete(CRDS, action.target.key, uid=action.uid)
        else:  # pragma: no cover - plan_install plans nothing else
            raise AssertionError(action)
    run_to_idle(server)


def current_of(server: APIServer, name: str = NAME) -> dict[str, Any] | None:
    try:
        return server.get(CRDS, ObjectKey("", name))
    except ApiError as err:
        if err.code == 404:
            return None
        raise


@pytest.fixture
def server() -> APIServer:
    return APIServer("consumer", clock=lambda: 1_767_225_600.0, seed=7)


@pytest.mark.parametrize("crd", data_crds(), ids=lambda c: c["metadata"]["name"])
def test_for_consumer_is_accepted_by_kbsim_and_then_stable(
    server: APIServer, crd: dict[str, Any]
) -> None:
    install = plan_install(crd, None, connection=CONN, create=True, update=True)
    assert [type(a) for a in install.actions] == [Create]
    execute(server, install.actions)
    stored = current_of(server, crd["metadata"]["name"])
    assert stored is not None and established(stored)
    served = [v["name"] for v in crd["spec"]["versions"] if v["served"]]
    assert [v["name"] for v in stored["spec"]["versions"]] == served
    assert stored["status"]["storedVersions"] == [
        next(v["name"] for v in crd["spec"]["versions"] if v["storage"])
    ]
    # The server defaulted fields, but the stored hash annotation is what is compared: no write.
    again = plan_install(crd, stored, connection=CONN, create=True, update=True)
    assert again == Install((), install.writes_hash, True)


# --- step 25: the upstream crdpull unit tests, against kbsim -------------------------------------


def test_bound_creates_crd_with_markers_and_hash(server: APIServer) -> None:
    install = plan_install(provider(), None, connection=CONN, create=True, update=False)
    # Nothing is live yet: the hash is claimed only once the CRD is there.
    assert install.installed and install.crd_hash == ""
    assert install.writes_hash.startswith("sha256:")
    execute(server, install.actions)
    stored = current_of(server)
    assert stored is not None
    assert o.labels_of(stored)[keys.LABEL_MANAGED] == "true"
    assert o.annotations_of(stored)[keys.ANNOTATION_CONNECTION] == CONN
    assert o.annotations_of(stored)[keys.ANNOTATION_SCHEMA_HASH] == install.writes_hash
    assert plan_install(
        provider(), stored, connection=CONN, create=True, update=False
    ).crd_hash == (install.writes_hash)


COLUMN = {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}


def test_once_does_not_follow_a_printer_column_change(server: APIServer) -> None:
    execute(
        server, plan_install(provider(), None, connection=CONN, create=True, update=False).actions
    )
    before = current_of(server)
    assert before is not None
    changed = provider(columns=[COLUMN])
    install = plan_install(changed, before, connection=CONN, create=True, update=False)
    assert install == Install((), o.annotations_of(before)[keys.ANNOTATION_SCHEMA_HASH], True)
    after = current_of(server)
    assert after is not None
    assert "additionalPrinterColumns" not in after["spec"]["versions"][0]


def test_always_follows_a_printer_column_change_and_the_hash_changes(server: APIServer) -> None:
    first = plan_install(provider(), None, connection=CONN, create=True, update=True)
    execute(server, first.actions)
    before = current_of(server)
    assert before is not None
    changed = provider(columns=[COLUMN])
    install = plan_install(changed, before, connection=CONN, create=True, update=True)
    assert [type(a) for a in install.actions] == [Update]
    # The recorded hash is the live one until the write has landed and is read back.
    assert install.crd_hash == first.writes_hash != install.writes_hash
    execute(server, install.actions)
    after = current_of(server)
    assert after is not None
    assert after["spec"]["versions"][0]["additionalPrinterColumns"] == [COLUMN]
    assert o.annotations_of(after)[keys.ANNOTATION_SCHEMA_HASH] == install.writes_hash
    assert o.uid(after) == o.uid(before)
    again = plan_install(changed, after, connection=CONN, create=True, update=True)
    assert again.actions == () and again.crd_hash == install.writes_hash


def test_none_and_absent_installs_nothing(server: APIServer) -> None:
    install = plan_install(provider(), None, connection=CONN, create=False, update=True)
    assert install == Install((), "", False)
    execute(server, install.actions)
    assert current_of(server) is None


def test_none_and_present_stamps_the_markers(server: APIServer) -> None:
    users = provider()
    for field in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
        del users["metadata"][field]
    del users["metadata"]["ownerReferences"], users["status"]
    users["metadata"]["labels"] = {"owner": "me"}
    server.create(CRDS, users)
    run_to_idle(server)
    before = current_of(server)
    assert before is not None
    install = plan_install(provider(), before, connection=CONN, create=False, update=True)
    assert install.actions == (
        MergePatch(
            REF,
            {
                "metadata": {
                    "labels": {keys.LABEL_MANAGED: "true"},
                    "annotations": {keys.ANNOTATION_CONNECTION: CONN},
                }
            },
            o.resource_version(before),
        ),
    )
    assert install.installed and install.refusal is None and install.pending == ""
    assert install.crd_hash == schema_hash(before["spec"])
    execute(server, install.actions)
    after = current_of(server)
    assert after is not None
    assert owned_by(after, CONN) and not created_by(after, CONN)
    assert o.labels_of(after)["owner"] == "me"
    assert after["spec"] == before["spec"]  # the user's schema is untouched
    assert plan_install(provider(), after, connection=CONN, create=False, update=True).actions == ()


# --- plan_install, rule by rule -----------------------------------------------------------------


def test_rule0_desired_refusals_pass_through() -> None:
    crd = provider()
    crd["spec"]["conversion"] = {"strategy": "Webhook"}
    install = plan_install(crd, None, connection=CONN, create=True, update=True)
    assert install.actions == () and not install.installed and install.crd_hash == ""
    assert install.refusal is not None and install.refusal.reason == conditions.CONVERSION_WEBHOOK
    install = plan_install(provider(group="apps"), None, connection=CONN, create=True, update=True)
    assert install.refusal is not None and install.refusal.reason == conditions.PROTECTED_GROUP


def test_rule0_current_of_another_name_is_refused() -> None:
    other = installed_copy(provider(plural="gadgets", kind="Gadget"))
    install = plan_install(provider(), other, connection=CONN, create=True, update=True)
    assert install.actions == () and not install.installed
    assert install.refusal is not None and install.refusal.reason == conditions.INVALID_SCHEMA
    assert '"gadgets.example.org"' in install.refusal.message


def test_rule1_absent_is_created_with_a_post() -> None:
    src = for_consumer(provider(), CONN)
    install = plan_install(src, None, connection=CONN, create=True, update=False)
    body = for_consumer(src, CONN)
    assert body == src
    assert install == Install(
        (Create(REF, body, keys.FIELD_MANAGER),),
        "",
        True,
        pending='waiting for CRD "widgets.example.org" to be established',
        writes_hash=schema_hash(body["spec"]),
    )


def test_rule1_absent_with_pull_policy_none_is_not_installed() -> None:
    assert plan_install(provider(), None, connection=CONN, create=False, update=False) == Install(
        (), "", False
    )


@pytest.mark.parametrize("create", [True, False])
@pytest.mark.parametrize("ours", [True, False])
def test_rule2_deleting_waits(create: bool, ours: bool) -> None:
    current = installed_copy(provider()) if ours else condition_established(provider())
    current["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    install = plan_install(provider(), current, connection=CONN, create=create, update=True)
    assert install == Install(
        (), "", False, pending='consumer CRD "widgets.example.org" is being deleted'
    )


def test_rule3_only_missing_markers_are_stamped() -> None:
    current = condition_established(provider())
    current["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] = CONN
    install = plan_install(provider(), current, connection=CONN, create=False, update=True)
    assert install.actions == (
        MergePatch(REF, {"metadata": {"labels": {keys.LABEL_MANAGED: "true"}}}, "42"),
    )
    current["metadata"]["labels"][keys.LABEL_MANAGED] = "false"
    install = plan_install(provider(), current, connection=CONN, create=False, update=True)
    assert install.actions == (
        MergePatch(REF, {"metadata": {"labels": {keys.LABEL_MANAGED: "true"}}}, "42"),
    )
    current["metadata"]["labels"][keys.LABEL_MANAGED] = "true"
    install = plan_install(provider(), current, connection=CONN, create=False, update=True)
    assert install == Install((), schema_hash(current["spec"]), True)


def test_rule3_hash_is_the_stored_one_when_present() -> None:
    current = installed_copy(provider())
    install = plan_install(
        provider(columns=[COLUMN]), current, connection=CONN, create=False, update=True
    )
    assert install == Install((), o.annotations_of(current)[keys.ANNOTATION_SCHEMA_HASH], True)


def test_rule3_never_stamps_a_crd_of_another_connection() -> None:
    current = condition_established(provider())
    current["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] = OTHER  # no managed label
    install = plan_install(provider(), current, connection=CONN, create=False, update=True)
    assert install.actions == () and not install.installed and install.crd_hash == ""
    assert install.refusal is not None and install.refusal.reason == conditions.FOREIGN_CRD
    assert f'installed through Connection "{OTHER}"' in install.refusal.message


def test_rule3_not_established_is_pending() -> None:
    current = condition_established(provider(), status="False")
    install = plan_install(provider(), current, connection=CONN, create=False, update=True)
    assert install.installed and len(install.actions) == 1
    assert install.pending == 'waiting for CRD "widgets.example.org" to be established'


FOREIGN_MESSAGE = (
    'a CustomResourceDefinition "widgets.example.org" already exists on the consumer and was '
    "not installed by kube-bind; not overwriting it (delete it, or bind another API)"
)


@pytest.mark.parametrize("marker", ["none", "label only", "annotation only", "label false"])
@pytest.mark.parametrize("update", [True, False])
def test_rule4_foreign_crd_is_never_overwritten(marker: str, update: bool) -> None:
    current = condition_established(provider())
    if marker in ("label only", "label false"):
        current["metadata"]["labels"][keys.LABEL_MANAGED] = (
            "true" if marker == "label only" else "false"
        )
    if marker in ("annotation only", "label false"):
        current["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] = CONN
    install = plan_install(
        provider(columns=[COLUMN]), current, connection=CONN, create=True, update=update
    )
    assert install == Install((), "", False, Refusal(conditions.FOREIGN_CRD, FOREIGN_MESSAGE))


@pytest.mark.parametrize("update", [True, False])
def test_rule5_first_installer_wins(update: bool) -> None:
    current = installed_copy(provider(), OTHER)
    install = plan_install(
        provider(columns=[COLUMN]), current, connection=CONN, create=True, update=update
    )
    assert install == Install(
        (),
        "",
        False,
        Refusal(
            conditions.FOREIGN_CRD,
            f'CustomResourceDefinition "widgets.example.org" was installed through Connection '
            f'"{OTHER}"; not re-homing it to Connection "{CONN}" (the first installer wins: '
            "unbind the API there first, or bind another API)",
        ),
    )


def test_rule6a_an_adopted_crd_is_never_replaced() -> None:
    current = condition_established(provider())
    current["metadata"]["labels"][keys.LABEL_MANAGED] = "true"
    current["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] = CONN
    install = plan_install(
        provider(columns=[COLUMN]), current, connection=CONN, create=True, update=True
    )
    assert install == Install((), schema_hash(current["spec"]), True)


def test_rule6b_update_replaces_spec_and_keeps_other_metadata() -> None:
    current = installed_copy(provider())
    current["metadata"]["finalizers"] = ["someone/else"]
    current["metadata"]["labels"]["team"] = "b"
    current["metadata"]["annotations"]["note"] = "kept"
    changed = for_consumer(provider(columns=[COLUMN]), CONN)
    install = plan_install(changed, current, connection=CONN, create=True, update=True)
    want = changed
    assert install.writes_hash == schema_hash(want["spec"]) != schema_hash(current["spec"])
    assert install.crd_hash == o.annotations_of(current)[keys.ANNOTATION_SCHEMA_HASH]
    assert install.installed and install.refusal is None and install.pending == ""
    (action,) = install.actions
    assert isinstance(action, Update) and action.target == REF
    body = action.body
    assert body["spec"] == want["spec"]
    meta = body["metadata"]
    assert meta["uid"] == "consumer-uid" and meta["resourceVersion"] == "7"
    assert meta["finalizers"] == ["someone/else"]
    assert meta["labels"] == {**want["metadata"]["labels"], "team": "b"}
    assert meta["annotations"] == {**want["metadata"]["annotations"], "note": "kept"}
    assert body["status"] == current["status"]
    assert current["metadata"]["labels"].get("team") == "b"  # input not mutated
    assert "additionalPrinterColumns" not in current["spec"]["versions"][0]


def test_annotations_a_caller_adds_to_desired_are_written() -> None:
    desired = for_consumer(provider(), CONN)
    desired["metadata"]["annotations"]["example.org/schema-losses"] = "CEL rules"
    desired["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH] = "sha256:forged"
    desired["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] = OTHER
    (create,) = plan_install(desired, None, connection=CONN, create=True, update=True).actions
    assert isinstance(create, Create)
    assert create.body["metadata"]["annotations"] == {
        "example.org/schema-losses": "CEL rules",
        keys.ANNOTATION_CONNECTION: CONN,
        keys.ANNOTATION_SCHEMA_HASH: schema_hash(desired["spec"]),
    }
    desired = for_consumer(provider(columns=[COLUMN]), CONN)
    desired["metadata"]["annotations"]["example.org/schema-losses"] = "defaults"
    install = plan_install(
        desired, installed_copy(provider()), connection=CONN, create=True, update=True
    )
    (update,) = install.actions
    assert isinstance(update, Update)
    assert update.body["metadata"]["annotations"]["example.org/schema-losses"] == "defaults"


def test_rule6c_once_or_equal_hash_writes_nothing() -> None:
    current = installed_copy(provider())
    stored = o.annotations_of(current)[keys.ANNOTATION_SCHEMA_HASH]
    changed = provider(columns=[COLUMN])
    assert plan_install(changed, current, connection=CONN, create=True, update=False) == Install(
        (), stored, True
    )
    assert plan_install(provider(), current, connection=CONN, create=True, update=True) == Install(
        (), stored, True
    )


def test_rule6_not_established_is_pending() -> None:
    current = installed_copy(provider())
    current["status"]["conditions"][1]["status"] = "False"
    install = plan_install(provider(), current, connection=CONN, create=True, update=True)
    assert install.installed and install.actions == ()
    assert install.pending == 'waiting for CRD "widgets.example.org" to be established'


# --- established / owned_by / plan_uninstall ----------------------------------------------------


def test_established() -> None:
    assert established(condition_established(provider()))
    assert not established(condition_established(provider(), status="False"))
    assert not established(provider())
    assert not established({"status": {"conditions": "Established"}})
    assert not established({"status": []})


def test_owned_by() -> None:
    current = installed_copy(provider())
    assert owned_by(current, CONN) and created_by(current, CONN)
    assert not owned_by(current, OTHER)
    assert not owned_by(current, "")
    assert not owned_by(provider(), CONN)


def test_plan_uninstall_deletes_only_what_we_created() -> None:
    current = installed_copy(provider())
    assert plan_uninstall(current, connection=CONN) == (Delete(REF, "consumer-uid"),)
    assert plan_uninstall(current, connection=OTHER) == ()
    assert plan_uninstall(None, connection=CONN) == ()
    deleting = copy.deepcopy(current)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert plan_uninstall(deleting, connection=CONN) == ()
    unlabelled = copy.deepcopy(current)
    del unlabelled["metadata"]["labels"][keys.LABEL_MANAGED]
    assert plan_uninstall(unlabelled, connection=CONN) == ()
    adopted = copy.deepcopy(current)  # stamped under pullPolicy None: the user's CRD
    del adopted["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH]
    assert plan_uninstall(adopted, connection=CONN) == ()
    no_uid = copy.deepcopy(current)
    del no_uid["metadata"]["uid"]
    assert plan_uninstall(no_uid, connection=CONN) == ()


def test_uninstall_through_kbsim(server: APIServer) -> None:
    execute(
        server, plan_install(provider(), None, connection=CONN, create=True, update=True).actions
    )
    current = current_of(server)
    execute(server, plan_uninstall(current, connection=CONN))
    assert current_of(server) is None


# --- laws (hypothesis) --------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "spec", "metadata", "status", "versions", "names", "group", "plural", "kind", "name",
        "served", "storage", "conversion", "strategy", "scope", "labels", "annotations",
        "conditions", "type", "deletionTimestamp", "resourceVersion", "uid",
        keys.LABEL_MANAGED, keys.ANNOTATION_CONNECTION, keys.ANNOTATION_SCHEMA_HASH,
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.floats(allow_nan=False),
    st.sampled_from(
        ["", "true", "True", "None", "Webhook", "Namespaced", "v1", "example.org", "apps", CONN]
    ),
    st.text(max_size=5),
)
json_values = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(_KEYS | st.text(max_size=3), children, max_size=4),
    ),
    max_leaves=20,
)
json_dicts = st.dictionaries(_KEYS, json_values, max_size=5)


@st.composite
def provider_crds(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly-valid provider CRDs: any served/storage mix, printer columns, groups (some
    protected), optional webhook."""
    group = draw(st.sampled_from(["example.org"] * 4 + ["things.io", "apps", "x.k8s.io"]))
    n = draw(st.integers(1, 3))
    versions = [
        {
            "name": f"v{i + 1}",
            "served": draw(st.booleans()),
            "storage": draw(st.booleans()),
            "schema": {"openAPIV3Schema": {"type": "object"}},
        }
        for i in range(n)
    ]
    columns = draw(st.lists(st.sampled_from([COLUMN]), max_size=1))
    crd = provider(group=group, versions=versions, columns=None)
    if columns:
        for v in crd["spec"]["versions"]:
            v["additionalPrinterColumns"] = columns
    strategy = draw(st.sampled_from([None, None, "None", "None", "Webhook"]))
    if strategy is not None:
        crd["spec"]["conversion"] = {"strategy": strategy}
    return crd


@st.composite
def currents(draw: st.DrawFn, desired: dict[str, Any]) -> dict[str, Any] | None:
    """The consumer CRD found under `desired`'s name, in any ownership state."""
    state = draw(
        st.sampled_from(["absent", "ours", "ours-stale", "adopted", "foreign", "other", "junk"])
    )
    if state == "absent":
        return None
    base = copy.deepcopy(desired)
    base["spec"]["conversion"] = {"strategy": "None"}
    for v in base["spec"].get("versions", []):
        v["served"] = True
    base["spec"]["versions"][0]["storage"] = True
    for v in base["spec"]["versions"][1:]:
        v["storage"] = False
    cur = condition_established(base)
    cur["metadata"].update(uid="consumer-uid", resourceVersion="7")
    if state in ("ours", "ours-stale", "other", "adopted"):
        # Stamped by hand: `desired` may be refused, so for_consumer cannot build it.
        cur["metadata"]["labels"][keys.LABEL_MANAGED] = "true"
        cur["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] = (
            OTHER if state == "other" else CONN
        )
    if state in ("ours", "other"):
        cur["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH] = schema_hash(cur["spec"])
    if state == "ours-stale":
        cur["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH] = "sha256:0000000000000000"
    if state == "junk":
        cur["metadata"]["labels"] = draw(json_values)
        cur["metadata"]["annotations"] = draw(json_values)
        cur["spec"] = draw(json_values)
        cur["status"] = draw(json_values)
    if draw(st.booleans()) and draw(st.booleans()):
        cur["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return cur


def applied(current: dict[str, Any] | None, action: Action) -> dict[str, Any]:
    """What the consumer CRD is after `action` succeeds (a created CRD becomes Established)."""
    if isinstance(action, Create):
        out = condition_established(action.body)
        out["metadata"].update(uid="new-uid", resourceVersion="1")
        return out
    if isinstance(action, Update):
        return copy.deepcopy(action.body)
    assert isinstance(action, MergePatch) and current is not None
    out = merge_patch(copy.deepcopy(current), action.patch)
    assert isinstance(out, dict)
    return out


@settings(max_examples=300, deadline=None)
@given(crd=json_dicts)
def test_law_refuse_is_total(crd: dict[str, Any]) -> None:
    refusal = refuse_provider_crd(crd)
    if refusal is None:
        out = for_consumer(crd, CONN)  # never raises once accepted ...
        assert refuse_provider_crd(out) is None  # ... and stays acceptable
        assert for_consumer(out, CONN) == out
    else:
        assert refusal.reason in (
            conditions.INVALID_SCHEMA,
            conditions.PROTECTED_GROUP,
            conditions.CONVERSION_WEBHOOK,
        )
        assert refusal.message


@settings(max_examples=300, deadline=None)
@given(
    desired=json_dicts | provider_crds(),
    current=st.none() | json_dicts,
    create=st.booleans(),
    update=st.booleans(),
)
def test_law_plan_install_is_total(
    desired: dict[str, Any], current: dict[str, Any] | None, create: bool, update: bool
) -> None:
    install = plan_install(desired, current, connection=CONN, create=create, update=update)
    assert len(install.actions) <= 1
    assert not (install.refusal is not None and (install.actions or install.installed))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), create=st.booleans(), update=st.booleans())
def test_law_plan_install_is_idempotent(data: st.DataObject, create: bool, update: bool) -> None:
    desired = data.draw(provider_crds())
    current = data.draw(currents(desired))
    first = plan_install(desired, current, connection=CONN, create=create, update=update)
    if not first.actions:
        return
    (action,) = first.actions
    after = applied(current, action)
    second = plan_install(desired, after, connection=CONN, create=create, update=update)
    assert second.actions == ()
    assert second.installed and second.refusal is None
    # The hash a write carries is the one recorded once it is live; a stamp keeps the hash.
    assert second.crd_hash == (first.writes_hash or first.crd_hash)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), create=st.booleans(), update=st.booleans())
def test_law_plan_install_is_safe(data: st.DataObject, create: bool, update: bool) -> None:
    desired = data.draw(provider_crds())
    current = data.draw(currents(desired) | json_dicts)
    install = plan_install(desired, current, connection=CONN, create=create, update=update)
    for action in install.actions:
        assert not isinstance(action, Delete)
        assert isinstance(action, Create | Update | MergePatch)
        assert action.target == crd_ref(o.name(for_consumer(desired, CONN)))
        if isinstance(action, Create):
            assert current is None and create
        if isinstance(action, Update):
            assert current is not None and create and update
            assert created_by(current, CONN)
            assert o.uid(action.body) == o.uid(current)
            assert o.resource_version(action.body) == o.resource_version(current)
        if isinstance(action, MergePatch):
            assert current is not None and not create
            assert action.resource_version == o.resource_version(current)
            other = o.annotations_of(current).get(keys.ANNOTATION_CONNECTION, "")
            assert other in ("", CONN)
    if install.actions or install.installed:
        assert refuse_provider_crd(desired) is None


# --- rule 8: the change gate --------------------------------------------------------------------


def served_version(
    name: str, *, storage: bool, fields: tuple[str, ...] = ("size",)
) -> dict[str, Any]:
    props = {f: {"type": "string"} for f in fields}
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "subresources": {"status": {}},
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": props}},
            }
        },
    }


def with_spec(crd: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(crd)
    for path, value in changes.items():
        node = out["spec"]
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return out


IMMUTABLE_CHANGES = [
    ("scope", "Cluster", "spec.scope", "'Namespaced'", "'Cluster'"),
    ("names__kind", "Gizmo", "spec.names.kind", "'Widget'", "'Gizmo'"),
    ("names__singular", "wdgt", "spec.names.singular", "'widget'", "'wdgt'"),
    (
        "names__listKind",
        "WidgetCollection",
        "spec.names.listKind",
        "'WidgetList'",
        "'WidgetCollection'",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "old", "new"),
    IMMUTABLE_CHANGES,
    ids=[c[2] for c in IMMUTABLE_CHANGES],
)
def test_rule8_an_immutable_change_is_refused_and_nothing_is_written(
    path: str, value: str, field: str, old: str, new: str
) -> None:
    current = installed_copy(provider())
    changed = with_spec(provider(), **{path: value})
    install = plan_install(changed, current, connection=CONN, create=True, update=True)
    assert install.actions == () and not install.installed
    assert install.refusal is not None
    assert install.refusal.reason == conditions.INCOMPATIBLE_SCHEMA_CHANGE
    message = install.refusal.message
    assert f'{field} of CRD "{NAME}" from {old} to {new}' in message
    assert "not synced" in message and "restore it on the provider" in message
    # The hash reported is still the live one: nothing was written.
    assert install.crd_hash == o.annotations_of(current)[keys.ANNOTATION_SCHEMA_HASH]
    assert install.writes_hash == ""


@pytest.mark.parametrize(("create", "update"), [(True, False), (False, True), (False, False)])
def test_rule8_holds_whatever_the_policies(create: bool, update: bool) -> None:
    # updatePolicy Once keeps the old schema, pullPolicy None a CRD the user manages: a scope
    # that differs from the provider's still means its objects cannot sync.
    current = installed_copy(provider())
    if not create:
        del current["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH]
    changed = with_spec(provider(), scope="Cluster")
    install = plan_install(changed, current, connection=CONN, create=create, update=update)
    assert install.actions == () and not install.installed
    assert install.refusal is not None
    assert install.refusal.reason == conditions.INCOMPATIBLE_SCHEMA_CHANGE


def test_rule8_an_adopted_crd_of_another_scope_is_refused() -> None:
    current = condition_established(provider())  # rule 6a: ours, without a hash
    current["metadata"]["labels"][keys.LABEL_MANAGED] = "true"
    current["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] = CONN
    install = plan_install(
        with_spec(provider(), scope="Cluster"), current, connection=CONN, create=True, update=True
    )
    assert install.refusal is not None and install.actions == ()
    assert install.crd_hash == schema_hash(current["spec"])


@pytest.mark.parametrize("how", ["removed", "unserved"])
def test_rule8_a_stored_version_the_provider_no_longer_serves_is_refused(how: str) -> None:
    current = installed_copy(provider(versions=[served_version("v1", storage=True)]))
    assert current["status"]["storedVersions"] == ["v1"]
    v1 = {**served_version("v1", storage=False), "served": False}
    versions = [served_version("v2", storage=True)] + ([v1] if how == "unserved" else [])
    install = plan_install(
        provider(versions=versions), current, connection=CONN, create=True, update=True
    )
    assert install.actions == () and install.refusal is not None
    assert install.refusal.reason == conditions.INCOMPATIBLE_SCHEMA_CHANGE
    assert f'no longer serves version "v1" of CRD "{NAME}"' in install.refusal.message
    assert 'remove "v1" from status.storedVersions' in install.refusal.message


@pytest.mark.parametrize(
    "change",
    ["new field", "new version", "new storage version", "short names", "categories"],
)
def test_rule8_an_additive_change_is_applied_and_the_hash_moves_after_the_write(
    server: APIServer, change: str
) -> None:
    first = plan_install(provider(), None, connection=CONN, create=True, update=True)
    execute(server, first.actions)
    live = current_of(server)
    assert live is not None
    if change == "new field":
        changed = provider(versions=[served_version("v1", storage=True, fields=("size", "colour"))])
    elif change == "new version":
        changed = provider(
            versions=[served_version("v1", storage=True), served_version("v2", storage=False)]
        )
    elif change == "new storage version":
        changed = provider(
            versions=[served_version("v1", storage=False), served_version("v2", storage=True)]
        )
    else:
        key = "shortNames" if change == "short names" else "categories"
        changed = with_spec(provider(), **{f"names__{key}": ["wd"]})
    install = plan_install(changed, live, connection=CONN, create=True, update=True)
    assert install.refusal is None
    (update,) = install.actions
    assert isinstance(update, Update)
    assert install.crd_hash == first.writes_hash != install.writes_hash
    execute(server, install.actions)  # the API server accepts it
    after = current_of(server)
    assert after is not None
    assert o.annotations_of(after)[keys.ANNOTATION_SCHEMA_HASH] == install.writes_hash
    if change == "new storage version":
        assert after["status"]["storedVersions"] == ["v1", "v2"]
    again = plan_install(changed, after, connection=CONN, create=True, update=True)
    assert again == Install((), install.writes_hash, True)


def test_rule8_predicts_the_api_server_on_a_dropped_stored_version(server: APIServer) -> None:
    execute(
        server, plan_install(provider(), None, connection=CONN, create=True, update=True).actions
    )
    live = current_of(server)
    assert live is not None
    moved = provider(versions=[served_version("v2", storage=True)])
    assert plan_install(moved, live, connection=CONN, create=True, update=True).refusal is not None
    # What an ungated konnector would PUT: the API server refuses it, so it would loop.
    naive = copy.deepcopy(live)
    naive["spec"] = for_consumer(moved, CONN)["spec"]
    with pytest.raises(ApiError) as refused:
        server.update(CRDS, naive)
    assert refused.value.code == 422
    assert "status.storedVersions[0]" in refused.value.message
    assert "must remain in spec.versions" in refused.value.message


def test_refuse_schema_change_names_a_group_change() -> None:
    current = installed_copy(provider())
    moved = for_consumer(provider(group="example.com"), CONN)
    refusal = refuse_schema_change(current, moved)
    assert refusal is not None and refusal.reason == conditions.INCOMPATIBLE_SCHEMA_CHANGE
    assert "spec.group" in refusal.message and "'example.org' to 'example.com'" in refusal.message


def test_refuse_schema_change_takes_the_server_defaults_for_singular_and_list_kind() -> None:
    # A synthesized CRD may leave singular and listKind out; the server defaults them.
    current = installed_copy(provider())
    current["spec"]["names"].update(singular="widget", listKind="WidgetList")
    desired = for_consumer(provider(), CONN)
    desired["spec"]["names"].pop("singular", None)
    assert refuse_schema_change(current, desired) is None


def test_refuse_exported_change_compares_what_the_provider_serves() -> None:
    current = installed_copy(provider())
    entry = {"name": NAME, "group": "example.org", "resource": "widgets",
             "scope": "Namespaced", "versions": ["v1"]}  # fmt: skip
    assert refuse_exported_change(current, entry) is None
    scoped = refuse_exported_change(current, {**entry, "scope": "Cluster"})
    assert scoped is not None and "spec.scope" in scoped.message
    moved = refuse_exported_change(current, {**entry, "versions": ["v2"]})
    assert moved is not None and 'version "v1"' in moved.message


# The law of rule 8: whatever the provider does to an installed API's schema, plan_install
# either refuses, or plans an update the apiextensions update rules accept — and it refuses
# exactly the changes those rules (or stranded data) forbid.

MUTATIONS = (
    "scope", "kind", "singular", "listKind", "shortNames", "categories", "add-version",
    "drop-version", "unserve-version", "move-storage", "add-field", "column",
)  # fmt: skip


@st.composite
def schema_changes(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(installed consumer CRD, the provider's CRD after some changes)."""
    n = draw(st.integers(1, 3))
    storage = draw(st.integers(0, n - 1))
    base = provider(versions=[served_version(f"v{i + 1}", storage=i == storage) for i in range(n)])
    base["spec"]["names"].update(singular="widget", listKind="WidgetList")
    current = installed_copy(base)
    names = [v["name"] for v in current["spec"]["versions"]]
    # Earlier storage versions may have left objects behind at other versions.
    stored = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    current["status"]["storedVersions"] = sorted({*stored, names[storage]})
    new = copy.deepcopy(base)
    spec = new["spec"]
    for m in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        versions = spec["versions"]
        if m == "scope":
            spec["scope"] = "Cluster" if spec["scope"] == "Namespaced" else "Namespaced"
        elif m in ("kind", "singular", "listKind"):
            spec["names"][m] = {"kind": "Gizmo", "singular": "gizmo", "listKind": "GizmoList"}[m]
        elif m in ("shortNames", "categories"):
            spec["names"][m] = draw(st.lists(st.sampled_from(["wd", "all", "w"]), max_size=2))
        elif m == "add-version":
            taken = {v["name"] for v in versions}
            name = next(f"v{i}" for i in range(1, 9) if f"v{i}" not in taken)
            versions.append(served_version(name, storage=False))
        elif m in ("drop-version", "unserve-version") and sum(v["served"] for v in versions) > 1:
            i = draw(st.sampled_from([j for j, v in enumerate(versions) if v["served"]]))
            was_storage = versions[i]["storage"]
            if m == "drop-version":
                del versions[i]
            else:
                versions[i]["served"] = False
            if was_storage:
                for v in versions:
                    v["storage"] = False
                next(v for v in versions if v.get("served"))["storage"] = True
        elif m == "move-storage":
            i = draw(st.integers(0, len(versions) - 1))
            for j, v in enumerate(versions):
                v["storage"] = j == i
                v["served"] = v["served"] or j == i
        elif m == "add-field":
            versions[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] = {
                "type": "integer"
            }
        elif m == "column":
            versions[-1]["additionalPrinterColumns"] = [COLUMN]
    return current, new


def _addressing(crd: dict[str, Any]) -> tuple[Any, ...]:
    spec = crd["spec"]
    names = spec["names"]
    kind = names.get("kind", "")
    return (
        spec.get("group"),
        spec.get("scope"),
        names.get("plural"),
        kind,
        names.get("singular") or kind.lower(),
        names.get("listKind") or f"{kind}List",
    )


@settings(max_examples=400, deadline=None)
@given(change=schema_changes(), update=st.booleans())
def test_law_plan_install_refuses_or_plans_an_update_the_server_accepts(
    change: tuple[dict[str, Any], dict[str, Any]], update: bool
) -> None:
    current, new = change
    install = plan_install(new, current, connection=CONN, create=True, update=update)
    desired = for_consumer(new, CONN)
    served = {v["name"] for v in desired["spec"]["versions"]}
    forbidden = (
        _addressing(desired) != _addressing(current)
        or not set(current["status"]["storedVersions"]) <= served
    )
    if forbidden:
        assert install.refusal is not None and install.actions == ()
        assert install.refusal.reason == conditions.INCOMPATIBLE_SCHEMA_CHANGE
        assert install.crd_hash == o.annotations_of(current)[keys.ANNOTATION_SCHEMA_HASH]
        return
    assert install.refusal is None and install.installed
    if not install.actions:
        return
    (action,) = install.actions
    assert isinstance(action, Update) and update
    body = action.body
    assert _addressing(body) == _addressing(current)
    assert set(body["status"]["storedVersions"]) <= {
        v["name"] for v in body["spec"]["versions"] if v["served"]
    }
    # kbsim's copy of the apiextensions update validation (PrepareForUpdate adds the new
    # storage version to storedVersions first) finds nothing wrong with it.
    prepared = copy.deepcopy(body)
    new_storage = next(v["name"] for v in body["spec"]["versions"] if v["storage"])
    if new_storage not in prepared["status"]["storedVersions"]:
        prepared["status"]["storedVersions"].append(new_storage)
    assert validate_crd(prepared, current) == []


def test_refuse_install_reports_the_change_gate_before_anything_else() -> None:
    # A webhook added together with a scope change: the API must pause either way, and the
    # reason says why it cannot follow.
    current = installed_copy(provider())
    both = with_spec(provider(), scope="Cluster")
    both["spec"]["conversion"] = {"strategy": "Webhook"}
    refusal = refuse_install(both, current, CONN)
    assert refusal is not None and refusal.reason == conditions.INCOMPATIBLE_SCHEMA_CHANGE
    # A CRD that is not ours for this Connection: the gate is not ours to apply first.
    assert refuse_install(both, current, OTHER) == refuse_provider_crd(both)
    assert refuse_install(both, None, CONN) == refuse_provider_crd(both)
    assert refuse_install(provider(), current, CONN) is None
