"""Unit tests of `kbcore.runtime.requests`: actions become requests, failures become requeue verdicts."""

from __future__ import annotations

import calendar
import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore import actions as act
from kbcore.actions import PROVIDER
from kbcore.api.resources import EVENTS, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.runtime.requests import Next, Request, judge, to_request
from kbcore.timestamps import parse_rfc3339, rfc3339

GVR_W = GVR("example.org", "v1", "widgets")
KEY = ObjectKey("team-a", "w1")
CREF = ObjectRef("consumer", GVR_W, KEY)
PREF = ObjectRef(PROVIDER, GVR_W, KEY)
FIN = "core.kube-bind.io/syncer"
NOW = 1_700_000_000.0

BODY = {
    "apiVersion": "example.org/v1",
    "kind": "Widget",
    "metadata": {
        "name": "w1",
        "namespace": "team-a",
        "uid": "p-1",
        "labels": {"core.kube-bind.io/managed": "true"},
    },
    "spec": {"size": 1},
}
CONSUMER = {
    "apiVersion": "example.org/v1",
    "kind": "Widget",
    "metadata": {"name": "w1", "namespace": "team-a", "resourceVersion": "41"},
    "status": {"phase": "Ready"},
}


def namespace_create(metadata: dict[str, Any]) -> Request:
    """The request that creates provider namespace team-a with this metadata besides its name."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", **metadata}}
    return Request("create", "provider", NAMESPACES, ObjectKey("", "team-a"), body)


# --- to_request -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            act.AddFinalizer(CREF, FIN, "41", ("a/b", FIN)),
            Request(
                "patch",
                "consumer",
                GVR_W,
                KEY,
                {"metadata": {"finalizers": ["a/b", FIN], "resourceVersion": "41"}},
                patch_type="merge",
            ),
        ),
        (
            act.RemoveFinalizer(CREF, FIN, "41", ()),
            Request(
                "patch",
                "consumer",
                GVR_W,
                KEY,
                {"metadata": {"finalizers": [], "resourceVersion": "41"}},
                patch_type="merge",
            ),
        ),
        (
            act.Apply(PREF, BODY, "kube-bind-konnector", force=True),
            Request(
                "patch",
                "provider",
                GVR_W,
                KEY,
                BODY,
                patch_type="apply",
                field_manager="kube-bind-konnector",
                force=True,
            ),
        ),
        (
            act.Create(PREF, BODY, "kube-bind-konnector"),
            Request(
                "create",
                "provider",
                GVR_W,
                KEY,
                BODY,
                field_manager="kube-bind-konnector",
            ),
        ),
        (
            act.CreateNamespace("provider", "team-a", {"core.kube-bind.io/managed": "true"}),
            namespace_create({"labels": {"core.kube-bind.io/managed": "true"}}),
        ),
        (
            act.CreateNamespace("provider", "team-a", {"m": "true"}, {"core.kube-bind.io/x": "y"}),
            namespace_create(
                {"labels": {"m": "true"}, "annotations": {"core.kube-bind.io/x": "y"}}
            ),
        ),
        (
            act.Delete(PREF, "p-1"),
            Request("delete", "provider", GVR_W, KEY, uid="p-1"),
        ),
        (
            act.MergePatch(
                CREF, {"metadata": {"annotations": {"core.kube-bind.io/conflict": None}}}
            ),
            Request(
                "patch",
                "consumer",
                GVR_W,
                KEY,
                {"metadata": {"annotations": {"core.kube-bind.io/conflict": None}}},
                patch_type="merge",
            ),
        ),
        (
            act.MergePatch(CREF, {"spec": {"x": 1}}, resource_version="41"),
            Request(
                "patch",
                "consumer",
                GVR_W,
                KEY,
                {"spec": {"x": 1}, "metadata": {"resourceVersion": "41"}},
                patch_type="merge",
            ),
        ),
        (
            act.UpdateStatus(CREF, CONSUMER),
            Request("update", "consumer", GVR_W, KEY, CONSUMER, subresource="status"),
        ),
        (act.RequeueAfter(2.0), None),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, Request) else "",
)
def test_every_action_maps_to_its_request(action: act.Action, expected: Request | None) -> None:
    assert to_request(action, NOW) == expected


def test_merge_patch_with_rv_does_not_mutate_the_action() -> None:
    patch: dict[str, Any] = {"metadata": {"annotations": {"a": "b"}}}
    action = act.MergePatch(CREF, patch, resource_version="41")
    req = to_request(action, NOW)
    assert req is not None and req.body is not None
    assert req.body["metadata"] == {"annotations": {"a": "b"}, "resourceVersion": "41"}
    assert patch == {"metadata": {"annotations": {"a": "b"}}}


EVENT = act.EmitEvent(
    CREF, "Widget", "c-1", "Warning", "ForeignObjectExists", "provider object ..."
)


def test_event_request() -> None:
    req = to_request(EVENT, NOW)
    assert req is not None and req.body is not None
    assert (req.verb, req.cluster, req.gvr, req.key.namespace) == (
        "create",
        "consumer",
        EVENTS,
        "team-a",
    )
    assert re.fullmatch(r"w1\.[0-9a-f]{16}", req.key.name)
    assert req.body == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": req.key.name, "namespace": "team-a"},
        "involvedObject": {
            "apiVersion": "example.org/v1",
            "kind": "Widget",
            "name": "w1",
            "namespace": "team-a",
            "uid": "c-1",
        },
        "type": "Warning",
        "reason": "ForeignObjectExists",
        "message": "provider object ...",
        "source": {"component": "kube-bind-konnector"},
        "reportingComponent": "kube-bind-konnector",
        "firstTimestamp": "2023-11-14T22:13:20Z",
        "lastTimestamp": "2023-11-14T22:13:20Z",
        "count": 1,
    }


def test_event_names_are_deterministic_and_distinct_in_time() -> None:
    a, b, c = (to_request(EVENT, t) for t in (NOW, NOW, NOW + 1))
    assert a is not None and b is not None and c is not None
    assert a == b
    assert a.key != c.key


def test_event_about_a_cluster_scoped_object_goes_to_default() -> None:
    ev = act.EmitEvent(
        ObjectRef("consumer", GVR("example.org", "v1", "gadgets"), ObjectKey("", "g1")),
        "Gadget",
        "c-2",
        "Warning",
        "OwnedByAnother",
        "m",
    )
    req = to_request(ev, NOW)
    assert req is not None and req.body is not None
    assert req.key.namespace == "default"
    assert req.body["involvedObject"]["namespace"] == ""


# --- judge ------------------------------------------------------------------------------------

ADD = act.AddFinalizer(CREF, FIN, "41", (FIN,))
REMOVE = act.RemoveFinalizer(CREF, FIN, "41", ())
APPLY = act.Apply(PREF, BODY, "kube-bind-konnector")
NS = act.CreateNamespace("provider", "team-a", {})
CREATE = act.Create(PREF, BODY, "kube-bind-konnector")
DELETE = act.Delete(PREF, "p-1")
PATCH = act.MergePatch(CREF, {"metadata": {"annotations": {"x": None}}})
STATUS = act.UpdateStatus(CREF, CONSUMER)


def err(code: int, reason: str, retry_after: float | None = None) -> ApiError:
    return ApiError(code, reason, "m", retry_after=retry_after)


TERMINATING = ApiError(
    403,
    "Forbidden",
    "unable to create new content in namespace team-a because it is being terminated",
    details={"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]},
)


@pytest.mark.parametrize(
    ("action", "error", "next_", "after"),
    [
        (NS, err(409, "AlreadyExists"), Next.CONTINUE, 0.0),
        (CREATE, err(409, "AlreadyExists"), Next.REPLAN, 0.0),
        (CREATE, err(404, "NotFound"), Next.REPLAN, 0.0),
        (CREATE, err(403, "Forbidden"), Next.WAIT, 30.0),
        (CREATE, err(500, "InternalError"), Next.BACKOFF, 0.0),
        (DELETE, err(404, "NotFound"), Next.CONTINUE, 0.0),
        (EVENT, err(500, "InternalError"), Next.CONTINUE, 0.0),
        (EVENT, err(403, "Forbidden"), Next.CONTINUE, 0.0),
        (EVENT, err(409, "AlreadyExists"), Next.CONTINUE, 0.0),
        (ADD, err(409, "Conflict"), Next.REPLAN, 0.0),
        (REMOVE, err(409, "Conflict"), Next.REPLAN, 0.0),
        (ADD, err(404, "NotFound"), Next.REPLAN, 0.0),
        (PATCH, err(404, "NotFound"), Next.REPLAN, 0.0),
        (STATUS, err(409, "Conflict"), Next.REPLAN, 0.0),
        (STATUS, err(422, "Invalid"), Next.REPLAN, 0.0),
        (DELETE, err(409, "Conflict"), Next.REPLAN, 0.0),
        (APPLY, err(409, "Conflict"), Next.REPLAN, 0.0),
        (APPLY, err(422, "Invalid"), Next.REPLAN, 0.0),
        (NS, err(409, "Conflict"), Next.BACKOFF, 0.0),
        (APPLY, err(403, "Forbidden"), Next.WAIT, 30.0),
        (NS, err(403, "Forbidden"), Next.WAIT, 30.0),
        (DELETE, err(403, "Forbidden"), Next.WAIT, 30.0),
        (ADD, err(403, "Forbidden"), Next.WAIT, 30.0),
        # A terminating namespace is not an RBAC denial: back off, don't park for 30 s.
        (CREATE, TERMINATING, Next.BACKOFF, 0.0),
        (APPLY, TERMINATING, Next.BACKOFF, 0.0),
        (APPLY, err(429, "TooManyRequests", retry_after=7.0), Next.WAIT, 7.0),
        (ADD, err(429, "TooManyRequests", retry_after=3.0), Next.WAIT, 3.0),
        (APPLY, err(429, "TooManyRequests"), Next.WAIT, 1.0),
        (APPLY, err(429, "TooManyRequests", retry_after=0.2), Next.WAIT, 1.0),
        (APPLY, err(503, "ServiceUnavailable", retry_after=5.0), Next.WAIT, 5.0),
        (APPLY, err(503, "ServiceUnavailable"), Next.BACKOFF, 0.0),
        (APPLY, err(500, "InternalError"), Next.BACKOFF, 0.0),
        (DELETE, err(500, "InternalError"), Next.BACKOFF, 0.0),
        (NS, err(500, "InternalError"), Next.BACKOFF, 0.0),
        (STATUS, err(504, "Timeout"), Next.BACKOFF, 0.0),
    ],
)
def test_judge(action: act.Action, error: ApiError, next_: Next, after: float) -> None:
    verdict = judge(action, error)
    assert (verdict.next, verdict.after) == (next_, after)
    assert verdict.why


# --- rfc3339 ----------------------------------------------------------------------------------

FIRST_SECOND = -62135596800  # 0001-01-01T00:00:00Z
LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z


def via_datetime(whole_seconds: int) -> str:
    return datetime.fromtimestamp(whole_seconds, UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (951782400, "2000-02-29T00:00:00Z"),
        (1_700_000_000.75, "2023-11-14T22:13:20Z"),
        (FIRST_SECOND, "0001-01-01T00:00:00Z"),
        (LAST_SECOND, "9999-12-31T23:59:59Z"),
    ],
)
def test_rfc3339_examples(x: float, expected: str) -> None:
    assert rfc3339(x) == expected


@settings(max_examples=500, deadline=None)
@given(st.integers(FIRST_SECOND, LAST_SECOND))
def test_rfc3339_agrees_with_datetime_on_whole_seconds(x: int) -> None:
    assert rfc3339(x) == via_datetime(x)


@settings(max_examples=500, deadline=None)
@given(st.floats(FIRST_SECOND, LAST_SECOND, allow_nan=False))
def test_rfc3339_agrees_with_datetime_truncating_sub_seconds(x: float) -> None:
    # RFC 3339 without fractions names the second the instant falls in: floor, not round and
    # not truncation toward zero (which would move instants before 1970 one second ahead).
    assert rfc3339(x) == via_datetime(math.floor(x))


@st.composite
def rfc3339_stamps(draw: st.DrawFn) -> str:
    """RFC 3339 UTC timestamps as Kubernetes writes them: any instant of years 1-9999, `Z`, a
    fraction of 0-9 digits (Time has none, MicroTime 6, Go's RFC3339Nano up to 9)."""
    at = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    digits = draw(st.integers(0, 9))
    fraction = "" if digits == 0 else "." + "".join(draw(st.lists(
        st.sampled_from("0123456789"), min_size=digits, max_size=digits)))  # fmt: skip
    return at.isoformat(timespec="seconds") + fraction + "Z"


@settings(max_examples=500, deadline=None)
@given(rfc3339_stamps())
def test_parse_rfc3339_is_the_instant_written(stamp: str) -> None:
    at = parse_rfc3339(stamp)
    assert at is not None
    whole, _, fraction = stamp[:-1].partition(".")
    seconds = calendar.timegm(datetime.fromisoformat(whole).timetuple())
    # A float of the epoch seconds: near the year 9999 its spacing is about 3e-5 s.
    assert at == pytest.approx(seconds + float("0." + (fraction or "0")), rel=0, abs=1e-4)
    if not fraction:
        assert rfc3339(at) == stamp


@pytest.mark.parametrize(
    "stamp",
    [
        "",
        "2024-01-02T03:04:05",  # no zone
        "2024-01-02T03:04:05+00:00",  # Kubernetes writes UTC as Z only
        "2024-01-02 03:04:05Z",
        "2024-01-02T03:04Z",
        "2024-13-02T03:04:05Z",
        "2024-02-30T03:04:05Z",
        "2024-01-02T24:00:00Z",
        "2024-01-02T03:04:05.Z",
        "+2024-01-02T03:04:05Z",
    ],
)
def test_parse_rfc3339_refuses_what_is_not_a_kubernetes_timestamp(stamp: str) -> None:
    assert parse_rfc3339(stamp) is None
