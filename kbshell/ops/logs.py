"""Structured logging for the konnector, on stdlib `logging`.

Conventions (controller-runtime's logging guidelines): constant messages, context as fields
(`extra=`), objects as references `{"object": {"name", "namespace"}, "kind": ...}` built by
`obj_ref`, errors through the exception path (`logger.error(msg, exc_info=exc)`). Fields that
hold for a whole reconcile (controller, reconcileID) are bound once with `log_context`.

`JsonFormatter` writes one JSON object per line: `ts` (RFC 3339 UTC, millis), `level`, `logger`,
`msg`, then the fields. `TextFormatter` writes the same as one human-readable `key=value` line.
Both pass every field through `redact`, so secret material (tokens, passwords, client keys,
kubeconfigs, Secret data) never reaches the log even when a caller logs a whole object.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, Literal

import attrs

from kbcore.errors import ApiError
from kbcore.redaction import REDACTED as REDACTED  # re-exported: redaction is a pure rule
from kbcore.redaction import redact as redact  # re-exported, as REDACTED

LogFormat = Literal["json", "text"]

# Exceptions that are part of normal operation (the API said no): logged with `error` only;
# anything else also gets `stacktrace`, since it is a bug or an environment surprise.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ApiError,)

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# zap/klog level names, which log tooling for Kubernetes controllers already understands.
_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}

# Every attribute a plain LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "kbshell_log_context", default=None
)


def obj_ref(kind: str, namespace: str, name: str, *, key: str = "object") -> dict[str, Any]:
    """Fields naming one object, klog `KObj` style: `{key: {"name", "namespace"}, "kind": kind}`
    (namespace omitted for cluster-scoped objects). Use as `extra=obj_ref(...)` or merge:
    `extra={**obj_ref(...), "controller": "binding"}`."""
    ref: dict[str, str] = {"name": name}
    if namespace:
        ref["namespace"] = namespace
    return {key: ref, "kind": kind}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every record logged in this thread/task until the block ends (e.g.
    `controller` and `reconcileID` around one reconcile). Explicit `extra=` fields win."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def _jsonable(value: Any) -> Any:
    """Fallback for json.dumps: values that have an obvious plain form get it, the rest str."""
    if isinstance(value, BaseException):
        return str(value) or type(value).__name__
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if attrs.has(type(value)):
        return redact(attrs.asdict(value, recurse=True))
    if isinstance(value, bytes):
        # Raw bytes are most often Secret data or certificates: never print them.
        return f"<{len(value)} bytes>"
    return str(value)


def _ts(created: float) -> str:
    t = dt.datetime.fromtimestamp(created, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's structured fields: bound context, then `extra=`, then error details."""
    fields: dict[str, Any] = dict(_context.get() or {})
    for k, v in record.__dict__.items():
        if k not in _RECORD_ATTRS and not k.startswith("_"):
            fields[k] = v
    if isinstance(fields.get("error"), BaseException):
        exc = fields["error"]
        fields["error"] = str(exc) or type(exc).__name__
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        fields["error"] = str(exc) or type(exc).__name__
        if not isinstance(exc, EXPECTED_ERRORS) or record.levelno <= logging.DEBUG:
            fields["stacktrace"] = "".join(traceback.format_exception(exc)).rstrip()
    if record.stack_info:
        fields["stacktrace"] = record.stack_info
    safe: dict[str, Any] = redact(fields)
    return safe


def _level(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelno, record.levelname.lower())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        head = {
            "ts": _ts(record.created),
            "level": _level(record),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # Fields may not shadow the four fixed keys; a caller's "msg" would hide the message.
        body = {k: v for k, v in _fields(record).items() if k not in head}
        return json.dumps({**head, **body}, default=_jsonable, ensure_ascii=False)


_BARE = re.compile(r"^[A-Za-z0-9_./:@+,<>-]+$")


def _text_value(value: Any) -> str:
    if isinstance(value, Mapping) and "name" in value and set(value) <= {"name", "namespace"}:
        # An object reference reads as ns/name, like klog's text output.
        ns = value.get("namespace")
        return f"{ns}/{value['name']}" if ns else str(value["name"])
    if not isinstance(value, str):
        # Numbers, booleans, lists and maps as compact JSON: unambiguous and still one line.
        return json.dumps(value, default=_jsonable, ensure_ascii=False, separators=(",", ":"))
    # Quote anything with spaces or quotes; quoting also turns newlines (stack traces) into \n.
    return value if _BARE.match(value) else json.dumps(value, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`ts level logger "msg" key=value ...` on one line, for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _ts(record.created),
            _level(record).upper(),
            record.name,
            json.dumps(record.getMessage(), ensure_ascii=False),
        ]
        parts += [f"{k}={_text_value(v)}" for k, v in _fields(record).items()]
        return " ".join(parts)


def parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"log level must be one of {sorted(_LEVELS)}, got {level!r}") from None


class _OpsHandler(logging.StreamHandler[IO[str]]):
    """Marks the handler configure_logging installed, so calling it again replaces it."""


def configure_logging(
    fmt: LogFormat = "json", level: str | int = "info", stream: IO[str] | None = None
) -> logging.Handler:
    """Route the root logger to `stream` (default: stderr, as controller-runtime's zap does) in
    `fmt`, at `level`. Idempotent: a second call replaces the handler the first installed."""
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be json or text, got {fmt!r}")
    lvl = parse_level(level)
    handler = _OpsHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _OpsHandler)]:
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(lvl)
    # The kubernetes client logs whole request and response bodies (Secrets included) at debug:
    # keep it quiet even when the konnector itself runs at debug.
    for name in ("kubernetes", "urllib3"):
        logging.getLogger(name).setLevel(max(lvl, logging.WARNING))
    return handler
