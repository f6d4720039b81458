"""kbsim.fieldsets: field sets, fieldsV1, and server-side apply as kube-apiserver computes them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbsim import fieldsets as fs
from kbsim.fieldsets import FieldSet
from tests import crds

STRING = {"type": "string"}
SCHEMA: dict[str, Any] = crds.obj(
    {
        "spec": crds.obj(
            {
                "size": {"type": "integer"},
                "color": STRING,
                "tags": {"type": "array", "items": STRING},
                "set": {"type": "array", "x-kubernetes-list-type": "set", "items": STRING},
                "ports": crds.list_map("name", {"name": STRING, "port": {"type": "integer"}}),
                "env": {"type": "object", "additionalProperties": crds.obj({"v": STRING})},
                "atomic": crds.obj({"a": STRING}, **{"x-kubernetes-map-type": "atomic"}),
                "free": crds.preserved(),
            }
        ),
        "status": crds.obj({"ready": {"type": "boolean"}}),
    }
)
T = fs.crd_object_type(SCHEMA)
V = "example.org/v1"
NOW = "2026-01-01T00:00:00Z"


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": V, "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def paths(value: Any) -> set[str]:
    return set(fs.field_set(value, T).strings())


def test_field_set_of_structs_maps_and_lists() -> None:
    got = paths(
        obj(
            size=1,
            tags=["a"],
            set=["x", "y"],
            ports=[{"name": "http", "port": 80}],
            env={"A": {"v": "1"}},
            atomic={"a": "b"},
            free={"nested": {"deep": 1}},
        )
    )
    assert got == {
        ".apiVersion",
        ".kind",
        ".metadata.name",
        ".spec.size",
        ".spec.tags",  # atomic list: one leaf
        '.spec.set[="x"]',
        '.spec.set[="y"]',
        '.spec.ports[name="http"]',
        '.spec.ports[name="http"].name',
        '.spec.ports[name="http"].port',
        ".spec.env.A",  # a map entry is a member even with children
        ".spec.env.A.v",
        ".spec.atomic",
        ".spec.free.nested",  # unknown keys under preserve-unknown-fields are map entries
        ".spec.free.nested.deep",
    }


def test_empty_and_null_struct_fields_are_members() -> None:
    assert ".spec" in paths({"spec": {}})
    assert ".spec" in paths({"spec": None})
    assert ".spec" not in paths({"spec": {"size": 1}})


def test_fields_v1_round_trip_and_wire_shape() -> None:
    s = fs.field_set(
        {"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [{"name": "h", "port": 1}]}}, T
    )
    wire = s.to_fields_v1()
    assert wire == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {
            "f:ports": {'k:{"name":"h"}': {".": {}, "f:name": {}, "f:port": {}}},
        },
    }
    assert FieldSet.from_fields_v1(wire) == s
    assert list(FieldSet.from_fields_v1({"f:b": {}, "f:a": {}}).to_fields_v1()) == ["f:a", "f:b"]


def test_fields_v1_decoding_canonicalizes_and_rejects_garbage() -> None:
    a = FieldSet.from_fields_v1({'k:{ "b": 1, "a": "x" }': {}})
    assert a.paths == frozenset({('k:{"a":"x","b":1}',)})
    with pytest.raises(fs.FieldSetError):
        FieldSet.from_fields_v1({"x:nope": {}})
    with pytest.raises(fs.FieldSetError):
        FieldSet.from_fields_v1({"f:a": "not an object"})


def test_key_elements_escape_like_go() -> None:
    s = fs.field_set({"spec": {"ports": [{"name": "<a&b>", "port": 1}]}}, T)
    assert any("\\u003ca\\u0026b\\u003e" in pe for p in s.paths for pe in p)


def test_set_operations() -> None:
    a = FieldSet.of([("f:a",), ("f:a", "f:b"), ("f:c",)])
    b = FieldSet.of([("f:a",)])
    assert (a - b).paths == frozenset({("f:a", "f:b"), ("f:c",)})
    assert a.recursive_difference(b).paths == frozenset({("f:c",)})
    assert (a & b) == b and (a | b) == a
    assert not fs.EMPTY and len(a) == 3


def test_strip_managed_metadata() -> None:
    s = fs.field_set(
        {
            "apiVersion": V,
            "kind": "Widget",
            "metadata": {
                "name": "w",
                "namespace": "n",
                "uid": "u",
                "resourceVersion": "1",
                "labels": {"a": "b"},
            },
        },
        T,
    )
    assert fs.strip_managed_metadata(s).strings() == [".metadata.labels.a"]


def test_compare() -> None:
    cmp = fs.compare(obj(size=1, color="red"), obj(size=2, tags=["x"]), T)
    assert cmp.modified.strings() == [".spec.size"]
    assert cmp.added.strings() == [".spec.tags"]
    assert cmp.removed.strings() == [".spec.color"]
    whole = fs.compare({"a": 1}, {"a": 1, "spec": {"size": 1}}, T)
    assert whole.added.strings() == [".spec", ".spec.size"]  # a new map is added too
    assert fs.compare(obj(size=1), obj(size=1.0), T).same


def test_merge_keeps_live_and_takes_config_leaves() -> None:
    live = obj(size=1, color="red", ports=[{"name": "a", "port": 1}, {"name": "b", "port": 2}])
    config = {"spec": {"size": 2, "ports": [{"name": "c", "port": 3}, {"name": "a", "port": 9}]}}
    merged = fs.merge(live, config, T)
    assert merged["spec"]["size"] == 2 and merged["spec"]["color"] == "red"
    assert merged["spec"]["ports"] == [
        {"name": "c", "port": 3},
        {"name": "a", "port": 9},
        {"name": "b", "port": 2},
    ]
    assert fs.merge(obj(tags=["a", "b"]), {"spec": {"tags": ["c"]}}, T)["spec"]["tags"] == ["c"]
    with pytest.raises(fs.FieldSetError):
        fs.merge({}, {"spec": {"ports": [{"name": "a"}, {"name": "a"}]}}, T)


def test_remove_items() -> None:
    value = obj(size=1, color="red")
    out = fs.remove_items(value, FieldSet.of([("f:spec", "f:color")]), T)
    assert out["spec"] == {"size": 1}
    emptied = fs.remove_items(obj(color="red"), FieldSet.of([("f:spec", "f:color")]), T)
    assert emptied["spec"] is None  # as SMD does


def test_update_managed_fields_moves_ownership() -> None:
    created = fs.update_managed_fields(
        None, obj(size=1, color="red"), (), manager="a", api_version=V, typ=T, now=NOW
    )
    assert [e.manager for e in created] == ["a"]
    assert created[0].fields.to_fields_v1() == {"f:spec": {".": {}, "f:color": {}, "f:size": {}}}
    updated = fs.update_managed_fields(
        obj(size=1, color="red"), obj(size=2), created, manager="b", api_version=V, typ=T, now=NOW
    )
    by = {e.manager: e for e in updated}
    assert by["a"].fields.strings() == [".spec"]  # lost size (taken) and color (removed)
    assert by["b"].fields.strings() == [".spec.size"]


def test_update_ignores_reset_fields() -> None:
    out = fs.update_managed_fields(
        None,
        {"spec": {"size": 1}, "status": {"ready": True}},
        (),
        manager="a",
        api_version=V,
        typ=T,
        now=NOW,
        ignore=FieldSet.of([("f:status",)]),
    )
    assert out[0].fields.strings() == [".spec", ".spec.size"]


def _managed(live: dict[str, Any]) -> tuple[fs.ManagedFieldsEntry, ...]:
    return fs.update_managed_fields(
        None, live, (), manager="creator", api_version=V, typ=T, now=NOW
    )


def test_apply_conflict_force_and_sharing() -> None:
    live = obj(size=1, color="red")
    managed = _managed(live)
    r = fs.apply(live, obj(size=2), manager="me", managed=managed, api_version=V, typ=T, now=NOW)
    assert r.conflicts and not r.writes
    assert fs.conflict_message(r.conflicts) == (
        'Apply failed with 1 conflict: conflict with "creator" using example.org/v1: .spec.size'
    )
    assert fs.conflict_causes(r.conflicts)[0]["field"] == ".spec.size"
    forced = fs.apply(
        live, obj(size=2), manager="me", managed=managed, api_version=V, typ=T, now=NOW, force=True
    )
    assert forced.obj["spec"] == {"size": 2, "color": "red"} and forced.changed
    shared = fs.apply(
        live, obj(size=1), manager="me", managed=managed, api_version=V, typ=T, now=NOW
    )
    assert not shared.conflicts and not shared.changed and shared.managed_changed
    mine = next(e for e in shared.managed if e.manager == "me")
    assert mine.time == "" and mine.fields.strings() == [".spec.size"]


def test_apply_prunes_what_only_this_applier_owned() -> None:
    first = fs.apply(
        None,
        obj(size=1, color="red", ports=[{"name": "a", "port": 1}]),
        manager="me",
        api_version=V,
        typ=T,
        now=NOW,
    )
    live = dict(first.obj)
    second = fs.apply(
        live, obj(size=1), manager="me", managed=first.managed, api_version=V, typ=T, now=NOW
    )
    assert second.obj["spec"] == {"size": 1}
    # Fields another manager also owns survive.
    other = fs.apply(
        live, obj(color="red"), manager="you", managed=first.managed, api_version=V, typ=T, now=NOW
    )
    third = fs.apply(
        other.obj, obj(size=1), manager="me", managed=other.managed, api_version=V, typ=T, now=NOW
    )
    assert third.obj["spec"]["color"] == "red"


def test_apply_noop_is_detected() -> None:
    first = fs.apply(None, obj(size=1), manager="me", api_version=V, typ=T, now=NOW)
    again = fs.apply(
        first.obj,
        obj(size=1),
        manager="me",
        managed=first.managed,
        api_version=V,
        typ=T,
        now="later",
    )
    assert not again.writes and again.managed == first.managed


def test_apply_without_managed_fields_attributes_live_fields() -> None:
    r = fs.apply(obj(size=1), obj(size=2), manager="me", api_version=V, typ=T, now=NOW)
    assert [c.manager.manager for c in r.conflicts] == ["before-first-apply"]


def test_managed_entries_wire_order_and_identity() -> None:
    a = fs.ManagedFieldsEntry("z", "Update", V, FieldSet.of([("f:a",)]), "2026-01-01T00:00:02Z")
    b = fs.ManagedFieldsEntry("a", "Update", V, FieldSet.of([("f:b",)]), "2026-01-01T00:00:01Z")
    c = fs.ManagedFieldsEntry(
        "m", "Apply", V, FieldSet.of([("f:c",)]), "2026-01-01T00:00:09Z", "status"
    )
    wire = fs.encode_managed_fields([a, b, c])
    assert [w["manager"] for w in wire] == ["m", "a", "z"]
    assert wire[0]["subresource"] == "status"
    assert fs.decode_managed_fields(wire) == (c, b, a)
    assert c.describe() == '"m" with subresource "status"'
    assert a.identity != fs.ManagedFieldsEntry("z", "Update", "v2", fs.EMPTY).identity
    assert (
        c.identity
        == fs.ManagedFieldsEntry("m", "Apply", "other/v9", fs.EMPTY, "", "status").identity
    )
    with pytest.raises(fs.FieldSetError):
        fs.decode_managed_fields([{"operation": "Bogus"}])


def test_type_from_openapi_list_and_map_types() -> None:
    t = fs.type_from_openapi(SCHEMA["properties"]["spec"])
    assert isinstance(t, fs.MapType)
    ports = t.fields["ports"]
    assert isinstance(ports, fs.ListType) and ports.list_type == "map" and ports.keys == ("name",)
    tags = t.fields["tags"]
    assert isinstance(tags, fs.ListType) and tags.list_type == "atomic"
    assert isinstance(t.fields["atomic"], fs.MapType) and t.fields["atomic"].atomic
    assert (
        fs.type_from_openapi({"type": "integer", "x-kubernetes-int-or-string": True}) is fs.SCALAR
    )


def test_builtin_types() -> None:
    secret = fs.builtin_type("", "Secret")
    s = fs.field_set(
        {"data": {"a": "eA=="}, "type": "Opaque", "metadata": {"finalizers": ["x"]}}, secret
    )
    assert s.strings() == [".data.a", '.metadata.finalizers[="x"]', ".type"]
    assert fs.builtin_type("nowhere", "Thing") is not None


def test_path_string() -> None:
    assert (
        fs.path_string(("f:spec", 'k:{"name":"a","port":1}', "f:x")) == '.spec[name="a",port=1].x'
    )
    assert fs.path_string(("f:s", 'v:"x"')) == '.s[="x"]'
    assert fs.path_string(("f:s", "i:3")) == ".s[3]"


def test_json_equal() -> None:
    assert fs.json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not fs.json_equal(True, 1)
    assert not fs.json_equal({"a": 1}, {"a": 1, "b": 2})


names = st.text(alphabet="abcxyz", min_size=1, max_size=3)
elements = st.one_of(
    names.map(lambda n: "f:" + n),
    names.map(lambda n: 'k:{"name":"' + n + '"}'),
    names.map(lambda n: 'v:"' + n + '"'),
)


@given(st.sets(st.lists(elements, min_size=1, max_size=4).map(tuple), max_size=12))
def test_fields_v1_round_trip_property(raw: set[tuple[str, ...]]) -> None:
    s = FieldSet(frozenset(raw))
    assert FieldSet.from_fields_v1(s.to_fields_v1()) == s
