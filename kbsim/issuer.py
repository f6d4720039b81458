"""The provider's issuer in kbsim: answers tenants' namespace claims (`kbcore.service.claims`).

A controller beside the API server's own: whenever the provider's state moved, it plans every
BoundNamespace claim with the kernel's `plan_claim` and carries the actions out as the cluster
admin, as the real issuer does with its own credentials. The decisions are the kernel's; this
only reads and writes.
"""

from __future__ import annotations

from collections.abc import Callable

from kbcore import objects as o
from kbcore.actions import Plan
from kbcore.api.resources import BOUND_NAMESPACES, GRANTS, NAMESPACES, ROLE_BINDINGS, ROLES
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.runtime.cluster import get_or_none, perform
from kbcore.runtime.requests import to_request
from kbcore.service.claims import ROLE_NAME, ClaimView, plan_claim
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
        plans = []
        for claim in claims:
            home, name = o.namespace(claim), o.name(claim)
            target = f"{home}-{name}"
            view = ClaimView(
                claim=claim,
                grant=get_or_none(self.api, GRANTS, ObjectKey("", home)),
                namespace=get_or_none(self.api, NAMESPACES, ObjectKey("", target)),
                role=get_or_none(self.api, ROLES, ObjectKey(target, ROLE_NAME)),
                role_binding=get_or_none(self.api, ROLE_BINDINGS, ObjectKey(target, ROLE_NAME)),
                now=self.now(),
            )
            plans.append(plan_claim(view))
        return plans

    def pending_work(self) -> bool:
        """Whether `tick()` would write (memoized per resourceVersion, as the controllers are)."""
        rv = self.server.current_resource_version()
        if self._pending is None or self._pending[0] != rv:
            self._pending = (rv, any(p.actions for p in self._plans()))
        return self._pending[1]

    def tick(self) -> None:
        for plan in self._plans():
            for action in plan.actions:
                request = to_request(action, self.now())
                if request is None:
                    continue
                try:
                    perform(self.api, request)
                except ApiError:
                    break  # the next tick plans again from what is stored
