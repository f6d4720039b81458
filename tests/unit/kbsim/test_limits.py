"""kbsim's API server at the limits a real one has: the 3 MiB body, the 10,000-level decoder.

Up to the limits everything works as for any object (stored, validated, patched, watched,
its managedFields recorded); past them the request is refused with the real server's status.
"""

from __future__ import annotations

from typing import Any

import pytest

from kbcore import objects as o
from kbcore.errors import ApiError
from kbcore.limits import MAX_FIELD_PATH, MAX_JSON_DEPTH, MAX_REQUEST_BODY_BYTES
from kbsim.apiserver import APIServer
from kbsim.patch import merge_patch
from tests.unit.kbsim.conftest import CONFIGMAPS, WIDGETS, crd, establish, key, widget

FREE: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def deep(levels: int, leaf: Any = "bottom") -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def lists(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture
def free(server: APIServer) -> APIServer:
    """Widgets whose spec and status take any JSON."""
    schema = {"type": "object", "properties": {"spec": FREE, "status": FREE}}
    establish(server, crd(schema=schema))
    return server


def test_an_object_as_deep_as_the_decoder_takes_is_stored_and_patched(free: APIServer) -> None:
    # widget, spec, then 9,998 levels: the document is exactly 10,000 levels deep.
    body = widget("w1", tree=deep(MAX_JSON_DEPTH - 2))
    created = free.create(WIDGETS, body)
    assert o.json_equal(created["spec"], body["spec"])
    patched = free.patch(
        WIDGETS, key("w1"), {"status": deep(MAX_JSON_DEPTH - 1)}, "merge", subresource="status"
    )
    assert o.json_equal(patched["status"], deep(MAX_JSON_DEPTH - 1))
    assert o.json_equal(free.get(WIDGETS, key("w1"))["status"], deep(MAX_JSON_DEPTH - 1))


def test_a_body_deeper_than_the_decoder_takes_is_refused_as_a_real_server_refuses_it(
    free: APIServer,
) -> None:
    with pytest.raises(ApiError) as create:
        free.create(WIDGETS, widget("w1", tree=deep(MAX_JSON_DEPTH - 1)))
    assert (create.value.code, create.value.reason) == (400, "BadRequest")
    assert create.value.message == (
        "the object provided is unrecognized (must be of type Widget): couldn't get "
        "version/kind; json parse error: invalid character '{' exceeded max depth "
        '({"apiVersion":"example.org/v1" ...)'
    )
    free.create(WIDGETS, widget("w1"))
    with pytest.raises(ApiError) as merge:
        free.patch(
            WIDGETS, key("w1"), {"status": deep(MAX_JSON_DEPTH)}, "merge", subresource="status"
        )
    assert (merge.value.code, merge.value.message) == (400, "Invalid JSON Patch")
    with pytest.raises(ApiError) as apply:
        free.patch(
            WIDGETS, key("w1"), widget("w1", tree=lists(MAX_JSON_DEPTH)), "apply", field_manager="m"
        )
    assert apply.value.message == ("error decoding YAML: invalid character '[' exceeded max depth")
    assert free.get(WIDGETS, key("w1"))["spec"] == {}  # nothing was written


def test_a_body_larger_than_the_server_reads_is_413(server: APIServer) -> None:
    near = MAX_REQUEST_BODY_BYTES - 200
    cm = {"metadata": {"name": "big", "namespace": "default"}, "data": {"k": "x" * near}}
    with pytest.raises(ApiError) as err:
        # A ConfigMap may hold at most 1 MiB, but the body is refused before it is validated.
        server.create(CONFIGMAPS, {**cm, "binaryData": {"b": "eA==" * 100}})
    assert (err.value.code, err.value.reason) == (413, "RequestEntityTooLarge")
    assert err.value.message == "Request entity too large: limit is 3145728"


def test_a_body_just_under_the_limit_is_read(free: APIServer) -> None:
    free.create(WIDGETS, widget("w1"))
    status = {"log": "x" * (MAX_REQUEST_BODY_BYTES - 100)}
    got = free.patch(WIDGETS, key("w1"), {"status": status}, "merge", subresource="status")
    assert len(got["status"]["log"]) == MAX_REQUEST_BODY_BYTES - 100


def test_managed_fields_of_a_deep_status_stop_at_the_field_path_limit(free: APIServer) -> None:
    free.create(WIDGETS, widget("w1"))
    free.patch(
        WIDGETS,
        key("w1"),
        {"status": deep(MAX_JSON_DEPTH - 1)},
        "merge",
        subresource="status",
        field_manager="controller",
    )
    entry = next(
        e
        for e in free.get(WIDGETS, key("w1"))["metadata"]["managedFields"]
        if e["manager"] == "controller"
    )
    node, levels = entry["fieldsV1"], 0
    while node:
        node = node.get("f:status") or node.get("f:a") or {}
        levels += 1
    assert levels == MAX_FIELD_PATH


def test_merge_patch_is_iterative_and_keeps_rfc7386() -> None:
    target = {"a": deep(20_000, leaf={"keep": 1, "drop": 2}), "b": 1}
    patch = {"a": deep(20_000, leaf={"drop": None, "new": [1]}), "b": None}
    out = merge_patch(target, patch)
    assert o.json_equal(out, {"a": deep(20_000, leaf={"keep": 1, "new": [1]})})
    assert o.json_equal(target["a"], deep(20_000, leaf={"keep": 1, "drop": 2}))  # untouched
