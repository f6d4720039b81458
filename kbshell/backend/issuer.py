"""The issuer on a real provider: answers tenants' namespace claims (`kbcore.service.claims`).

A controller (`kbshell.backend.controller`) watching BoundNamespace claims and Grants: a claim's
change wakes it, a Grant's change wakes every claim in its home namespace. Each reconcile asks
`plan_claim` (reads answered on the provider) and carries out the plan, as kbsim's issuer does
through the same `kbcore.runtime.cluster.planned` and `carry_out`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kbcore import objects as o
from kbcore.api.resources import BOUND_NAMESPACES, GRANTS
from kbcore.objects import ObjectKey
from kbcore.runtime.cluster import carry_out, planned
from kbcore.service.claims import ClaimView, plan_claim
from kbshell.backend.controller import Controller, Watch
from kbshell.client import KubeClient


class ClaimsIssuer:
    def __init__(self, provider: KubeClient) -> None:
        self.provider = provider
        self.controller: Controller[ObjectKey] = Controller(
            "issuer-claims",
            provider,
            [Watch(BOUND_NAMESPACES, lambda c: (o.key_of(c),)), Watch(GRANTS, self._claims_of)],
            self.reconcile,
        )

    def _claims_of(self, grant: o.Obj) -> Iterable[ObjectKey]:
        claims = self.controller.cache(BOUND_NAMESPACES).items()
        return [o.key_of(c) for c in claims if o.namespace(c) == o.name(grant)]

    def reconcile(self, key: ObjectKey) -> float | None:
        claim = self.controller.cache(BOUND_NAMESPACES).get(key)
        if claim is None:
            return None
        now = time.time()
        plan = planned(self.provider, plan_claim, ClaimView(claim, {}, now))
        carry_out(self.provider, plan, now)
        return plan.requeue_after

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
