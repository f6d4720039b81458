"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as kube-apiserver applies them.

A malformed patch document is 400. A JSON patch that does not apply (including a failed `test`)
is 422 Invalid with the generic text of `NewGenericServerResponse`, exactly as kube-apiserver
answers: the library's own error (evanphx/json-patch v4, kept here in each raise for readers)
is not passed to the client. As in that library, `replace` of a missing object member adds it.
"""

from __future__ import annotations

from typing import Any

from kbcore import errors as reasons
from kbcore.errors import ApiError
from kbcore.objects import deepcopy, json_equal
from kbsim.apierrors import bad_request


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces.

    Walked with a stack, not recursion: a patch is as deep as its client made it."""
    if not isinstance(patch, dict):
        return deepcopy(patch)
    out = deepcopy(target) if isinstance(target, dict) else {}
    stack = [(out, patch)]
    while stack:
        into, layer = stack.pop()
        for key, value in layer.items():
            if value is None:
                into.pop(key, None)
            elif isinstance(value, dict):
                # `out` is a copy, so the maps in it may be merged into in place.
                child = into.get(key)
                if not isinstance(child, dict):
                    child = into[key] = {}
                stack.append((child, value))
            else:
                into[key] = deepcopy(value)
    return out


PATCH_NOT_APPLICABLE = "the server rejected our request due to an error in our request"


def _unprocessable(library_message: str) -> ApiError:
    """422 for a patch that does not apply; `library_message` is what json-patch said (the
    server drops it)."""
    del library_message
    return ApiError(422, reasons.INVALID, PATCH_NOT_APPLICABLE)


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise bad_request(f"invalid JSON pointer {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f'JSON pointer must be empty or start with a "/": {path}')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], op: str, path: Any) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _unprocessable(
                f'{op} operation does not apply: doc is missing path: "{path}": missing value'
            )
    return node


def _locate(doc: Any, path: Any, op: str) -> tuple[Any, str] | None:
    """The container `path` points into and the key in it; None for the whole document."""
    parts = _pointer(path)
    if not parts:
        return None
    return _parent(doc, parts, op, path), parts[-1]


def _get(doc: Any, path: Any) -> Any:
    parts = _pointer(path)
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _unprocessable(f"unable to get nonexistent key: {part}: missing value")
    return node


def _add(doc: Any, path: Any, value: Any) -> Any:
    target = _locate(doc, path, "add")
    if target is None:  # the whole document
        return deepcopy(value)
    parent, last = target
    if isinstance(parent, dict):
        parent[last] = deepcopy(value)
    elif isinstance(parent, list):
        if last == "-":
            parent.append(deepcopy(value))
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), deepcopy(value))
        else:
            raise _unprocessable(
                f"Unable to access invalid index: {last}: invalid index referenced"
            )
    else:
        raise _unprocessable(
            f'add operation does not apply: doc is missing path: "{path}": missing value'
        )
    return doc


def _remove(doc: Any, path: Any) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise _unprocessable("unable to remove the whole document")
    parent = _parent(doc, parts, "remove", path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _unprocessable(f"Unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise _unprocessable(f"Unable to access invalid index: {last}: invalid index referenced")


def _replace(doc: Any, path: Any, value: Any) -> Any:
    target = _locate(doc, path, "replace")
    if target is None:  # the whole document
        return deepcopy(value)
    parent, last = target
    if isinstance(parent, dict):  # json-patch v4: a missing member is simply set
        parent[last] = deepcopy(value)
        return doc
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent[int(last)] = deepcopy(value)
        return doc
    raise _unprocessable(
        f"replace operation does not apply: doc is missing key: {path}: missing value"
    )


def json_patch(doc: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch to a copy of `doc`."""
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    out = deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict):
            raise bad_request("json: cannot unmarshal into Go value of type jsonpatch.Operation")
        kind = op.get("op")
        path = op.get("path")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _unprocessable(f"{kind} operation, missing value field")
        if kind == "add":
            out = _add(out, path, op["value"])
        elif kind == "remove":
            out, _ = _remove(out, path)
        elif kind == "replace":
            out = _replace(out, path, op["value"])
        elif kind == "move":
            out, value = _remove(out, op.get("from"))
            out = _add(out, path, value)
        elif kind == "copy":
            out = _add(out, path, _get(out, op.get("from")))
        elif kind == "test":
            try:
                current = _get(out, path)
            except ApiError:
                current = object()
            if not json_equal(current, op["value"]):
                raise _unprocessable(f"testing value {path} failed: test failed")
        else:
            raise _unprocessable(f"Unexpected kind: {kind}")
    return out
