"""The provider's issuer in kbsim: answers tenants' namespace claims (`kbcore.service.claims`).

A controller beside the API server's own: whenever the provider's state moved, it plans every
BoundNamespace claim with the kernel's `plan_claim` and carries the actions out as the cluster
admin, as the real issuer (`kbshell.backend.issuer`) does with its own credentials, through
the same `kbcore.runtime.cluster.planned` and `carry_out`. The decisions are the kernel's.
"""

from __future__ import annotations

from collections.abc import Callable

from kbcore.actions import Plan
from kbcore.api.resources import BOUND_NAMESPACES
from kbcore.errors import ApiError
from kbcore.runtime.cluster import carry_out, planned
from kbcore.service.claims import ClaimView, plan_claim
from kbsim.apiserver import APIServer
from kbsim.serverapi import ServerAPI


class SimIssuer:
    def __init__(self, server: APIServer, now: Callable[[], float]) -> None:
        self.api = ServerAPI(server)
        self.server = server
        self.now = now
        self._pending: tuple[str, bool] | None = None

    def _plans(self) -> list[Plan]:
        try:
            claims, _ = self.api.list(BOUND_NAMESPACES)
        except ApiError:
            return []  # the iam CRDs are not installed: no tenants here
        return [planned(self.api, plan_claim, ClaimView(c, {}, self.now())) for c in claims]

    def pending_work(self) -> bool:
        """Whether `tick()` would write (memoized per resourceVersion, as the controllers are)."""
        rv = self.server.current_resource_version()
        if self._pending is None or self._pending[0] != rv:
            self._pending = (rv, any(p.writes for p in self._plans()))
        return self._pending[1]

    def tick(self) -> None:
        for plan in self._plans():
            try:
                carry_out(self.api, plan, self.now())
            except ApiError:
                continue  # the next tick plans again from what is stored
