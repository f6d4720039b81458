"""Unit tests of `kbcore.requests`: actions become requests, failures become requeue verdicts."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore.actions import (
    PROVIDER,
    Action,
    AddFinalizer,
    Apply,
    Create,
    CreateNamespace,
    Delete,
    EmitEvent,
    MergePatch,
    RemoveFinalizer,
    RequeueAfter,
    UpdateStatus,
)
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.requests import (
    EVENTS,
    NAMESPACES,
    Next,
    Request,
    judge,
    parse_rfc3339,
    rfc3339,
    to_request,
)

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


# --- to_request -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            AddFinalizer(CREF, FIN, "41", ("a/b", FIN)),
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
            RemoveFinalizer(CREF, FIN, "41", ()),
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
            Apply(PREF, BODY, "kube-bind-konnector", force=True),
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
            Create(PREF, BODY, "kube-bind-konnector"),
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
            CreateNamespace("provider", "team-a", {"core.kube-bind.io/managed": "true"}),
            Request(
                "create",
                "provider",
                NAMESPACES,
                ObjectKey("", "team-a"),
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "team-a", "labels": {"core.kube-bind.io/managed": "true"}},
                },
            ),
        ),
        (
            CreateNamespace("provider", "team-a", {"m": "true"}, {"core.kube-bind.io/x": "y"}),
            Request(
                "create",
                "provider",
                NAMESPACES,
                ObjectKey("", "team-a"),
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": "team-a",
                        "labels": {"m": "true"},
                        "annotations": {"core.kube-bind.io/x": "y"},
                    },
                },
            ),
        ),
        (
            Delete(PREF, "p-1"),
            Request("delete", "provider", GVR_W, KEY, uid="p-1"),
        ),
        (
            MergePatch(CREF, {"metadata": {"annotations": {"core.kube-bind.io/conflict": None}}}),
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
            MergePatch(CREF, {"spec": {"x": 1}}, resource_version="41"),
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
            UpdateStatus(CREF, CONSUMER),
            Request("update", "consumer", GVR_W, KEY, CONSUMER, subresource="status"),
        ),
        (RequeueAfter(2.0), None),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, Request) else "",
)
def test_every_action_maps_to_its_request(action: Action, expected: Request | None) -> None:
    assert to_request(action, NOW) == expected


def test_merge_patch_with_rv_does_not_mutate_the_action() -> None:
    patch: dict[str, Any] = {"metadata": {"annotations": {"a": "b"}}}
    action = MergePatch(CREF, patch, resource_version="41")
    req = to_request(action, NOW)
    assert req is not None and req.body is not None
    assert req.body["metadata"] == {"annotations": {"a": "b"}, "resourceVersion": "41"}
    assert patch == {"metadata": {"annotations": {"a": "b"}}}


EVENT = EmitEvent(CREF, "Widget", "c-1", "Warning", "ForeignObjectExists", "provider object ...")


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
    ev = EmitEvent(
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

ADD = AddFinalizer(CREF, FIN, "41", (FIN,))
REMOVE = RemoveFinalizer(CREF, FIN, "41", ())
APPLY = Apply(PREF, BODY, "kube-bind-konnector")
NS = CreateNamespace("provider", "team-a", {})
CREATE = Create(PREF, BODY, "kube-bind-konnector")
DELETE = Delete(PREF, "p-1")
PATCH = MergePatch(CREF, {"metadata": {"annotations": {"x": None}}})
STATUS = UpdateStatus(CREF, CONSUMER)


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
def test_judge(action: Action, error: ApiError, next_: Next, after: float) -> None:
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


# --- the hand-written conversions these replace, kept for one commit to prove they agree ------


def _old_rfc3339(epoch_seconds: float) -> str:
    secs = int(epoch_seconds // 1)
    days, rem = divmod(secs, 86400)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y += m <= 2
    return f"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z"


def _old_parse_rfc3339(stamp: str) -> float | None:
    try:
        date, sep, clock = stamp.partition("T")
        if not sep or not clock.endswith("Z"):
            return None
        y, m, d = (int(x) for x in date.split("-"))
        hh, mm, ss = clock[:-1].split(":")
        seconds = int(hh) * 3600 + int(mm) * 60 + float(ss)
    except ValueError:
        return None
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + seconds


@st.composite
def rfc3339_stamps(draw: st.DrawFn) -> str:
    """RFC 3339 timestamps: any instant of years 1-9999, a fraction of 0-9 digits, and `Z`
    (as Kubernetes writes them), a numeric offset or a lowercase `t`/`z` (valid, never written
    by Kubernetes, refused by both)."""
    at = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    digits = draw(st.integers(0, 9))
    fraction = "" if digits == 0 else "." + "".join(draw(st.lists(
        st.sampled_from("0123456789"), min_size=digits, max_size=digits)))  # fmt: skip
    offset = draw(st.sampled_from(["Z", "Z", "Z", "z", "+00:00", "-07:30", "+14:00"]))
    sep = draw(st.sampled_from(["T", "T", "T", "t"]))
    return at.isoformat(sep=sep, timespec="seconds") + fraction + offset


@settings(max_examples=5000, deadline=None)
@given(rfc3339_stamps())
def test_datetime_parser_agrees_with_the_hand_written_one(stamp: str) -> None:
    assert parse_rfc3339(stamp) == _old_parse_rfc3339(stamp)
    if stamp[10] == "T" and stamp.endswith("Z"):
        assert parse_rfc3339(stamp) is not None


@settings(max_examples=5000, deadline=None)
@given(st.floats(FIRST_SECOND, LAST_SECOND + 0.999, allow_nan=False))
def test_datetime_formatter_agrees_with_the_hand_written_one(x: float) -> None:
    assert rfc3339(x) == _old_rfc3339(x)
