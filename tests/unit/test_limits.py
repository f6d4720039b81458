"""Unit tests of `kbcore.limits`: depth counted as Go's decoder counts it, and each limit's edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kbcore import limits
from kbcore.limits import (
    MAX_JSON_DEPTH,
    MAX_REQUEST_BODY_BYTES,
    MAX_SCHEMA_DEPTH,
    body_problem,
    json_depth,
    schema_depth_problem,
)


def nest(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def test_depth_counts_containers_as_the_api_server_does() -> None:
    # Go's scanner pushes one level per `{` or `[`: the outermost object is level 1.
    assert json_depth(1, 10) == 0
    assert json_depth("x" * 100, 10) == 0
    assert json_depth({}, 10) == 1
    assert json_depth([], 10) == 1
    assert json_depth({"a": []}, 10) == 2
    assert json_depth({"a": 1, "b": {"c": [1, {"d": None}]}}, 10) == 4
    assert json_depth(nest(12_345), 10**6) == 12_345


def test_depth_stops_at_the_limit_and_ends_on_a_cycle() -> None:
    assert json_depth(nest(100_000), 50) == 51
    cycle: list[Any] = []
    cycle.append(cycle)
    assert json_depth(cycle, 1_000) == 1_001


def test_depth_of_shared_values_is_linear_in_what_is_distinct() -> None:
    # Thirty levels of "billion laughs" (2**30 paths) are measured without walking each path.
    value: Any = "lol"
    for _ in range(30):
        value = [value, value]
    assert json_depth(value, 100) == 30


def test_a_body_as_deep_as_a_server_decodes_is_sendable_one_more_is_not() -> None:
    assert body_problem(nest(MAX_JSON_DEPTH)) == ""
    assert body_problem(nest(MAX_JSON_DEPTH + 1)) == (
        "it nests more than 10000 levels deep, the most an API server decodes"
    )


def test_a_body_as_large_as_a_server_reads_is_sendable_one_byte_more_is_not() -> None:
    overhead = len('{"s":""}')
    assert body_problem({"s": "x" * (MAX_REQUEST_BODY_BYTES - overhead)}) == ""
    too_big = {"s": "x" * (MAX_REQUEST_BODY_BYTES - overhead + 1)}
    assert body_problem(too_big) == (
        "it is 3145729 bytes as JSON, more than the 3145728 bytes (3 MiB) an API server reads "
        "in one request"
    )


def test_body_size_counts_utf8_bytes_not_characters() -> None:
    # "é" is two bytes: a client sends UTF-8 JSON, so that is what the server counts.
    half = MAX_REQUEST_BODY_BYTES // 2
    assert body_problem({"s": "é" * (half - 8)}) == ""
    assert body_problem({"s": "é" * half}).startswith("it is 31457")


def test_schema_depth_edge() -> None:
    assert schema_depth_problem(nest(MAX_SCHEMA_DEPTH)) == ""
    assert schema_depth_problem(nest(MAX_SCHEMA_DEPTH + 1)) == (
        "its schema nests more than 128 levels deep, the most kube-bind installs on a consumer"
    )
    assert schema_depth_problem(None) == ""


def test_the_user_guide_states_the_limits_the_kernel_applies() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "user-guide.md").read_text()
    section = guide.split("## Limits", 1)[1].split("\n## ", 1)[0]
    assert f"{limits.MAX_JSON_DEPTH:,} levels" in section
    assert f"3 MiB ({limits.MAX_REQUEST_BODY_BYTES:,} bytes)" in section
    assert f"{limits.MAX_SCHEMA_DEPTH} levels of an `openAPIV3Schema`" in section
