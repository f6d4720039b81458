"""The one-apply bundle (docs/design.md, "What it is") as `kubectl bind` writes it, and what it
checks first.

A user binds a provider with one apply of three objects: a Secret holding the provider
kubeconfig (in the konnector's namespace), a cluster-scoped Connection naming it, and a
ClusterBinding (every namespace) or a Binding (one namespace) listing the APIs. This module
decides everything about that bundle; `kbshell.bind` only reads files, asks the provider and
applies what comes out.

Rules:
 1. The kubeconfig is checked exactly as the konnector will check it (`kbcore.control.kubeconfig.
    sanitize`): a refusal is reported with the konnector's own reason, before anything is
    written. The context used is `--provider-context`, else the file's current one.
 2. The Secret carries only that one context, its cluster and its user, never the rest of the
    file (a personal kubeconfig holds credentials for other clusters that the consumer
    cluster has no business storing). Sanitizing what the Secret holds gives the same
    `Credentials` as sanitizing the file (a law the unit tests check).
 3. What may be bound is what the Connection will discover (`kbcore.control.connection.
    discover_exported`, schema source Auto): an API the provider does not export is refused
    with the list of those it does; a Binding (one namespace) cannot bind a cluster-scoped API
    (the binding kernel refuses it with `ClusterScopedAPI`).
 4. Names: the Connection defaults to the kubeconfig's cluster name made a DNS-1123 label,
    the Secret is `<connection>-kubeconfig`, the binding is named after the Connection. Every
    name must be a valid object name.
 5. The objects are exactly what `crds/` accepts (the unit tests validate them against the
    CRD schemas) and nothing more: no status, no finalizers (the konnector adds its own).
 6. A provider kubeconfig that reaches the consumer cluster itself (the same identity,
    `kbcore.identity.reaches_itself`) is refused before anything is applied, as the Connection
    would refuse it (`kbcore.control.connection` rule 6a).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import CONSUMER, PROVIDER
from kbcore.api import keys
from kbcore.control.connection import discover_exported
from kbcore.control.kubeconfig import DEFAULT_KEY, SecretProblem, sanitize
from kbcore.identity import resolve_identity
from kbcore.reads import Missing, Observed, Read
from kbcore.selectors import dns1123_label_errors, dns1123_subdomain_errors
from kbcore.sync.tenancy import Tenant

DEFAULT_KONNECTOR_NAMESPACE = "kube-bind"
_LABEL_MAX = 63


def name_problem(name: str, what: str, *, label: bool = False) -> str | None:
    """Why `name` cannot name a `what` (a DNS-1123 subdomain, or a label for namespaces), in
    the API server's own words, or None when it can."""
    errors = dns1123_label_errors(name) if label else dns1123_subdomain_errors(name)
    return f"{what} {name!r} is not a valid name: {'; '.join(errors)}" if errors else None


def as_label(text: str) -> str:
    """`text` made a DNS-1123 label: lowercase, runs of other characters become '-'."""
    label = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:_LABEL_MAX].strip("-")
    return label or "provider"


# -- rule 1 and 2: the kubeconfig ----------------------------------------------------------


def _named(entries: Any, name: str) -> Mapping[str, Any] | None:
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, Mapping) and e.get("name") == name:
            return e
    return None


def _names(entries: Any) -> list[str]:
    return [
        str(e["name"])
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, Mapping) and isinstance(e.get("name"), str)
    ]


def single_context(doc: Any, context: str | None = None) -> dict[str, Any] | SecretProblem:
    """The kubeconfig the Secret holds: only `context` (default: the current one) with its
    cluster and user, checked as the konnector checks it (rules 1 and 2)."""
    if not isinstance(doc, Mapping):
        return SecretProblem("kubeconfig is not a mapping")
    if context:
        if _named(doc.get("contexts"), context) is None:
            have = ", ".join(_names(doc.get("contexts"))) or "none"
            return SecretProblem(f"kubeconfig has no context {context!r} (it has: {have})")
        doc = {**doc, "current-context": context}
    creds = sanitize(doc)
    if isinstance(creds, SecretProblem):
        return creds
    contexts = doc.get("contexts")
    current = doc.get("current-context") or _names(contexts)[0]
    ctx = _named(contexts, current)
    assert ctx is not None  # sanitize found it
    body = ctx.get("context")
    body = body if isinstance(body, Mapping) else {}
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "contexts": [o.deepcopy(dict(ctx))],
        "clusters": [o.deepcopy(dict(_named(doc.get("clusters"), str(body.get("cluster"))) or {}))],
        "users": [],
    }
    user = _named(doc.get("users"), str(body.get("user"))) if body.get("user") else None
    if user is not None:
        out["users"] = [o.deepcopy(dict(user))]
    return out


def cluster_name(kubeconfig: Mapping[str, Any]) -> str:
    """The cluster name of a `single_context` kubeconfig (the default Connection name's source)."""
    clusters = _names(kubeconfig.get("clusters"))
    return clusters[0] if clusters else ""


# -- rule 3: what may be bound ---------------------------------------------------------------


@attrs.frozen(hash=False)
class Offer:
    """What the provider offers the credentials: its identity and what it exports."""

    cluster_uid: str
    source: str
    """The schema source the Connection will use (Auto resolved): CRD or OpenAPI."""
    apis: tuple[Mapping[str, Any], ...]
    """ExportedAPI entries (name, group, resource, scope, versions), sorted by name."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(a["name"]) for a in self.apis)


def _offer(observed: Observed) -> Offer:
    uid = resolve_identity(observed, PROVIDER)
    source, apis, _, _ = discover_exported(observed, "Auto")
    return Offer(uid, source, tuple(apis))


def provider_offer() -> Generator[Read, Any, Offer]:
    """Ask the provider who it is and what it exports, as the Connection will (identity, then
    discovery with schema source Auto). Yields the reads to answer (results as
    `kbcore.reads` describes); raises the `ApiError` of a failed one, or `IdentityUnknown`."""
    return answered(_offer)


def consumer_identity() -> Generator[Read, Any, str]:
    """Ask the consumer who it is, as the Connection will (`kbcore.identity`), so a provider
    kubeconfig that points back at it is refused before anything is applied (rule 6)."""
    return answered(lambda observed: resolve_identity(observed, CONSUMER))


def answered(decide: Callable[[Observed], Any]) -> Generator[Read, Any, Any]:
    """Run a decision that raises `Missing` until every read it needs has been answered."""
    observed: dict[Read, Any] = {}
    while True:
        try:
            return decide(observed)
        except Missing as m:
            for read in m.reads:
                observed[read] = yield read


@attrs.frozen
class NotBindable:
    """Why the requested APIs cannot be bound; `message` names the fix."""

    message: str


def choose_apis(
    offer: Offer, requested: Sequence[str], *, every: bool, namespaced: bool
) -> tuple[str, ...] | NotBindable:
    """The API names to bind (rule 3): `requested` (deduplicated, in order), or every exported
    one when `every`; a Binding (`namespaced`) gets only namespaced APIs."""
    exported = {str(a["name"]): a for a in offer.apis}
    offered = ", ".join(exported) or "none"
    if not exported:
        return NotBindable(
            "the provider exports no APIs: no CustomResourceDefinition is labelled "
            f"{keys.LABEL_EXPORTED}=true and OpenAPI discovery found none; on the provider, "
            f"run: kubectl label crd <name> {keys.LABEL_EXPORTED}=true"
        )
    if every:
        names = [n for n, a in exported.items() if not namespaced or a.get("scope") != "Cluster"]
        if not names:
            return NotBindable(
                f"every exported API is cluster-scoped ({offered}); a Binding binds one "
                "namespace only: leave out --namespace to create a ClusterBinding"
            )
        return tuple(names)
    chosen: list[str] = []
    for name in requested:
        if name not in chosen:
            chosen.append(name)
    missing = [n for n in chosen if n not in exported]
    if missing:
        return NotBindable(
            f"not exported by the provider: {', '.join(missing)}; it exports: {offered} "
            "(pass one of these to --api, or --all)"
        )
    scoped = [n for n in chosen if namespaced and exported[n].get("scope") == "Cluster"]
    if scoped:
        return NotBindable(
            f"cluster-scoped, so a Binding (one namespace) cannot bind it: {', '.join(scoped)}; "
            "leave out --namespace to create a ClusterBinding"
        )
    if not chosen:
        return NotBindable(f"no API chosen: pass --api NAME (one of: {offered}) or --all")
    return tuple(chosen)


# -- rules 4 and 5: the objects --------------------------------------------------------------


def secret_name(connection: str) -> str:
    return f"{connection}-kubeconfig"


@attrs.frozen
class BindingRef:
    """Which binding a bundle creates: a Binding in `namespace`, else a ClusterBinding."""

    name: str
    namespace: str = ""

    @property
    def kind(self) -> str:
        return "Binding" if self.namespace else "ClusterBinding"


def bundle(
    *,
    connection: str,
    kubeconfig_text: str,
    apis: Sequence[str],
    konnector_namespace: str = DEFAULT_KONNECTOR_NAMESPACE,
    binding: BindingRef | None = None,
    tenant: Tenant | None = None,
    binding_defaults: Mapping[str, Any] | None = None,
    connection_defaults: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The Secret, the Connection and the binding, in that order (any order works: rule 5).
    A provider's issuer passes the consumer's `tenant` boundary (`kbcore.sync.tenancy`) and an
    Export's defaults: spec fields of the binding (`conflictPolicy`, `relatedResources`) and of
    the Connection (`schema`), copied in as given (`kbcore.service.issuer` rule 8).

    `kubeconfig_text` is the `single_context` kubeconfig as YAML (the shell renders it: kbcore
    has no YAML writer)."""
    ref = binding or BindingRef(connection)
    secret = secret_name(connection)
    encoded = base64.b64encode(kubeconfig_text.encode()).decode()
    binding_meta: dict[str, Any] = {"name": ref.name}
    if ref.namespace:
        binding_meta["namespace"] = ref.namespace
    spec: dict[str, Any] = {
        "kubeconfigSecretRef": {
            "namespace": konnector_namespace,
            "name": secret,
            "key": DEFAULT_KEY,
        }
    }
    if tenant is not None:
        spec["tenant"] = {"namespace": tenant.namespace, "apis": list(tenant.apis)}
    spec.update(o.deepcopy(dict(connection_defaults or {})))
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": konnector_namespace},
            "type": "Opaque",
            "data": {DEFAULT_KEY: encoded},
        },
        {
            "apiVersion": keys.API_VERSION,
            "kind": "Connection",
            "metadata": {"name": connection},
            "spec": spec,
        },
        {
            "apiVersion": keys.API_VERSION,
            "kind": ref.kind,
            "metadata": binding_meta,
            "spec": {
                "connectionRef": {"name": connection},
                "apis": [{"name": n} for n in apis],
                **o.deepcopy(dict(binding_defaults or {})),
            },
        },
    ]


def bundle_problems(*, connection: str, konnector_namespace: str, binding: BindingRef) -> list[str]:
    """Every name in a bundle that the API server would refuse (rule 4)."""
    checks = [
        name_problem(connection, "Connection name"),
        name_problem(secret_name(connection), "Secret name"),
        name_problem(konnector_namespace, "konnector namespace", label=True),
        name_problem(binding.name, f"{binding.kind} name"),
    ]
    if binding.namespace:
        checks.append(name_problem(binding.namespace, "namespace", label=True))
    return [c for c in checks if c is not None]
