"""The gateway's rule 6 (kbshell.backend.gateway): whatever a caller sends, the answer is a
success or a 4xx JSON refusal, never a 5xx. Hypothesis sends hostile bind bodies, callback
queries, pickup paths, Accept and Authorization headers to the app in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.unit.backend.fakes import World

# Fixtures are shared across examples (one gateway, one logged-in browser): that is the point.
SHARED = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=12,
)
names = st.sampled_from(["widgets", "gadgets"]) | st.text(min_size=1, max_size=30)
bind_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    # Near misses: the right keys, each a good value or any JSON value.
    st.fixed_dictionaries(
        {}, optional={"export": names | json_values, "consumerClusterUID": names | json_values}
    ).map(lambda d: json.dumps(d).encode()),
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)


@pytest.fixture(scope="module")
def world() -> World:
    return World(rate_limit=1_000_000)


@pytest.fixture(scope="module")
def alice(world: World) -> Iterator[TestClient]:
    with world.browser() as browser:
        assert world.log_in(browser).status_code == 303
        yield browser


def refused_politely(resp: httpx.Response) -> None:
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        body: Any = resp.json()
        assert set(body) == {"error", "message"}, body


@SHARED
@given(body=bind_bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_any_bind_body_is_a_bind_or_a_4xx(
    alice: TestClient, body: bytes, content_type: str
) -> None:
    resp = alice.post("/api/bind", content=body, headers={"Content-Type": content_type})
    refused_politely(resp)
    assert resp.status_code in (201, 400, 404, 413, 415)


@SHARED
@given(params=st.dictionaries(st.sampled_from(["code", "state", "error", "error_description",
                                               "x"]), st.text(max_size=80), max_size=4))  # fmt: skip
def test_any_callback_query_is_a_4xx(alice: TestClient, params: dict[str, str]) -> None:
    resp = alice.get("/api/callback", params=params)
    refused_politely(resp)
    assert resp.status_code == 400


@SHARED
@given(token=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"), min_size=1,
                     max_size=60), accept=header_text)  # fmt: skip
def test_any_pickup_path_and_accept_header_is_a_4xx(
    alice: TestClient, token: str, accept: str
) -> None:
    refused_politely(alice.get(f"/api/bundle/{token}", headers={"Accept": accept}))


@SHARED
@given(authorization=header_text)
def test_any_authorization_header_is_a_caller_or_a_401(world: World, authorization: str) -> None:
    with world.browser() as client:
        resp = client.get("/api/catalog", headers={"Authorization": authorization})
        refused_politely(resp)
        assert resp.status_code == 401
