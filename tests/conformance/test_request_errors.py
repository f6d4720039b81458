"""How malformed or ill-fitting requests are answered (codes, reasons, messages)."""

from __future__ import annotations

from kbcore.api.resources import LEASES
from kbcore.objects import GVR
from tests.conformance.client import (
    CONFIGMAPS,
    NAMESPACES,
    Api,
    Obj,
    configmap,
    raises_api_error,
    widget,
)

PATCH_NOT_APPLICABLE = "the server rejected our request due to an error in our request"


def test_json_patch_that_does_not_apply_is_422_without_detail(api: Api) -> None:
    ns = api.namespace
    api.create(CONFIGMAPS, configmap("j", ns, a="1"))
    for ops in (
        [{"op": "test", "path": "/data/a", "value": "2"}],
        [{"op": "remove", "path": "/data/missing"}],
        [{"op": "add", "path": "/missing/deeper", "value": "x"}],
    ):
        with raises_api_error(422, "Invalid", PATCH_NOT_APPLICABLE):
            api.patch(CONFIGMAPS, "j", ops, ns, patch_type="json")
    # json-patch v4: replace of a missing object member adds it.
    out = api.patch(
        CONFIGMAPS, "j", [{"op": "replace", "path": "/data/b", "value": "2"}], ns, patch_type="json"
    )
    assert out["data"] == {"a": "1", "b": "2"}


def test_create_with_a_resource_version_is_a_500(api: Api) -> None:
    body = configmap("v", api.namespace)
    body["metadata"]["resourceVersion"] = "5"
    with raises_api_error(500, "", "resourceVersion should not be set on objects to be created"):
        api.create(CONFIGMAPS, body)


def test_namespaced_create_without_a_namespace_is_not_allowed(api: Api) -> None:
    with raises_api_error(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    ):
        api.create(CONFIGMAPS, {"metadata": {"name": "nowhere"}})


def test_namespace_finalize_subresource_cannot_be_read(api: Api) -> None:
    with raises_api_error(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    ):
        api.get(NAMESPACES, api.namespace, subresource="finalize")


def test_put_without_resource_version_only_where_the_strategy_allows_it(
    api: Api, widgets: GVR
) -> None:
    ns = api.namespace
    # ConfigMaps allow an unconditional update...
    api.create(CONFIGMAPS, configmap("free", ns, a="1"))
    assert api.update(CONFIGMAPS, configmap("free", ns, a="2"))["data"] == {"a": "2"}
    # ...custom resources (main resource and /status), CRDs and Leases do not.
    api.create(widgets, widget(widgets, "w", ns, size=1))
    message = (
        f'widgets.{widgets.group} "w" is invalid: metadata.resourceVersion: Invalid value: 0: '
        "must be specified for an update"
    )
    for subresource in ("", "status"):
        with raises_api_error(422, "Invalid", message) as info:
            api.update(widgets, widget(widgets, "w", ns, size=2), subresource=subresource)
    assert info.value.details == {
        "name": "w",
        "group": widgets.group,
        "kind": "widgets",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: 0: must be specified for an update",
                "field": "metadata.resourceVersion",
            }
        ],
    }
    lease: Obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
    lease["metadata"] = {"name": "l", "namespace": ns}
    api.create(LEASES, lease)
    with raises_api_error(
        422,
        "Invalid",
        'leases.coordination.k8s.io "l" is invalid: metadata.resourceVersion: Invalid value: 0: '
        "must be specified for an update",
    ):
        api.update(LEASES, dict(lease, spec={"holderIdentity": "me"}))


def test_custom_resource_body_type_checks(api: Api, widgets: GVR) -> None:
    ns = api.namespace
    version = f"{widgets.group}/v1"
    wrong_kind = widget(widgets, "k", ns, size=1)
    wrong_kind["kind"] = "Gadget"
    message = (
        f'Gadget.{widgets.group} "k" is invalid: kind: Invalid value: "Gadget": must be Widget'
    )
    with raises_api_error(422, "Invalid", message) as info:
        api.create(widgets, wrong_kind)
    assert info.value.details["kind"] == "Gadget"

    api.create(widgets, widget(widgets, "k", ns, size=1))
    with raises_api_error(422, "Invalid", message):
        api.patch(widgets, "k", {"kind": "Gadget"}, ns)

    wrong_version = widget(widgets, "v", ns, size=1)
    wrong_version["apiVersion"] = f"{widgets.group}/v2"
    with raises_api_error(
        400,
        "BadRequest",
        f"the API version in the data ({widgets.group}/v2) does not match the expected API "
        f"version ({version})",
    ):
        api.create(widgets, wrong_version)
    no_version = widget(widgets, "v", ns, size=1)
    del no_version["apiVersion"]
    with raises_api_error(
        400,
        "BadRequest",
        f"the API version in the data () does not match the expected API version ({version})",
    ):
        api.create(widgets, no_version)
    no_kind = widget(widgets, "v", ns, size=1)
    del no_kind["kind"]
    with raises_api_error(400, "BadRequest") as info:
        api.create(widgets, no_kind)
    assert info.value.message.startswith(
        "the object provided is unrecognized (must be of type Widget): Object 'Kind' is missing in"
    )

    # Schema violations: 422, a type mismatch with its own cause reason.
    with raises_api_error(
        422,
        "Invalid",
        f'Widget.{widgets.group} "t" is invalid: spec.size: Invalid value: "string": spec.size in '
        'body must be of type integer: "string"',
    ) as info:
        api.create(widgets, widget(widgets, "t", ns, size="big"))
    assert [c["reason"] for c in info.value.details["causes"]] == ["FieldValueTypeInvalid"]


def test_apply_body_type_checks(api: Api, widgets: GVR) -> None:
    ns = api.namespace
    api.create(CONFIGMAPS, configmap("a", ns, a="1"))
    for api_version, kind, shown in (
        ("v1", "Secret", "/v1, Kind=Secret"),
        ("v2", "ConfigMap", "/v2, Kind=ConfigMap"),
        ("v1", None, "/v1, Kind="),
        (f"{widgets.group}/v1", "ConfigMap", f"{widgets.group}/v1, Kind=ConfigMap"),
    ):
        body: Obj = {"apiVersion": api_version, "metadata": {"name": "a"}, "data": {"a": "2"}}
        if kind:
            body["kind"] = kind
        with raises_api_error(400, "BadRequest", f"invalid object type: {shown}"):
            api.patch(CONFIGMAPS, "a", body, ns, patch_type="apply", field_manager="m")
    body = widget(widgets, "w", ns, size=1)
    body["metadata"]["managedFields"] = [{"manager": "m"}]
    with raises_api_error(400, "BadRequest", "metadata.managedFields must be nil"):
        api.patch(widgets, "w", body, ns, patch_type="apply", field_manager="m")
    # A resourceVersion in an apply that creates the object is ignored...
    body = widget(widgets, "w", ns, size=1)
    body["metadata"]["resourceVersion"] = "1"
    created = api.patch(widgets, "w", body, ns, patch_type="apply", field_manager="m")
    assert created["metadata"]["resourceVersion"] != "1"
    # ...and a precondition on an existing object.
    with raises_api_error(409, "Conflict"):
        api.patch(widgets, "w", body, ns, patch_type="apply", field_manager="m")


def test_secret_data_is_decoded_as_go_does(api: Api) -> None:
    ns = api.namespace
    secrets = GVR("", "v1", "secrets")

    def secret(name: str, **data: object) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "data": data,
        }

    for value, offset in (("!!!", 0), ("YQ!=", 2), ("abc", 0), ("abcde", 4), ("YQ==x", 4)):
        with raises_api_error(
            400,
            "BadRequest",
            'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input '
            f"byte {offset}",
        ):
            api.create(secrets, secret("bad", k=value))
    with raises_api_error(
        400,
        "BadRequest",
        'Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal number into '
        "Go struct field Secret.data of type []uint8",
    ):
        api.create(secrets, secret("bad", k=5))
    # Line breaks are skipped and the data stored canonically; stringData is merged into data.
    made = api.create(secrets, {**secret("good", a="YW\nJj"), "stringData": {"b": "x"}})
    assert (made["data"], made["type"]) == ({"a": "YWJj", "b": "eA=="}, "Opaque")
    assert "stringData" not in made
