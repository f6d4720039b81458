"""The konnector process's operations surface: metrics, health probes and logging.

- `metrics`: `Metrics`, the Prometheus registry (workqueue, reconcile and `kubebind_` metrics);
- `server`: `Probes`, `Watchdog` and `OpsServer`, the HTTP endpoints `/healthz`, `/livez`,
  `/readyz` and `/metrics`;
- `logs`: `configure_logging`, the JSON/text formatters, `obj_ref`, `log_context`, `redact`.

Nothing here knows about bindings or clusters beyond label values; the konnector shell calls in.
"""

from __future__ import annotations

from kbshell.ops.logs import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    log_context,
    obj_ref,
    redact,
)
from kbshell.ops.metrics import Metrics
from kbshell.ops.server import (
    ListenError,
    OpsServer,
    ProbeResult,
    Probes,
    Watchdog,
    parse_bind_address,
    ready_when_synced,
)

__all__ = [
    "JsonFormatter",
    "ListenError",
    "Metrics",
    "OpsServer",
    "ProbeResult",
    "Probes",
    "TextFormatter",
    "Watchdog",
    "configure_logging",
    "log_context",
    "obj_ref",
    "parse_bind_address",
    "ready_when_synced",
    "redact",
]
