"""The provider's issuer in kbsim: the catalog's Ready (`kbcore.service.catalog`), what each
Grant mints (`kbcore.service.issuer`) and tenants' namespace claims (`kbcore.service.claims`).

A controller beside the API server's own: whenever the provider's state moved, it plans every
Export, Collection, Grant and BoundNamespace claim with the kernel's planners and carries the
actions out as the cluster admin, as the real issuer (`kbshell.backend.issuer`) does with its
own credentials, through the same `kbcore.runtime.cluster.planned` and `carry_out`. The
decisions are the kernel's.

`SimReaper` is the reaper (`kbcore.service.reaper`) as `kbshell.backend.reaper` runs it: a
periodic pass over every Grant and Lease (the world schedules it, `World.start_reaper`), its
decisions kept in `decisions`, its plan carried out unless the mode is DryRun.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from kbcore import objects as o
from kbcore.actions import Plan
from kbcore.api.resources import BOUND_NAMESPACES, COLLECTIONS, EXPORTS, GRANTS, LEASES
from kbcore.errors import ApiError
from kbcore.runtime.cluster import carry_out, planned
from kbcore.service.catalog import CollectionView, ExportView, plan_collection, plan_export
from kbcore.service.claims import ClaimView, plan_claim
from kbcore.service.issuer import GrantView, grant_export, plan_grant
from kbcore.service.reaper import Reaped, ReapMode, ReapView, plan_reap
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
            exports, _ = self.api.list(EXPORTS)
            collections, _ = self.api.list(COLLECTIONS)
            grants, _ = self.api.list(GRANTS)
            claims, _ = self.api.list(BOUND_NAMESPACES)
        except ApiError:
            return []  # the service CRDs are not installed: no tenants here
        now, api = self.now(), self.api
        by_name = {o.name(e): e for e in exports}
        plans = [planned(api, plan_export, ExportView(e, {}, now)) for e in exports]
        plans += [planned(api, plan_collection, CollectionView(c, {}, now)) for c in collections]
        plans += [
            planned(api, plan_grant, GrantView(g, by_name.get(grant_export(g)), {}, now))
            for g in grants
        ]
        plans += [planned(api, plan_claim, ClaimView(c, {}, now)) for c in claims]
        return plans

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


class SimReaper:
    def __init__(
        self, server: APIServer, now: Callable[[], float], mode: ReapMode, ttl_seconds: float
    ) -> None:
        self.api = ServerAPI(server)
        self.now = now
        self.mode = mode
        self.ttl_seconds = ttl_seconds
        self.passes: list[Reaped] = []

    def tick(self) -> None:
        """One pass, as `kbshell.backend.reaper.reap_once`."""
        try:
            grants, _ = self.api.list(GRANTS, "", "")
            leases, _ = self.api.list(LEASES, "", "")
        except ApiError:
            return  # the service CRDs are not installed: nothing to reap
        now = self.now()
        reaped = plan_reap(ReapView(tuple(grants), tuple(leases), now, self.ttl_seconds, self.mode))
        self.passes.append(reaped)
        if self.mode is not ReapMode.DRY_RUN:
            with contextlib.suppress(ApiError):  # the next pass plans again from what is stored
                carry_out(self.api, reaped.plan, now)
