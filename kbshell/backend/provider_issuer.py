"""The real issuer behind the gateway (`kbshell.backend.issuing.Issuer`), over a provider cluster.

``kube-bind-backend --issuer=provider`` asks the provider's API server, as the backend's own
credentials, what the catalog holds and carries out the kernel's `plan_issue` for a bind; the
controllers of `kbshell.backend.issuer` (`GrantsIssuer`, `ClaimsIssuer`) and the provider's
token controller do the rest. Rules:

 1. `catalog(identity)`: the Ready Exports (`kbcore.service.catalog.visible_exports`) and the
    Ready Collections, each Collection showing the APIs of its listed Exports that are Ready.
    Every identity sees the same catalog (visibility per identity is not modelled yet).
 2. `bind` refuses a ``consumerClusterUID`` that is not a lowercase UUID (``Invalid``, 422)
    before anything is read or written, and an Export that does not exist, is being deleted or
    is not Ready (``UnknownExport``, 404) exactly alike.
 3. `bind` carries out `plan_issue` (the Grant of the boundary key: created once, re-issued
    when revoked, else left alone); a write that lost a race (409) is planned again from what
    is stored, a bounded number of times.
 4. It then re-reads the Grant and its token Secret with backoff until `issued_bundle` gives a
    bundle, at most ``timeout`` seconds; after that the refusal is ``NotIssued`` (409) with the
    Grant's own ``Ready`` message. The bundle's kubeconfig names the provider's EXTERNAL address
    and CA (given to the issuer), not the address the backend itself talks to.
 5. Re-binding the same identity, Export and cluster finds the same Grant, so the same home
    namespace: a new bundle carries the same (or, after a revocation, freshly minted) token.
 6. Any other failed request to the provider is raised as its `ApiError`: the gateway answers
    500 and logs it; nothing is handed out from a guess.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from kbcore import objects as o
from kbcore.api.iam import OIDCIdentity
from kbcore.api.resources import COLLECTIONS, EXPORTS, GRANTS, SECRETS
from kbcore.api.service_conditions import ServiceConditionType as T
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.runtime.cluster import ClusterAPI, carry_out, get_or_none, planned
from kbcore.service.catalog import collection_exports, export_apis, export_ready, visible_exports
from kbcore.service.issuer import (
    TOKEN_SECRET,
    IssueView,
    NotIssued,
    grant_for,
    issued_bundle,
    plan_issue,
)
from kbcore.status import condition_is_true
from kbcore.views import bundle as kb
from kbshell.backend.issuing import BindRefused, CatalogEntry, Identity

LOWER_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEFAULT_TIMEOUT = 30.0
ISSUE_ATTEMPTS = 3
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0


def _spec(obj: o.Obj) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _text(spec: dict[str, Any], field: str) -> str:
    value = spec.get(field)
    return value if isinstance(value, str) else ""


def _entry(kind: str, obj: o.Obj, apis: tuple[str, ...]) -> CatalogEntry:
    spec = _spec(obj)
    return CatalogEntry(
        kind="Export" if kind == "Export" else "Collection",
        name=o.name(obj),
        title=_text(spec, "title"),
        description=_text(spec, "description"),
        docs_url=_text(spec, "docsURL"),
        icon_url=_text(spec, "iconURL"),
        apis=apis,
    )


def _ready_message(grant: o.Obj | None) -> str:
    if grant is None:
        return "the Grant does not exist"
    status = grant.get("status")
    conds = status.get("conditions") if isinstance(status, dict) else None
    for cond in conds if isinstance(conds, list) else []:
        if isinstance(cond, dict) and cond.get("type") == T.READY:
            return f"{cond.get('reason', '')}: {cond.get('message', '')}"
    return "the issuer has not looked at the Grant yet"


class ProviderIssuer:
    """An `Issuer` minting a Grant per boundary on a real provider (`provider` is the backend's
    own client; `server` and `ca_pem` are what consumers reach the provider at)."""

    def __init__(
        self,
        provider: ClusterAPI,
        *,
        server: str,
        ca_pem: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        self.provider = provider
        self.server = server
        self.ca_pem = ca_pem
        self.timeout = timeout
        self._clock = clock
        self._wall = wall
        self._wait = wait or threading.Event().wait

    # -- rule 1 ---------------------------------------------------------------------------

    def catalog(self, identity: Identity) -> list[CatalogEntry]:
        exports = visible_exports(sorted(self.provider.list(EXPORTS, "", "")[0], key=o.name))
        by_name = {o.name(e): e for e in exports}
        entries = [_entry("Export", e, export_apis(e)) for e in exports]
        for c in sorted(self.provider.list(COLLECTIONS, "", "")[0], key=o.name):
            if o.is_deleting(c) or not condition_is_true(c, T.READY):
                continue
            listed = [by_name[n] for n in collection_exports(c) if n in by_name]
            apis = tuple(sorted({a for e in listed for a in export_apis(e)}))
            entries.append(_entry("Collection", c, apis))
        return entries

    # -- rules 2 to 5 ---------------------------------------------------------------------

    def bind(
        self, identity: Identity, export: str, consumer_cluster_uid: str, *, namespace: str = ""
    ) -> list[dict[str, Any]]:
        if not LOWER_UUID.fullmatch(consumer_cluster_uid):
            raise BindRefused(
                "Invalid",
                "consumerClusterUID must be a lowercase UUID (the consumer's kube-system "
                "namespace UID, e.g. 0b8c4d1e-1f2a-4b3c-9d4e-5f6a7b8c9d0e)",
            )
        obj = get_or_none(self.provider, EXPORTS, ObjectKey("", export))
        if obj is None or not export_ready(obj):
            raise BindRefused("UnknownExport", f"there is no export {export!r} to bind")
        who = OIDCIdentity(issuer=identity.issuer, subject=identity.subject, email=identity.email)
        self._issue(who, export, consumer_cluster_uid)
        return self._await_bundle(
            o.name(grant_for(who, export, consumer_cluster_uid)), obj, namespace
        )

    def _issue(self, who: OIDCIdentity, export: str, uid: str) -> None:
        """Rule 3: `plan_issue` carried out; a conflict is planned again."""
        for attempt in range(ISSUE_ATTEMPTS):
            now = self._wall()
            plan = planned(self.provider, plan_issue, IssueView(who, export, uid, {}, now))
            try:
                carry_out(self.provider, plan, now)
                return
            except ApiError as err:
                if err.code != 409 or attempt == ISSUE_ATTEMPTS - 1:
                    raise

    def _await_bundle(self, name: str, export: o.Obj, namespace: str = "") -> list[dict[str, Any]]:
        """Rule 4: re-read with backoff until the Grant is issued, or refuse at the timeout."""
        deadline = self._clock() + self.timeout
        backoff = FIRST_BACKOFF
        while True:
            grant = get_or_none(self.provider, GRANTS, ObjectKey("", name))
            result: list[dict[str, Any]] | NotIssued = NotIssued("the Grant does not exist")
            if grant is not None:
                status = grant.get("status")
                status = status if isinstance(status, dict) else {}
                secret_name = status.get("tokenSecretName") or TOKEN_SECRET
                secret = get_or_none(self.provider, SECRETS, ObjectKey(name, str(secret_name)))
                result = issued_bundle(
                    grant, export, secret, self.server, self.ca_pem, connection=o.name(export),
                    binding=kb.BindingRef(o.name(export), namespace),
                )  # fmt: skip
            if not isinstance(result, NotIssued):
                return result
            left = deadline - self._clock()
            if left <= 0:
                raise BindRefused(
                    "NotIssued",
                    f"the credentials of Grant {name} were not issued within "
                    f"{self.timeout:g}s ({_ready_message(grant)}); try again later",
                )
            self._wait(min(backoff, left))
            backoff = min(backoff * 2, MAX_BACKOFF)
