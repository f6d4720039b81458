"""The seam between the gateway and whatever mints bundles: an :class:`Issuer`.

The gateway (``kbshell.backend.gateway``) authenticates a caller to an :class:`Identity` and asks
an Issuer two things: which offerings that identity may see (:meth:`Issuer.catalog`), and the
bundle for one of them (:meth:`Issuer.bind`). It knows nothing about Grants, ServiceAccounts or
RBAC: that is the issuer's business. An issuer says no with :class:`BindRefused`, whose
``reason`` the gateway maps to an HTTP status (:data:`REFUSAL_STATUS`) and whose ``message`` it
shows the caller.

Rules:

1. An Identity is the OIDC issuer and subject (the pair is the stable key; ``email`` is for
   people and logs). Two identities are the same caller exactly when issuer and subject are.
2. ``catalog(identity)`` lists only what that identity may see; ``bind`` refuses (reason
   ``UnknownExport``) an export the identity may not see exactly as one that does not exist, so
   a refusal does not tell a caller what other tenants are offered.
3. ``bind`` returns the bundle objects (kubeconfig Secret, Connection, binding) as plain dicts,
   in apply order; the gateway hands them out once and keeps no copy it could read back.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import attrs


@attrs.frozen
class Identity:
    """A caller, as the OIDC provider vouched for it (a verified ID token)."""

    issuer: str
    subject: str
    email: str = ""
    groups: tuple[str, ...] = ()
    """The ID token's ``groups`` claim (for the allowed set, ``kbshell.backend.admission``)."""

    @property
    def key(self) -> str:
        """Rule 1: the stable key of the caller (issuer and subject), e.g. for rate limits."""
        return f"{self.issuer}#{self.subject}"


@attrs.frozen
class CatalogEntry:
    """One offering: an ``Export`` (binds some APIs) or a ``Collection`` (groups Exports)."""

    kind: Literal["Export", "Collection"]
    name: str
    title: str = ""
    description: str = ""
    docs_url: str = ""
    icon_url: str = ""
    apis: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "docsURL": self.docs_url,
            "iconURL": self.icon_url,
            "apis": list(self.apis),
        }


class BindRefused(Exception):  # noqa: N818 -- the name the issuer seam is specified with
    """The issuer will not bind: ``reason`` is a CamelCase word, ``message`` is for the caller."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


REFUSAL_STATUS = {"UnknownExport": 404, "Forbidden": 403, "Invalid": 422}
"""The HTTP status of each refusal reason the gateway knows; any other reason is 409 Conflict."""


def refusal_status(refusal: BindRefused) -> int:
    return REFUSAL_STATUS.get(refusal.reason, 409)


class Issuer(Protocol):
    def catalog(self, identity: Identity) -> list[CatalogEntry]:
        """Rule 2: the Exports and Collections ``identity`` may see."""
        ...

    def bind(
        self, identity: Identity, export: str, consumer_cluster_uid: str, *, namespace: str = ""
    ) -> list[dict[str, Any]]:
        """Rule 3: the bundle for ``export`` in the consumer cluster ``consumer_cluster_uid``,
        minted (or reused) for ``identity``, with a ClusterBinding, or a Binding in consumer
        namespace ``namespace``; raises :class:`BindRefused`."""
        ...
