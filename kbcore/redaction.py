"""Secret material masked out of what people see: log fields, reprs, tracebacks.

A pure rule on values: the konnector's logs pass every field through `redact`, and attrs fields
that may hold a Secret or a kubeconfig use `redacted_repr` as their repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"
# Compared after lower-casing and dropping "-"/"_", so client-key-data, client_key_data and
# clientKeyData all match.
_SECRET_KEYS = frozenset({"token", "password", "clientkeydata", "kubeconfig", "secretdata"})
_SECRET_SUFFIXES = ("token", "password")  # bearerToken, id-token, refresh-token, ...


def _is_secret_key(key: str) -> bool:
    k = key.lower().replace("-", "").replace("_", "")
    return k in _SECRET_KEYS or k.endswith(_SECRET_SUFFIXES)


def redact(value: Any) -> Any:
    """A copy of `value` with secret material masked: values under secret-looking keys, and the
    `data`/`stringData` of anything shaped like a Secret. Never mutates its argument. The
    konnector's logs pass every field through it; `redacted_repr` is its repr form."""
    if isinstance(value, Mapping):
        secret_obj = value.get("kind") == "Secret"
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if isinstance(k, str) and (
                _is_secret_key(k) or (secret_obj and k in ("data", "stringData"))
            ):
                out[k] = REDACTED
            else:
                out[k] = redact(v)
        return out
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redacted_repr(value: Any) -> str:
    """`repr(value)` with secret material masked (see `redact`): the repr of attrs fields that
    may hold a Secret or a kubeconfig, so a traceback, an assertion message or a debugger never
    shows one."""
    return repr(redact(value))
