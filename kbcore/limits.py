"""How deep and how large data from the other side may be, and what the kernel does at a limit.

Every JSON value the kernel reads was written by someone it does not control: a provider writes
CRDs, OpenAPI documents, status and related payloads; a consumer writes specs, bindings and
kubeconfigs. Python recurses about a thousand frames deep, an API server stores documents ten
thousand levels deep, so no walk of such data may recurse once per level. The limits below are
the only numbers involved; docs/user-guide.md ("Limits") states them for users.

Rules (numbers are referenced in tests and docs):

 1. Walks are iterative. The general helpers of `kbcore.objects` (`deepcopy`, `json_equal`,
    `contains`, `canonical_json`, `json_text`, `parse_json`, `fold`, `run_walk`) and
    `json_depth` here keep their own stack, so they handle any depth an API server can hold
    (and deeper) in time linear in the size of the value.
 2. A schema walk may recurse, but only as deep as `MAX_SCHEMA_DEPTH`: no schema deeper is
    installed on a consumer. A provider CRD beyond it is refused (`InvalidSchema`,
    `kbcore.schema.policy` R4, naming the API, version and limit); OpenAPI synthesis stops there,
    keeping what is below unvalidated and reporting it as a loss (`kbcore.schema.openapi`).
 2b. The field-set walks of `kbsim.fieldsets` stop at `MAX_FIELD_PATH` elements, recording
    what is below as one field, so kbsim's managedFields stay linear in size at any depth.
 3. A body the kernel would send is never larger or deeper than an API server accepts
    (`body_problem`): the server would refuse it with certainty and no retry can change that, so
    the planner reports the problem instead of sending (`kbcore.sync.instance` rule 7) and nothing
    is retried in a loop.

Laws: the helpers of rule 1 return (never raise) on values nested twice `MAX_JSON_DEPTH` deep
(tests/unit/test_objects.py); every planner returns a Plan or a refusal, never an exception, on
inputs nested `MAX_JSON_DEPTH` deep wherever a JSON value can nest, and with inputs an API
server can hold plans only writes it can read (tests/property/test_totality.py).
"""

from __future__ import annotations

import json
from typing import Any

from kbcore import objects

MAX_JSON_DEPTH = 10_000
"""The deepest JSON document an API server decodes: Go's encoding/json (and sigs.k8s.io/json,
which kube-apiserver uses) refuses a document whose objects and arrays nest deeper than 10,000
with `exceeded max depth`. The outermost object is level 1."""

MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
"""The largest request body kube-apiserver reads (`MaxRequestBodyBytes`, 3 MiB); a larger one
is refused with 413 RequestEntityTooLarge. etcd's own limit (`--max-request-bytes`, 1.5 MiB by
default) may refuse smaller objects; that one is configurable, so the kernel cannot know it and
leaves it to the server's answer."""

MAX_SCHEMA_DEPTH = 128
"""The deepest `openAPIV3Schema` kube-bind puts on a consumer, counted as JSON nesting (every
object and list is a level, so one nested property is two: `properties` and its name).

Not an API server limit: a server accepts any schema that fits in `MAX_JSON_DEPTH`. It is ours
because a schema is the one thing the kernel (and the consumer's API server, which validates
every object against it) walks recursively, and because the deepest real schemas are far
shallower: a CronJob with every Kubernetes type inlined nests 31 levels, so a CRD embedding one
needs about 40. 128 leaves three times that, and keeps the recursive walks (two frames per
level at most) well inside Python's default budget of 1,000 frames."""


MAX_FIELD_PATH = 128
"""How many path elements `kbsim.fieldsets` (kbsim's server-side apply) records a field path
to; a value deeper than that is recorded as one field at that depth. Not a server limit (a real
server records every level): SMD's ownership is a set of paths, each as long as its depth, so
its cost grows with the square of the depth; at this bound a 10,000-level status costs what a
128-level one does. Real field paths are a few dozen elements at most (rule 2's reason)."""


def json_depth(value: Any, limit: int) -> int:
    """How deep `value` nests, as Go's decoder counts: 0 for a scalar, 1 for `{}` or `[]`, 2 for
    `{"a": []}`; `limit + 1` as soon as it is deeper than `limit`, so checking a huge value
    costs no more than the levels that decide it, and a cycle (a YAML alias of its own parent)
    ends as too deep instead of looping.

    Iterative (rule 1). A container reached again (a YAML alias) is walked again only when
    reached at a greater depth, so the walk stays linear in the distinct containers."""
    if not isinstance(value, dict | list | tuple):
        return 0
    deepest = 0
    seen: dict[int, int] = {}
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if seen.get(id(node), 0) >= depth:
            continue
        seen[id(node)] = depth
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return limit + 1
        below = depth + 1
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list | tuple):
                stack.append((child, below))
    return deepest


def schema_depth_problem(schema: Any) -> str:
    """Rule 2: '' when `schema` may be walked, else what is wrong with it (for a message)."""
    depth = json_depth(schema, MAX_SCHEMA_DEPTH)
    if depth <= MAX_SCHEMA_DEPTH:
        return ""
    return (
        f"its schema nests more than {MAX_SCHEMA_DEPTH} levels deep, the most kube-bind "
        "installs on a consumer"
    )


def body_problem(body: Any) -> str:
    """Rule 3: '' when an API server would read `body`, else why it would refuse it.

    The size counted is the compact UTF-8 JSON encoding, the smallest any client sends, so a
    body is only called too large when every encoding of it is."""
    try:
        # The C encoder is fast, and it recurses: if it gets through, the body is shallower
        # than Python's recursion budget, far below the depth limit.
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        if json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            return (
                f"it nests more than {MAX_JSON_DEPTH} levels deep, the most an API server decodes"
            )
        text = objects.canonical_json(body, ensure_ascii=False)
    except (TypeError, ValueError):
        return "it is not JSON"
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_REQUEST_BODY_BYTES:
        return (
            f"it is {size} bytes as JSON, more than the {MAX_REQUEST_BODY_BYTES} bytes "
            "(3 MiB) an API server reads in one request"
        )
    return ""
