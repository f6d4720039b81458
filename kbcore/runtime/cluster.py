"""One API server as both shells call it, and the kernel's requests and reads mapped onto it.

`ClusterAPI` is the dict-level interface of one API server as one user: kbshell's `KubeClient`
implements it over HTTP, kbsim's `ServerAPI` over an in-memory `APIServer`, and the conformance
suite measures both through it. `perform` carries out a `kbcore.runtime.requests.Request` and
`read` answers a `kbcore.reads.Read` on any implementation, so what a verb means, which
namespace a write is addressed to and that "a 404 on a Get is None" are written here once.

Pure: these functions only call methods of the `ClusterAPI` they are given.

Rules:
 1. A create or update is addressed to the body's namespace; a body without one gets the
    request key's (the kernel names the target by key). Namespaces themselves are addressed
    without one (`url_namespace`).
 2. A Get answered 404 is the object's absence: None, not a failure (`get_or_none`). Any
    other failed read is `Failed(error)`; `read` never raises an `ApiError`.
 3. A provider-side controller plans against one cluster (`planned`: every read a planner asks
    for is answered there) and carries the plan out in order (`carry_out`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, assert_never

import attrs

from kbcore import objects as o
from kbcore.actions import Plan
from kbcore.api.resources import NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.reads import Discovery, Failed, Get, List, Observed, OpenAPIDoc, Read
from kbcore.runtime.requests import PatchType, Request, to_request

T = TypeVar("T")


class Viewed(Protocol):
    """A planner's view: attrs, with the reads answered so far."""

    @property
    def observed(self) -> Observed: ...


V = TypeVar("V", bound=Viewed)


class ClusterAPI(Protocol):
    """One API server as one user. Every failure is a `kbcore.errors.ApiError` carrying the
    server's code, reason, message and details. Callers pass every argument (the parameters
    are positional and have no defaults), so an implementation may name them as it likes."""

    def get(self, gvr: GVR, key: ObjectKey, /, *, subresource: str = "") -> Obj: ...

    def list(self, gvr: GVR, namespace: str, label_selector: str, /) -> tuple[list[Obj], str]:
        """(items, the list's resourceVersion)."""
        ...

    def create(self, gvr: GVR, body: Obj, field_manager: str, /) -> Obj:
        """POST into `url_namespace(gvr, body)`."""
        ...

    def update(self, gvr: GVR, body: Obj, subresource: str, field_manager: str, /) -> Obj:
        """PUT of the whole object to `url_namespace(gvr, body)`, name from `body.metadata`."""
        ...

    def patch(
        self,
        gvr: GVR,
        key: ObjectKey,
        body: Any,
        patch_type: PatchType,
        field_manager: str,
        force: bool,
        subresource: str,
        /,
    ) -> Obj:
        """JSON merge patch, JSON patch, or server-side apply (`force` only for apply)."""
        ...

    def delete(
        self,
        gvr: GVR,
        key: ObjectKey,
        uid: str | None,
        resource_version: str | None,
        propagation_policy: str | None,
        /,
    ) -> Obj | None:
        """DELETE with optional preconditions; the object if it still exists (held by
        finalizers, now marked for deletion), None if it is gone."""
        ...

    def discovery(self, path: str, /) -> Obj:
        """GET of a discovery document (`/api`, `/api/v1`, `/apis`, `/apis/<group>[/<v>]`)."""
        ...

    def openapi(self, path: str, /) -> Obj:
        """GET of an OpenAPI v3 document: `/openapi/v3` or a `serverRelativeURL` it names."""
        ...


def url_namespace(gvr: GVR, body: Obj) -> str:
    """The namespace in the URL of a create or update of `body` (rule 1): the body's, none for
    a Namespace itself."""
    if gvr == NAMESPACES:
        return ""
    return str(o.metadata(body).get("namespace") or "")


def addressed(request: Request) -> Obj:
    """The body of a create or update, with the request key's namespace if it names none
    (rule 1)."""
    assert request.body is not None, request  # the kernel's writes carry a body
    body, namespace = request.body, request.key.namespace
    if namespace and not o.metadata(body).get("namespace"):
        body = {**body, "metadata": {**o.metadata(body), "namespace": namespace}}
    return body


def perform(api: ClusterAPI, request: Request) -> Obj | None:
    """Carry out one request on `api`; the server's answer (None once deleted)."""
    r = request
    match r.verb:
        case "create":
            return api.create(r.gvr, addressed(r), r.field_manager)
        case "update":
            return api.update(r.gvr, addressed(r), r.subresource, r.field_manager)
        case "patch":
            return api.patch(
                r.gvr,
                r.key,
                r.body,
                r.patch_type or "merge",
                r.field_manager,
                r.force,
                r.subresource,
            )
        case "delete":
            return api.delete(r.gvr, r.key, r.uid or None, None, None)
        case _:  # pragma: no cover - exhaustive over Verb
            assert_never(r.verb)


def get_or_none(api: ClusterAPI, gvr: GVR, key: ObjectKey) -> Obj | None:
    """GET: the object, or None if it does not exist (rule 2); any other failure raises."""
    try:
        return api.get(gvr, key)
    except ApiError as err:
        if err.is_not_found:
            return None
        raise


def ask(api: ClusterAPI, r: Read) -> Any:
    """The server's answer to one kernel read; raises the `ApiError` if it failed."""
    match r:
        case Get(gvr=gvr, key=key):
            return get_or_none(api, gvr, key)
        case List(gvr=gvr, namespace=namespace, label_selector=selector):
            return api.list(gvr, namespace, selector)[0]
        case Discovery(path=path):
            return api.discovery(path)
        case OpenAPIDoc(path=path):
            return api.openapi(path)
    raise TypeError(f"not a read: {r!r}")  # pragma: no cover - exhaustive above


def answered(call: Callable[[], T]) -> T | Failed:
    """`call()`'s result, or `Failed(error)` if it failed (rule 2)."""
    try:
        return call()
    except ApiError as err:
        return Failed(err)


def read(api: ClusterAPI, r: Read) -> Any:
    """Answer one kernel read on `api`: the object or None (404) for a Get, the items for a
    List, the document for Discovery/OpenAPIDoc, `Failed(error)` for any other failure."""
    return answered(lambda: ask(api, r))


def planned(api: ClusterAPI, planner: Callable[[V], Plan], view: V, limit: int = 10) -> Plan:
    """Call `planner` on `view`, answering every read it asks for on `api` (one cluster: the
    reads' cluster role is not looked at), until it asks for none; a provider-side controller's
    loop around a pure planner (the konnector's worker does the same for two clusters)."""
    plan = planner(view)
    for _ in range(limit):
        if not plan.needs:
            return plan
        observed = {**view.observed, **{r: read(api, r) for r in plan.needs}}
        view = attrs.evolve(view, observed=observed)  # type: ignore[misc]
        plan = planner(view)
    raise RuntimeError(f"planner still asking for reads after {limit} rounds: {plan.needs}")


def carry_out(api: ClusterAPI, plan: Plan, now: float) -> None:
    """Carry out `plan`'s writes on `api` in order; the first failure is raised (the caller
    retries the key, and the planner decides again from what is stored)."""
    for action in plan.actions:
        request = to_request(action, now)
        if request is not None:
            perform(api, request)
