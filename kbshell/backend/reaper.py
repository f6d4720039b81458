"""The reaper on a real provider: Grants whose konnector stopped heart-beating
(`kbcore.service.reaper`).

A periodic pass, every `interval_seconds`: LIST every Grant and every Lease on the provider,
ask `plan_reap` (mode, TTL, the clock's now) and log each `ReapDecision` as one JSON log line
(`grant`, `namespace`, `heartbeatAge` in seconds or null without a Lease, `why`, `mode`). In
`DryRun` that log is all it does: nothing is written. In `Revoke` and `Delete` the plan is
carried out (`kbcore.runtime.cluster.carry_out`); the issuer (`kbshell.backend.issuer`) then
deletes a revoked Grant's credentials, the garbage collector what a deleted Grant minted.

A pass, not a watch: staleness changes with time, not with events, so a periodic LIST is what
the decision needs; a failed pass is logged and the next one starts from what is stored.
kbsim runs the same pass (`kbsim.issuer.SimReaper`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from kbcore.api.resources import GRANTS, LEASES
from kbcore.errors import ApiError
from kbcore.runtime.cluster import ClusterAPI, carry_out
from kbcore.service.reaper import Reaped, ReapMode, ReapView, plan_reap

log = logging.getLogger("reaper")
DEFAULT_INTERVAL_SECONDS = 60.0
MODES = {"off": None, "dry-run": ReapMode.DRY_RUN, "revoke": ReapMode.REVOKE,
         "delete": ReapMode.DELETE}  # fmt: skip
"""`kube-bind-backend --reap` values."""


def parse_duration(value: str) -> float:
    """`90s`, `30m`, `1h`, `1h30m` or a number of seconds; positive and finite (ValueError)."""
    text, total, number = value.strip(), 0.0, ""
    try:
        if text and text.replace(".", "", 1).isdigit():
            total = float(text)
        else:
            for ch in text:
                if ch.isdigit() or ch == ".":
                    number += ch
                    continue
                total += float(number) * {"s": 1.0, "m": 60.0, "h": 3600.0}[ch]
                number = ""
            if number or not text:
                raise ValueError(value)
    except (KeyError, ValueError):
        raise ValueError(f"not a duration: {value!r} (e.g. 90s, 30m, 1h)") from None
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"not a positive duration: {value!r}")
    return total


def reap_once(api: ClusterAPI, mode: ReapMode, ttl_seconds: float, now: float) -> Reaped:
    """One pass: plan on what `api` stores, log every decision, write unless a dry run."""
    grants, _ = api.list(GRANTS, "", "")
    leases, _ = api.list(LEASES, "", "")
    reaped = plan_reap(ReapView(tuple(grants), tuple(leases), now, ttl_seconds, mode))
    for d in reaped.decisions:
        log.info(
            "stale Grant",
            extra={"grant": d.grant, "namespace": d.namespace, "heartbeatAge": d.heartbeat_age,
                   "why": d.why, "mode": mode.value},
        )  # fmt: skip
    if mode is not ReapMode.DRY_RUN:
        carry_out(api, reaped.plan, now)
    return reaped


class Reaper:
    """`reap_once` every `interval_seconds` on a thread, until `stop()`."""

    def __init__(
        self,
        provider: ClusterAPI,
        mode: ReapMode,
        ttl_seconds: float,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_seconds <= 0 or interval_seconds <= 0:
            raise ValueError("the reaper's TTL and interval must be positive")
        self.provider = provider
        self.mode = mode
        self.ttl_seconds = ttl_seconds
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.passes = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def every(cls, provider: ClusterAPI, mode: ReapMode, ttl_seconds: float) -> Reaper:
        """A Reaper passing every quarter of the TTL (1 to 60 seconds)."""
        interval = min(DEFAULT_INTERVAL_SECONDS, max(1.0, ttl_seconds / 4))
        return cls(provider, mode, ttl_seconds, interval_seconds=interval)

    def reap_once(self) -> Reaped | None:
        """One pass; None when it failed (logged; the next pass tries again)."""
        try:
            reaped = reap_once(self.provider, self.mode, self.ttl_seconds, self.clock())
        except ApiError as err:
            log.warning("reaper pass failed", extra={"error": str(err), "mode": self.mode.value})
            return None
        finally:
            self.passes += 1
        return reaped

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.reap_once()
            self._stopping.wait(self.interval_seconds)

    def start(self) -> None:
        log.info(
            "reaper starting",
            extra={"mode": self.mode.value, "ttlSeconds": self.ttl_seconds,
                   "intervalSeconds": self.interval_seconds},
        )  # fmt: skip
        self._thread = threading.Thread(target=self._run, name="reaper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)


def reap_settings(reap: str, ttl: str) -> tuple[ReapMode, float] | None:
    """The mode and TTL `--reap` and `--reap-ttl` ask for (None for off); ValueError saying
    which flag cannot work."""
    if reap not in MODES:
        raise ValueError(f"--reap {reap!r}: one of {', '.join(MODES)}")
    try:
        ttl_seconds = parse_duration(ttl)
    except ValueError as err:
        raise ValueError(f"--reap-ttl: {err}") from err
    mode = MODES[reap]
    return None if mode is None else (mode, ttl_seconds)
