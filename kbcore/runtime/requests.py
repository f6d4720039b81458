"""Actions become API requests, and request outcomes become requeue decisions.

Both shells execute plans through this module: `to_request` turns an action into one API request
(verb, target, body, preconditions) and `judge` turns the request's failure into what the worker
does next. kbsim hands the request to its in-memory API server, kbshell to the `kubernetes`
client; neither decides anything about Kubernetes semantics on its own.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Any, Literal

import attrs

from kbcore import actions
from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import EVENTS, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.redaction import redacted_repr
from kbcore.timestamps import rfc3339

Verb = Literal["create", "update", "patch", "delete"]
PatchType = Literal["merge", "json", "apply"]


@attrs.frozen(hash=False)
class Request:
    """One API request. `verb` is create, update, patch or delete; `patch_type` (patches only)
    is merge or apply; `uid`/`resource_version` are preconditions (delete options or body
    metadata). `kbcore.runtime.cluster.perform` carries it out."""

    verb: Verb
    cluster: str
    gvr: GVR
    key: ObjectKey
    body: o.Obj | None = attrs.field(default=None, repr=redacted_repr)
    patch_type: PatchType | Literal[""] = ""
    subresource: str = ""
    field_manager: str = keys.FIELD_MANAGER
    force: bool = False
    uid: str = ""


def to_request(action: actions.Action, now: float) -> Request | None:
    """The API request that carries out `action`; None for actions that are not requests."""
    match action:
        case (
            actions.AddFinalizer(target=t, resource_version=rv, finalizers=fins)
            | actions.RemoveFinalizer(target=t, resource_version=rv, finalizers=fins)
        ):
            body: o.Obj = {"metadata": {"finalizers": list(fins), "resourceVersion": rv}}
            return Request("patch", t.cluster, t.gvr, t.key, body, patch_type="merge")
        case actions.Apply(target=t, body=body, field_manager=fm, force=force):
            return Request(
                "patch", t.cluster, t.gvr, t.key, body, "apply", field_manager=fm, force=force
            )
        case actions.Create(target=t, body=body, field_manager=fm):
            return Request("create", t.cluster, t.gvr, t.key, body, field_manager=fm)
        case actions.CreateNamespace(cluster=cluster, name=name, labels=labels, annotations=ann):
            meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
            if ann:
                meta["annotations"] = dict(ann)
            ns_body: o.Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
            return Request("create", cluster, NAMESPACES, ObjectKey("", name), ns_body)
        case actions.Delete(target=t, uid=uid):
            return Request("delete", t.cluster, t.gvr, t.key, uid=uid)
        case actions.MergePatch(target=t, patch=patch, resource_version=rv):
            body = o.deepcopy(patch)
            if rv:
                body.setdefault("metadata", {})["resourceVersion"] = rv
            return Request("patch", t.cluster, t.gvr, t.key, body, patch_type="merge")
        case actions.Update(target=t, body=body, field_manager=fm):
            return Request("update", t.cluster, t.gvr, t.key, body, field_manager=fm)
        case actions.UpdateStatus(target=t, body=body):
            return Request("update", t.cluster, t.gvr, t.key, body, subresource="status")
        case actions.EmitEvent():
            return _event_request(action, now)
        case actions.RequeueAfter():
            return None
    raise TypeError(f"not an action: {action!r}")  # pragma: no cover - exhaustive above


def _event_request(ev: actions.EmitEvent, now: float) -> Request:
    t = ev.target
    stamp = rfc3339(now)
    # Names must be unique per event; derive them from content and time, as client-go does
    # from the time alone, so a replayed plan yields the same name and an AlreadyExists.
    digest = hashlib.sha256(f"{t}|{ev.reason}|{ev.message}|{now}".encode()).hexdigest()[:16]
    name = f"{t.key.name}.{digest}"
    namespace = t.key.namespace or "default"
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": t.gvr.api_version,
            "kind": ev.kind,
            "name": t.key.name,
            "namespace": t.key.namespace,
            "uid": ev.uid,
        },
        "type": ev.type,
        "reason": ev.reason,
        "message": ev.message,
        "source": {"component": keys.EVENT_COMPONENT},
        "reportingComponent": keys.EVENT_COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    return Request("create", t.cluster, EVENTS, ObjectKey(namespace, name), body)


class Next(enum.Enum):
    CONTINUE = "continue"
    """The request did what was planned (or its effect already holds): run the next action."""
    REPLAN = "replan"
    """The world moved under the plan (stale rv, replaced object): plan again at once."""
    BACKOFF = "backoff"
    """Transient failure: retry the key with per-item exponential backoff."""
    WAIT = "wait"
    """Retry no sooner than `Verdict.after` seconds (Retry-After, or a permission denial)."""


@attrs.frozen
class Verdict:
    next: Next
    after: float = 0.0
    why: str = ""


FORBIDDEN_RETRY_SECONDS = 30.0
"""Upstream waits 30 s after a provider RBAC denial rather than spinning."""


def judge(action: actions.Action, error: ApiError) -> Verdict:
    """What a worker does after `action` failed with `error`."""
    if isinstance(action, actions.CreateNamespace) and error.is_already_exists:
        return Verdict(Next.CONTINUE, why="namespace already exists")
    if isinstance(action, actions.Delete) and error.is_not_found:
        return Verdict(Next.CONTINUE, why="already gone")
    if isinstance(action, actions.Delete) and action.best_effort and error.code == 403:
        return Verdict(Next.CONTINUE, why="best-effort delete refused by RBAC")
    if isinstance(action, actions.EmitEvent):
        return Verdict(Next.CONTINUE, why="events are best effort")
    if isinstance(action, actions.Create) and error.is_already_exists:
        return Verdict(Next.REPLAN, why="someone created it first: classify it afresh")
    if error.code in (404, 409, 422) and not isinstance(
        action, actions.Apply | actions.CreateNamespace
    ):
        return Verdict(Next.REPLAN, why=f"{error.reason}: plan again from fresh state")
    if error.code == 409 and isinstance(action, actions.Apply):
        return Verdict(Next.REPLAN, why="apply conflict or replaced object")
    if error.code == 422 and isinstance(action, actions.Apply):
        # A uid precondition mismatch is reported as an immutable-field error.
        return Verdict(Next.REPLAN, why="apply rejected; plan again from fresh state")
    if error.is_namespace_terminating:
        # Not RBAC: the namespace goes away within seconds and is recreated by the next plan.
        return Verdict(Next.BACKOFF, why="namespace is being terminated")
    if error.code == 403:
        return Verdict(Next.WAIT, FORBIDDEN_RETRY_SECONDS, why="forbidden by RBAC")
    return throttled(error) or Verdict(Next.BACKOFF, why=f"{error.code} {error.reason}")


def throttled(error: ApiError) -> Verdict | None:
    """The server asked to slow down (429, or 503 with Retry-After): wait its Retry-After, at
    least 1 s. None for any other failure."""
    if error.code == 429 or (error.code == 503 and error.retry_after):
        return Verdict(Next.WAIT, max(error.retry_after or 1.0, 1.0), why="throttled")
    return None
