"""The issuer on a real provider: tenants' namespace claims (`kbcore.service.claims`), the
catalog's Ready and what each Grant mints (`kbcore.service.catalog`, `kbcore.service.issuer`).

Controllers (`kbshell.backend.controller`). `ClaimsIssuer` watches BoundNamespace claims,
Grants and Exports: a claim's change wakes it, a Grant's change wakes every claim in its home
namespace, an Export's (its relatedResources are in the claims' Roles) every claim of its Grants.
`GrantsIssuer` watches Exports, Collections, Grants and CRDs: an Export wakes itself, the
Collections listing it and its Grants; a CRD wakes the Exports listing it. Each reconcile asks
the kernel's planner (reads answered on the provider) and carries out the plan, as kbsim's
issuer does through the same `kbcore.runtime.cluster.planned` and `carry_out`: the shape both
share is `PlanningController`, each says only what it watches and which planner a key asks.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from kbcore import objects as o
from kbcore.actions import Plan
from kbcore.api.resources import BOUND_NAMESPACES, COLLECTIONS, CRDS, EXPORTS, GRANTS
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.cluster import carry_out, planned
from kbcore.service.catalog import (
    CollectionView,
    ExportView,
    collection_exports,
    export_apis,
    plan_collection,
    plan_export,
)
from kbcore.service.claims import ClaimView, plan_claim
from kbcore.service.issuer import GrantView, grant_export, plan_grant
from kbshell.backend.controller import Controller, Watch
from kbshell.client import KubeClient

K = TypeVar("K")


class PlanningController(ABC, Generic[K]):
    """A controller on the provider whose reconcile of a key is a kernel plan (`plan`, None
    when the key's object is gone) carried out on the provider; requeued when the plan asks."""

    def __init__(self, name: str, provider: KubeClient, watches: Sequence[Watch[K]]) -> None:
        self.provider = provider
        self.controller: Controller[K] = Controller(name, provider, watches, self.reconcile)

    @abstractmethod
    def plan(self, key: K, now: float) -> Plan | None:
        """The plan for `key` at `now`, its reads answered; None when its object is gone."""

    def reconcile(self, key: K) -> float | None:
        now = time.time()
        plan = self.plan(key, now)
        if plan is None:
            return None
        carry_out(self.provider, plan, now)
        return plan.requeue_after

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


class ClaimsIssuer(PlanningController[ObjectKey]):
    def __init__(self, provider: KubeClient) -> None:
        super().__init__(
            "issuer-claims",
            provider,
            [
                Watch(BOUND_NAMESPACES, lambda c: (o.key_of(c),)),
                Watch(GRANTS, self._claims_of),
                Watch(EXPORTS, self._claims_of_export),
            ],
        )

    def _claims_of(self, grant: o.Obj) -> Iterable[ObjectKey]:
        claims = self.controller.cache(BOUND_NAMESPACES).items()
        return [o.key_of(c) for c in claims if o.namespace(c) == o.name(grant)]

    def _claims_of_export(self, export: o.Obj) -> Iterable[ObjectKey]:
        """An Export's relatedResources are in the Roles of its Grants' claims."""
        homes = {o.name(g) for g in self.controller.cache(GRANTS).items()
                 if grant_export(g) == o.name(export)}  # fmt: skip
        claims = self.controller.cache(BOUND_NAMESPACES).items()
        return [o.key_of(c) for c in claims if o.namespace(c) in homes]

    def plan(self, key: ObjectKey, now: float) -> Plan | None:
        claim = self.controller.cache(BOUND_NAMESPACES).get(key)
        if claim is None:
            return None
        return planned(self.provider, plan_claim, ClaimView(claim, {}, now))


GrantsKey = tuple[str, str]
"""(resource, name) of an Export, Collection or Grant; all three are cluster-scoped."""


class GrantsIssuer(PlanningController[GrantsKey]):
    def __init__(self, provider: KubeClient) -> None:
        super().__init__(
            "issuer-grants",
            provider,
            [
                Watch(EXPORTS, self._of_export),
                Watch(COLLECTIONS, lambda c: ((COLLECTIONS.resource, o.name(c)),)),
                Watch(GRANTS, lambda g: ((GRANTS.resource, o.name(g)),)),
                Watch(CRDS, self._of_crd),
            ],
        )

    def _items(self, gvr: GVR) -> list[o.Obj]:
        return list(self.controller.cache(gvr).items())

    def _of_export(self, export: o.Obj) -> Iterable[GrantsKey]:
        name = o.name(export)
        yield EXPORTS.resource, name
        for c in self._items(COLLECTIONS):
            if name in collection_exports(c):
                yield COLLECTIONS.resource, o.name(c)
        for g in self._items(GRANTS):
            if grant_export(g) == name:
                yield GRANTS.resource, o.name(g)

    def _of_crd(self, crd: o.Obj) -> Iterable[GrantsKey]:
        return [(EXPORTS.resource, o.name(e)) for e in self._items(EXPORTS)
                if o.name(crd) in export_apis(e)]  # fmt: skip

    def plan(self, key: GrantsKey, now: float) -> Plan | None:
        resource, name = key
        cache = self.controller.cache
        obj = {r.resource: cache(r) for r in (EXPORTS, COLLECTIONS, GRANTS)}[resource].get(
            ObjectKey("", name)
        )
        if obj is None:
            return None
        if resource == EXPORTS.resource:
            return planned(self.provider, plan_export, ExportView(obj, {}, now))
        if resource == COLLECTIONS.resource:
            return planned(self.provider, plan_collection, CollectionView(obj, {}, now))
        export = cache(EXPORTS).get(ObjectKey("", grant_export(obj)))
        return planned(self.provider, plan_grant, GrantView(obj, export, {}, now))
