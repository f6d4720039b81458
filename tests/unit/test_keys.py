"""Work-queue keys (`kbcore.runtime.keys`): as logs show them and as traces store them."""

from __future__ import annotations

import json

import pytest

from kbcore.objects import GVR, ObjectKey
from kbcore.runtime import trace
from kbcore.runtime.keys import (
    ENGAGE,
    BindingKey,
    ConnectionKey,
    InstanceKey,
    WorkKey,
    describe_key,
)

WIDGETS = GVR("example.org", "v1", "widgets")

KEYS: list[tuple[WorkKey, str]] = [
    (InstanceKey(WIDGETS, ObjectKey("default", "w1")), "instance widgets.example.org default/w1"),
    (InstanceKey(WIDGETS, ObjectKey("", "g1")), "instance widgets.example.org g1"),
    (ConnectionKey("provider"), "connection provider"),
    (BindingKey("ClusterBinding", "", "widgets"), "binding ClusterBinding widgets"),
    (BindingKey("Binding", "team-a", "widgets"), "binding Binding team-a widgets"),
    (ENGAGE, "engage"),
]


@pytest.mark.parametrize(("key", "shown"), KEYS)
def test_a_key_is_shown_as_before(key: WorkKey, shown: str) -> None:
    assert describe_key(key) == shown


@pytest.mark.parametrize(("key", "shown"), KEYS)
def test_a_trace_stores_a_key_as_its_kind_then_its_fields(key: WorkKey, shown: str) -> None:
    stored = json.loads(json.dumps(trace.encode_key(key)))
    assert stored[0] == shown.split()[0]
    assert trace.decode_key(stored) == key


def test_a_trace_written_before_typed_keys_still_decodes() -> None:
    stored = [
        "instance",
        {"$t": "GVR", "group": "example.org", "version": "v1", "resource": "widgets"},
        {"$t": "ObjectKey", "namespace": "default", "name": "w1"},
    ]
    assert trace.decode_key(stored) == InstanceKey(WIDGETS, ObjectKey("default", "w1"))
    assert trace.decode_key(["binding", "Binding", "team-a", "b"]) == BindingKey(
        "Binding", "team-a", "b"
    )
    assert trace.decode_key(["engage"]) == ENGAGE


def test_keys_of_equal_fields_are_one_queue_entry() -> None:
    a = InstanceKey(WIDGETS, ObjectKey("default", "w1"))
    b = InstanceKey(GVR("example.org", "v1", "widgets"), ObjectKey("default", "w1"))
    assert a == b and hash(a) == hash(b) and len({a, b, ConnectionKey("w1")}) == 2
