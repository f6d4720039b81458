"""Reads: what the planners need to see before they can decide, as frozen values.

Every planner (`plan_instance`, `plan_connection`, `plan_binding`) asks for reads the same
sans-I/O way: it is called with everything observed so far (`Observed`, a mapping from a read to
its result); when it cannot decide without more, it returns a `Plan` whose `needs` lists the
reads to do, and the worker calls it again with their results added. Inside a planner, `need`
and its typed forms raise `Missing` for a read not done yet, which the planner's entry point
turns into that Plan, so a helper deep in a decision can ask without threading a result back. A
read's result is what the API server answered: the object (or None for NotFound) for a `Get`,
the list of items for a `List`, the JSON document for `Discovery` and `OpenAPIDoc`, or
`Failed(error)` for any other failure, which the planner turns into a condition. Reads are
hashable values, so a shell can cache and deduplicate them.

Which cluster a read goes to is named by role (`CONSUMER`, `PROVIDER`); the shell knows which
real cluster and credentials play the provider for the Connection being planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey


@attrs.frozen
class Get:
    """GET one object; the result is the object, or None when it does not exist."""

    cluster: str
    gvr: GVR
    key: ObjectKey


@attrs.frozen
class List:
    """LIST objects (in `namespace`, "" for all) matching `label_selector`; the result is the
    list of items."""

    cluster: str
    gvr: GVR
    namespace: str = ""
    label_selector: str = ""


@attrs.frozen
class Discovery:
    """GET a discovery document at `path` (`/apis`, `/apis/<group>/<version>`, `/api/v1`)."""

    cluster: str
    path: str


@attrs.frozen
class OpenAPIDoc:
    """GET an OpenAPI v3 document: the index at `/openapi/v3`, or a group-version document at
    the path the index names (`/openapi/v3/apis/<group>/<version>`)."""

    cluster: str
    path: str


Read = Get | List | Discovery | OpenAPIDoc


@attrs.frozen
class Failed:
    """A read the server refused or could not answer."""

    error: ApiError


Observed = Mapping[Read, Any]
"""Results of reads so far: Obj | None | list[Obj] | dict (documents) | Failed."""


class Missing(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a planner by `need()` when a read has not been done yet; planners catch it
    at their top level and return a Plan listing what is missing."""

    def __init__(self, reads: tuple[Read, ...], why: str = "reads needed") -> None:
        super().__init__(reads)
        self.reads = reads
        self.why = why
        """The Plan's `why`: which rule asks."""


def need(observed: Observed, read: Read, why: str = "reads needed") -> Any:
    """The result of `read`, or raise `Missing` so the planner asks for it."""
    if read not in observed:
        raise Missing((read,), why)
    return observed[read]


def need_all(observed: Observed, reads: tuple[Read, ...]) -> tuple[Any, ...]:
    """The results of every read, asking for all missing ones at once (one round trip)."""
    missing = tuple(r for r in reads if r not in observed)
    if missing:
        raise Missing(missing)
    return tuple(observed[r] for r in reads)


def get_obj(observed: Observed, read: Get, why: str = "reads needed") -> Obj | None:
    """A `Get` result as an object or None; a failure is raised as its ApiError."""
    result = need(observed, read, why)
    if isinstance(result, Failed):
        raise result.error
    return result if isinstance(result, dict) else None


def list_items(observed: Observed, read: List) -> list[Obj]:
    """A `List` result as items; a failure is raised as its ApiError."""
    result = need(observed, read)
    if isinstance(result, Failed):
        raise result.error
    return [i for i in result if isinstance(i, dict)] if isinstance(result, list) else []
