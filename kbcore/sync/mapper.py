"""The Mapper seam: where a consumer object lives on the provider.

A Mapper maps keys only; it cannot change scope, so a namespaced object stays namespaced and a
cluster-scoped one stays cluster-scoped (scope conversion is out of scope by
design: docs/design.md, "Decisions").

Law (property-tested): for every gvr and key, `to_consumer(gvr, to_provider(gvr, key)) == key`.
Core ships `IDENTITY`; `NamespacePrefix` exists to prove the seam round-trips with a non-trivial
mapping, as upstream's mapper test does.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from kbcore.objects import GVR, ObjectKey


class Mapper(Protocol):
    def to_provider(self, gvr: GVR, key: ObjectKey) -> ObjectKey: ...

    def to_consumer(self, gvr: GVR, key: ObjectKey) -> ObjectKey | None:
        """The consumer key, or None when the provider key is not one this mapper produces."""
        ...


@attrs.frozen
class Identity:
    """Same namespace and name on both sides (the only mapper upstream ships)."""

    def to_provider(self, gvr: GVR, key: ObjectKey) -> ObjectKey:
        return key

    def to_consumer(self, gvr: GVR, key: ObjectKey) -> ObjectKey | None:
        return key


IDENTITY = Identity()


@attrs.frozen
class NamespacePrefix:
    """Consumer namespace `team-a` lives in provider namespace `<prefix>team-a`.

    Cluster-scoped keys are left alone (a mapper cannot change scope).
    """

    prefix: str

    def to_provider(self, gvr: GVR, key: ObjectKey) -> ObjectKey:
        if not key.namespace:
            return key
        return ObjectKey(self.prefix + key.namespace, key.name)

    def to_consumer(self, gvr: GVR, key: ObjectKey) -> ObjectKey | None:
        if not key.namespace:
            return key
        if not key.namespace.startswith(self.prefix) or key.namespace == self.prefix:
            return None
        return ObjectKey(key.namespace[len(self.prefix) :], key.name)
