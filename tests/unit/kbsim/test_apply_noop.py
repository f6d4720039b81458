"""The kernel's no-op-apply check agrees with kbsim's server-side apply.

`kbcore.sync.instance.apply_is_noop` lets the konnector skip an apply of a provider copy that
would change nothing; kbsim decides what an apply changes with its port of the API server's
managed-fields logic (`kbsim.fieldsets`, through `APIServer.patch`). If the two disagreed, the
simulator would hide either a write the konnector repeats forever or one it wrongly skips.

The class of inputs on which they agree exactly: objects whose managedFields kbsim itself wrote
for one manager, the konnector (it applies to copies only it writes), through applies of
bodies that set no field the schema defaults. (A body that omits a defaulted field the manager
owns is not a no-op for the kernel, while the server re-defaults it and writes nothing: the
kernel then applies once more than needed, the safe direction, which this class leaves out.)
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kbcore.api import keys
from kbcore.sync.instance import apply_is_noop
from kbsim.apiserver import APIServer
from tests.unit.kbsim.conftest import WIDGETS, Clock, establish, key

MANAGER = keys.FIELD_MANAGER
_names = itertools.count()
_server: APIServer | None = None

small_text = st.sampled_from(["a", "b", "c"])
string_map = st.dictionaries(small_text, small_text, max_size=2)
ports = st.lists(
    st.fixed_dictionaries({"name": small_text}, optional={"port": st.integers(1, 3)}),
    max_size=3,
    unique_by=lambda p: p["name"],
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "size": st.integers(0, 2),
        "color": st.sampled_from(["red", "blue"]),
        "labels": string_map,
        "ports": ports,
        "free": st.dictionaries(small_text, st.integers(0, 1) | string_map, max_size=2),
    },
)
metadatas = st.fixed_dictionaries({}, optional={"labels": string_map, "annotations": string_map})


def body(spec: dict[str, Any], meta: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": spec,
    }


def server() -> APIServer:
    """One server for all examples (establishing the CRD is the slow part); each example
    applies to an object of its own."""
    global _server
    if _server is None:
        _server = APIServer("test", clock=Clock(), seed=7)
        establish(_server)
    return _server


def related(first: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A second spec: the first again, the first with a field dropped or changed, or any."""
    drop = st.sampled_from(sorted(first)).map(lambda k: {x: v for x, v in first.items() if x != k})
    change = specs.map(lambda other: {**first, **other})
    return st.one_of(st.just(first), drop if first else specs, change, specs)


@given(st.data())
def test_apply_is_noop_exactly_when_the_server_would_write_nothing(data: st.DataObject) -> None:
    api = server()
    name = f"w{next(_names)}"
    spec0 = data.draw(specs, "first spec")
    meta0 = data.draw(metadatas, "first metadata")
    live = api.patch(WIDGETS, key(name), body(spec0, meta0, name), "apply", field_manager=MANAGER)
    spec1 = data.draw(related(spec0), "second spec")
    meta1 = data.draw(st.one_of(st.just(meta0), metadatas), "second metadata")
    second = body(spec1, meta1, name)

    predicted = apply_is_noop(second, live, MANAGER)
    after = api.patch(WIDGETS, key(name), second, "apply", field_manager=MANAGER, force=True)
    wrote = after["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"]
    assert predicted == (not wrote), (live, second, after)


LABELLED = {"labels": {"a": "b"}}


def test_an_empty_map_the_last_apply_did_not_record_is_a_write() -> None:
    """`{ports: []}` records nothing under spec; a following `spec: {}` records spec itself, so
    the server writes managedFields and the kernel must not skip that apply."""
    api = server()
    name = f"w{next(_names)}"
    live = api.patch(
        WIDGETS, key(name), body({"ports": []}, LABELLED, name), "apply", field_manager=MANAGER
    )
    second = body({}, LABELLED, name)
    assert not apply_is_noop(second, live, MANAGER)
    after = api.patch(WIDGETS, key(name), second, "apply", field_manager=MANAGER, force=True)
    assert after["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"]
    assert apply_is_noop(second, after, MANAGER)
