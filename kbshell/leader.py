"""Leader election: a thread that reads the Lease and carries out `kbcore.runtime.leader`'s
decision.

The decision (create, renew, stand by, take over, release) is `plan_leadership`; this thread
only reads the Lease, sends the one write the kernel asks for, and keeps `leading` up to date.
As in controller-runtime, a leader that fails to renew before the renew deadline stops leading
at once and the process exits (`on_lost`), so two replicas never both write: the other one can
only take over after the lease duration, by which time this one has stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kbcore.api.resources import LEASES
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.runtime import cluster
from kbcore.runtime.leader import (
    RENEW_DEADLINE_SECONDS,
    RETRY_PERIOD_SECONDS,
    LeaderView,
    plan_leadership,
)
from kbcore.runtime.requests import to_request
from kbshell.client import KubeClient
from kbshell.ops import obj_ref

log = logging.getLogger("konnector.leader")


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        on_lost: Callable[[], None],
        on_change: Callable[[bool], None] = lambda _leading: None,
    ) -> None:
        self.client = client
        self.key = ObjectKey(namespace, name)
        self.identity = identity
        self.on_lost = on_lost
        self.on_change = on_change
        self._leading = threading.Event()
        self._stopping = threading.Event()
        self._last_renew = 0.0
        self._thread: threading.Thread | None = None

    def leading(self) -> bool:
        return self._leading.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def _step(self, release: bool = False) -> float:
        """One read-decide-write round; returns when to look again (wall clock)."""
        lease = cluster.get_or_none(self.client, LEASES, self.key)
        now = time.time()
        decision = plan_leadership(
            LeaderView("consumer", self.key, lease, self.identity, now, release=release)
        )
        if decision.write is not None:
            request = to_request(decision.write, now)
            assert request is not None
            try:
                self.client.perform(request)
                if not release:
                    self._last_renew = time.monotonic()
            except ApiError as err:
                if err.code != 409:  # 409: another replica won this round; read again
                    raise
                log.info("lease changed under us; reading it again", extra=self._lease_ref())
        # The kernel says we lead only once a read shows our own live renewal.
        leading = decision.leader and not release
        self._set(leading)
        return decision.next_check

    def _lease_ref(self) -> dict[str, Any]:
        return obj_ref("Lease", self.key.namespace, self.key.name, key="lease")

    def _set(self, leading: bool) -> None:
        was = self._leading.is_set()
        if leading and not was:
            self._leading.set()
            log.info("became the leader", extra=self._lease_ref())
            self.on_change(True)
        elif not leading and was:
            self._leading.clear()
            log.warning("lost the leadership", extra=self._lease_ref())
            self.on_change(False)
            self.on_lost()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                next_check = self._step()
                delay = max(0.2, min(RETRY_PERIOD_SECONDS, next_check - time.time()))
            except Exception as err:
                log.warning(
                    "leader election step failed", extra={**self._lease_ref(), "error": err}
                )
                delay = RETRY_PERIOD_SECONDS
                if (
                    self._leading.is_set()
                    and time.monotonic() - self._last_renew > RENEW_DEADLINE_SECONDS
                ):
                    self._set(False)  # could not renew in time: stop before another takes over
            self._stopping.wait(delay)

    def stop(self, release: bool = True) -> None:
        """Stop the loop; with `release`, hand the Lease over so a standby takes over at once."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
        was_leading = self._leading.is_set()
        self._leading.clear()  # a deliberate stop is not a lost leadership (no on_lost)
        if release and was_leading:
            try:
                self._step(release=True)
                log.info("released the lease", extra=self._lease_ref())
            except Exception as err:
                log.warning("releasing the lease failed", extra={**self._lease_ref(), "error": err})
