"""The service layer's CRDs (`crds/service/`) on a real API server.

What the issuer and a provider's administrator rely on:
 - the four CRDs install and become Established;
 - a valid object of each kind, every field set, is accepted; it reads back equal after the
   converter, and exactly (the converter's canonical form is what the server stores), also after
   the issuer writes its status;
 - the rules only the API server checks hold: Grant spec fields are immutable, URLs are http(s)
   only, a consumer cluster UID is a lowercase UUID, lists that must not be empty are refused
   empty, Export APIs are unique, and object names have the form the tenancy contract needs;
   each refusal is a 422 naming the rule.

The session's shared provider is used; every object has a name no other test uses and is
deleted afterwards. The CRDs stay installed (applying them again is a no-op).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from kbcore.api import catalog, iam
from kbcore.api.convert import structure_service_object, unstructure
from kbcore.api.resources import BOUND_NAMESPACES, COLLECTIONS, CRDS, EXPORTS, GRANTS, NAMESPACES
from kbcore.api.service_kinds import ServiceObject
from kbcore.api.types import (
    Condition,
    ConditionStatus,
    ConflictPolicy,
    LabelSelector,
    ObjectMeta,
    PullPolicy,
    RelatedResource,
    RelatedResourceKind,
    RelatedResourceSelector,
    SchemaPolicy,
    SchemaSource,
    SyncDirection,
    UpdatePolicy,
)
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbshell.client import KubeClient
from tests.harness.clusters import Clusters
from tests.harness.konnector import wait_established

pytestmark = pytest.mark.realcluster

SERVICE_CRD_DIR = Path(__file__).resolve().parents[2] / "crds" / "service"
FIELD_MANAGER = "e2e-service-crds"
UID = "0b5c1f5e-1111-4c1e-9a55-0123456789ab"
T0 = "2026-01-02T03:04:05Z"


def _ready(reason: str, status: ConditionStatus = ConditionStatus.TRUE) -> Condition:
    return Condition(
        type="Ready", status=status, reason=reason, message="m", last_transition_time=T0
    )


class Provider:
    """The shared provider with the service CRDs installed; deletes what a test created."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.created: list[tuple[GVR, ObjectKey]] = []

    def create(self, gvr: GVR, body: Obj) -> Obj:
        out = self.client.create(gvr, body, FIELD_MANAGER)
        meta = out["metadata"]
        self.created.append((gvr, ObjectKey(meta.get("namespace", ""), meta["name"])))
        return out

    def refused(self, gvr: GVR, body: Obj, update: bool = False) -> ApiError:
        """The error the server answers a create (or update) of `body` with; it must fail."""
        with pytest.raises(ApiError) as err:
            if update:
                self.client.update(gvr, body, field_manager=FIELD_MANAGER)
            else:
                self.create(gvr, body)
        return err.value

    def cleanup(self) -> None:
        for gvr, key in reversed(self.created):
            try:
                self.client.delete(gvr, key)
            except ApiError as err:
                if err.code != 404:
                    raise


@pytest.fixture(scope="module")
def installed(clusters: Clusters) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig_file(clusters.provider.kubeconfig)
    crds = [yaml.safe_load(p.read_text()) for p in sorted(SERVICE_CRD_DIR.glob("*.yaml"))]
    assert len(crds) == 4
    for crd in crds:
        key = ObjectKey("", crd["metadata"]["name"])
        client.patch(CRDS, key, crd, "apply", FIELD_MANAGER, True)
    wait_established(client, [crd["metadata"]["name"] for crd in crds])
    yield client
    client.close()


@pytest.fixture
def provider(installed: KubeClient) -> Iterator[Provider]:
    p = Provider(installed)
    yield p
    p.cleanup()


def _suffix() -> str:
    return uuid.uuid4().hex[:10]


def _home(p: Provider) -> str:
    """A fresh home namespace (`kb-` and 10 characters), created on the provider."""
    home = f"kb-{_suffix()}"
    p.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": home}})
    return home


# ---------------------------------------------------------------------------------------------
# Valid objects of each kind.


def full_export(name: str) -> catalog.Export:
    return catalog.Export(
        metadata=ObjectMeta(name=name, labels={"tier": "gold"}),
        spec=catalog.ExportSpec(
            title="Widgets",
            description="Widgets, managed.",
            docs_url="https://docs.example.org/widgets?lang=en#start",
            icon_url="http://cdn.example.org:8080/widgets.svg",
            apis=(
                catalog.GroupResource(group="example.org", resource="widgets"),
                catalog.GroupResource(group="example.org", resource="gadgets"),
            ),
            conflict_policy=ConflictPolicy.ADOPT,
            related_resources=(
                RelatedResource(
                    resource=RelatedResourceKind.SECRETS,
                    direction=SyncDirection.FROM_CONSUMER,
                    selector=RelatedResourceSelector(
                        label_selector=LabelSelector(match_labels={"app": "w"}), names=("creds",)
                    ),
                ),
            ),
            schema=SchemaPolicy(
                source=SchemaSource.CRD,
                pull_policy=PullPolicy.ALL,
                update_policy=UpdatePolicy.ONCE,
            ),
        ),
        status=catalog.ExportStatus(conditions=(_ready("AsExpected"),)),
    )


def full_collection(name: str) -> catalog.Collection:
    return catalog.Collection(
        metadata=ObjectMeta(name=name),
        spec=catalog.CollectionSpec(title="Databases", description="d", exports=("pg", "redis")),
        status=catalog.CollectionStatus(
            conditions=(_ready("ExportNotFound", ConditionStatus.FALSE),)
        ),
    )


def full_grant(name: str) -> iam.Grant:
    return iam.Grant(
        metadata=ObjectMeta(name=name),
        spec=iam.GrantSpec(
            identity=iam.OIDCIdentity(
                issuer="https://dex.example.org", subject="alice", email="alice@example.org"
            ),
            export="widgets",
            consumer_cluster_uid=UID,
        ),
        status=iam.GrantStatus(
            namespace=name,
            service_account_name="konnector",
            token_secret_name="konnector-token",
            apis=("gadgets.example.org", "widgets.example.org"),
            issued_at=T0,
            conditions=(_ready("Issued"),),
        ),
    )


def full_bound_namespace(home: str, name: str) -> iam.BoundNamespace:
    return iam.BoundNamespace(
        metadata=ObjectMeta(name=name, namespace=home),
        status=iam.BoundNamespaceStatus(
            namespace=f"{home}-{name}", conditions=(_ready("AsExpected"),)
        ),
    )


def _without_status(value: ServiceObject) -> ServiceObject:
    return attrs.evolve(value, status=type(value.status)())


def _same_content(read: Obj, want: ServiceObject) -> None:
    """`read` is `want` after the converter (server metadata aside), and round trips exactly."""
    got = structure_service_object(read)
    assert attrs.evolve(got, metadata=want.metadata) == want
    assert got.metadata.name == want.metadata.name and got.metadata.uid
    assert unstructure(got) == read


BUILDERS: list[tuple[GVR, Callable[[Provider], ServiceObject]]] = [
    (EXPORTS, lambda p: full_export(f"e-{_suffix()}")),
    (COLLECTIONS, lambda p: full_collection(f"c-{_suffix()}")),
    (GRANTS, lambda p: full_grant(f"kb-{_suffix()}")),
    (BOUND_NAMESPACES, lambda p: full_bound_namespace(_home(p), "team-a")),
]


@pytest.mark.parametrize(("gvr", "build"), BUILDERS, ids=[gvr.resource for gvr, _ in BUILDERS])
def test_a_valid_object_is_accepted_and_reads_back_equal(
    provider: Provider, gvr: GVR, build: Callable[[Provider], ServiceObject]
) -> None:
    value = build(provider)
    # Created without status (the /status subresource ignores it on create), then the issuer
    # writes the status.
    created = provider.create(gvr, unstructure(_without_status(value)))
    _same_content(created, _without_status(value))
    key = ObjectKey(value.metadata.namespace, value.metadata.name)
    body = unstructure(attrs.evolve(structure_service_object(created), status=value.status))
    provider.client.update(gvr, body, "status", FIELD_MANAGER)
    _same_content(provider.client.get(gvr, key), value)


def test_minimal_objects_are_defaulted_as_the_converter_defaults_them(provider: Provider) -> None:
    """What the server stores for a minimal object is the converter's canonical form."""
    name = f"e-{_suffix()}"
    minimal = {
        "apiVersion": catalog.Export.KIND.api_version,
        "kind": "Export",
        "metadata": {"name": name},
        "spec": {"title": "W", "apis": [{"group": "example.org", "resource": "widgets"}]},
    }
    stored = provider.create(EXPORTS, minimal)
    value = structure_service_object(stored)
    assert isinstance(value, catalog.Export)
    assert value.spec.conflict_policy is ConflictPolicy.FAIL
    assert value.spec.schema == SchemaPolicy()
    assert unstructure(value) == stored
    home = _home(provider)
    claim = {
        "apiVersion": iam.BoundNamespace.KIND.api_version,
        "kind": "BoundNamespace",
        "metadata": {"name": "team-b", "namespace": home},
    }
    stored = provider.create(BOUND_NAMESPACES, claim)
    assert stored["spec"] == {}
    assert unstructure(structure_service_object(stored)) == stored


# ---------------------------------------------------------------------------------------------
# The rules only the API server checks: each refusal is a 422 naming the rule.


def _invalid(err: ApiError, *needles: str) -> None:
    assert err.code == 422, err
    for needle in needles:
        assert needle in err.message, err.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("export", "gadgets"),
        ("consumerClusterUID", "1b5c1f5e-1111-4c1e-9a55-0123456789ab"),
        ("identity", {"issuer": "https://dex.example.org", "subject": "mallory"}),
        # Informational, but part of the identity: frozen with it.
        (
            "identity",
            {"issuer": "https://dex.example.org", "subject": "alice", "email": "a@evil.org"},
        ),
    ],
)
def test_grant_spec_fields_are_immutable(provider: Provider, field: str, value: Any) -> None:
    created = provider.create(GRANTS, unstructure(_without_status(full_grant(f"kb-{_suffix()}"))))
    changed = copy.deepcopy(created)
    changed["spec"][field] = value
    _invalid(provider.refused(GRANTS, changed, update=True), f"{field} is immutable")
    # An update that keeps the spec passes the same rules.
    created["metadata"]["labels"] = {"checked": "yes"}
    provider.client.update(GRANTS, created, field_manager=FIELD_MANAGER)


@pytest.mark.parametrize("field", ["iconURL", "docsURL"])
@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:image/svg+xml,<svg/>", "https://u:p@example.org/i"]
)
def test_export_urls_are_http_or_https(provider: Provider, field: str, url: str) -> None:
    body = unstructure(_without_status(full_export(f"e-{_suffix()}")))
    body["spec"][field] = url
    _invalid(provider.refused(EXPORTS, body), f"spec.{field}", "should match")


def test_consumer_cluster_uid_is_a_lowercase_uuid(provider: Provider) -> None:
    body = unstructure(_without_status(full_grant(f"kb-{_suffix()}")))
    body["spec"]["consumerClusterUID"] = UID.upper()
    _invalid(provider.refused(GRANTS, body), "spec.consumerClusterUID", "should match")


def test_lists_that_must_not_be_empty_are_refused_empty(provider: Provider) -> None:
    export = unstructure(_without_status(full_export(f"e-{_suffix()}")))
    export["spec"]["apis"] = []
    _invalid(provider.refused(EXPORTS, export), "spec.apis")
    collection = unstructure(_without_status(full_collection(f"c-{_suffix()}")))
    collection["spec"]["exports"] = []
    _invalid(provider.refused(COLLECTIONS, collection), "spec.exports")


def test_an_export_lists_each_api_once(provider: Provider) -> None:
    body = unstructure(_without_status(full_export(f"e-{_suffix()}")))
    body["spec"]["apis"].append({"group": "example.org", "resource": "widgets"})
    _invalid(provider.refused(EXPORTS, body), "spec.apis[2]", "Duplicate value")


def test_a_grant_is_named_after_a_home_namespace(provider: Provider) -> None:
    body = unstructure(_without_status(full_grant("alice-widgets")))
    _invalid(provider.refused(GRANTS, body), "a Grant is named after its home namespace")


def test_a_bound_namespace_name_must_leave_room_for_the_home_prefix(provider: Provider) -> None:
    home = _home(provider)
    longest = "n" * iam.CONSUMER_NAMESPACE_MAX_LENGTH
    provider.create(BOUND_NAMESPACES, unstructure(full_bound_namespace(home, longest)))
    # `<home>-<longest>` is exactly as long as a namespace name may be.
    assert len(f"{home}-{longest}") == 63
    body = unstructure(full_bound_namespace(home, longest + "n"))
    _invalid(provider.refused(BOUND_NAMESPACES, body), "has no provider namespace")
    dotted = unstructure(full_bound_namespace(home, "team.a"))
    _invalid(provider.refused(BOUND_NAMESPACES, dotted), "a DNS label")
