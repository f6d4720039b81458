"""What `kubectl bind` checks before it applies a bundle, and the verdict: apply, or stop.

The shell reads what `consumer_reads`-style facts ask for (which CRDs the consumer serves, the
konnector's namespace and Deployment) and asks the provider, as the bundle's own credentials,
one SelfSubjectAccessReview per `AccessCheck`; `verdict` then decides. Nothing is applied
unless the verdict is `ok`, so a refused preflight leaves both clusters as they were.

Rules:

1. The consumer must serve the `core.kube-bind.io` CRDs of the bundle's kinds (the
   Connection's, and the ClusterBinding's or Binding's): a missing one blocks (the konnector's
   chart installs them; `kubectl apply -f crds/` does too).
2. The namespace of the bundle's kubeconfig Secret (the konnector's) and a Binding's namespace
   must exist: a missing one blocks (the apply would fail half-way).
3. The konnector Deployment (in that namespace, labelled `app.kubernetes.io/name: konnector` as
   the chart labels it whatever the release's name, else named `konnector`) is looked for:
   absent, it is a
   warning, not a block (a bundle may be applied before the konnector, as GitOps does; it waits
   for it), saying how to install it; present, its version (the `app.kubernetes.io/version`
   label, else the image tag) is reported, and one with no available replica is a warning.
4. On the provider, every rule the konnector will need (`kbcore.views.rbac`: `tenant_rules` for
   a tenant's bundle, whose Connection carries `spec.tenant`; else `provider_rules` for the
   binding's APIs, scope and related resources) is one check per verb, per name when the rule
   is by name, in the rule's namespace. Namespaces a tenant is granted later (`<home>-X`) do not
   exist yet and are the issuer's to grant, so only the rules of `tenant_rules` without
   granted namespaces are checked.
5. Every check the provider denies blocks, each named with the rule's reason; a check that
   could not be asked (the provider unreachable) blocks too, with the error.
6. The verdict is `ok` exactly when nothing blocks; warnings never block.
7. With `--install-konnector`, what the installer will apply before the bundle counts as
   there (`installing`): its CRDs, its namespace and its konnector Deployment, reported as
   the version to be installed. Its own refusals and missing permissions are the installer's
   (`kbcore.views.install`), asked before anything is bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CONNECTIONS
from kbcore.objects import GVR
from kbcore.sync.coverage import api_names
from kbcore.sync.tenancy import Tenant, tenant_of
from kbcore.views import rbac

KONNECTOR_DEPLOYMENT = "konnector"
NAME_LABEL = "app.kubernetes.io/name"
VERSION_LABEL = "app.kubernetes.io/version"
BLOCKS, WARNS, INFO = "blocks", "warns", "info"


def crd_name(gvr: GVR) -> str:
    return f"{gvr.resource}.{gvr.group}"


@attrs.frozen
class AccessCheck:
    """One SelfSubjectAccessReview: may the bundle's credentials `verb` this?"""

    group: str
    resource: str
    verb: str
    name: str = ""
    namespace: str = ""
    why: str = ""

    def describe(self) -> str:
        target = f"{self.resource}.{self.group}" if self.group else self.resource
        where = f" in namespace {self.namespace}" if self.namespace else ""
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {target}{named}{where}"

    def review(self) -> dict[str, Any]:
        """The SelfSubjectAccessReview body the shell POSTs."""
        attributes: dict[str, Any] = {
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
        }
        if self.name:
            attributes["name"] = self.name
        if self.namespace:
            attributes["namespace"] = self.namespace
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }


@attrs.frozen
class Finding:
    level: str
    """`BLOCKS`, `WARNS` or `INFO`."""
    what: str
    fix: str = ""


@attrs.frozen
class Verdict:
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """Rule 6."""
        return not any(f.level == BLOCKS for f in self.findings)

    @property
    def blockers(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == BLOCKS)


@attrs.frozen
class ConsumerFacts:
    """What the shell read on the consumer."""

    crds: frozenset[str]
    """Names of the CRDs the consumer serves (of those `consumer_crds` asks about)."""
    namespace_exists: bool
    deployment: Mapping[str, Any] | None
    """The konnector Deployment, None when there is none."""
    binding_namespace_exists: bool = True
    """The bundle's Binding's namespace exists (True for a ClusterBinding)."""
    installing: bool = False
    """Rule 7: `deployment` is the one the installer is about to apply."""


def installing(
    facts: ConsumerFacts, installs: Iterable[Mapping[str, Any]], namespace: str
) -> ConsumerFacts:
    """Rule 7: the consumer as it will be once the installer's `installs` are applied."""
    installs = list(installs)
    crds = frozenset(o.name(x) for x in installs if x.get("kind") == "CustomResourceDefinition")
    namespaces = {o.name(x) for x in installs if x.get("kind") == "Namespace"}
    deployment = find_konnector(
        x for x in installs if x.get("kind") == "Deployment" and o.namespace(x) == namespace
    )
    return attrs.evolve(
        facts,
        crds=facts.crds | crds,
        namespace_exists=facts.namespace_exists or namespace in namespaces,
        deployment=deployment if deployment is not None else facts.deployment,
        installing=deployment is not None,
    )


def _one(bundle: Sequence[Mapping[str, Any]], kinds: Iterable[str]) -> Mapping[str, Any] | None:
    wanted = set(kinds)
    return next((d for d in bundle if d.get("kind") in wanted), None)


def binding_namespace(bundle: Sequence[Mapping[str, Any]]) -> str:
    """The Binding's namespace; "" for a ClusterBinding."""
    binding = _one(bundle, ["Binding"])
    return o.namespace(binding) if binding is not None else ""


def secret_namespace(bundle: Sequence[Mapping[str, Any]]) -> str:
    secret = _one(bundle, ["Secret"])
    return o.namespace(secret) if secret is not None else ""


def consumer_crds(bundle: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Rule 1: the CRDs the bundle's kinds need on the consumer."""
    kinds = {d.get("kind") for d in bundle}
    gvrs = [CONNECTIONS] if "Connection" in kinds else []
    gvrs += [CLUSTERBINDINGS] if "ClusterBinding" in kinds else []
    gvrs += [BINDINGS] if "Binding" in kinds else []
    return tuple(crd_name(g) for g in gvrs)


def _related(binding: Mapping[str, Any]) -> tuple[rbac.RelatedAccess, ...]:
    found = set()
    for entry in o.list_at(binding.get("spec") or {}, "relatedResources"):
        if not isinstance(entry, Mapping):
            continue
        try:
            found.add(rbac.RelatedAccess(str(entry.get("resource")), str(entry.get("direction"))))
        except ValueError:
            continue  # the CRD refuses it on apply; nothing the konnector would do with it
    return tuple(sorted(found, key=lambda r: (r.resource, r.direction)))


def provider_rules(bundle: Sequence[Mapping[str, Any]]) -> tuple[rbac.Rule, ...]:
    """Rule 4: the rules the konnector needs on the provider for this bundle."""
    connection = _one(bundle, ["Connection"]) or {}
    binding = _one(bundle, ["ClusterBinding", "Binding"]) or {}
    tenant = tenant_of(connection)
    if isinstance(tenant, Tenant):
        return rbac.tenant_rules(tenant)
    namespace = o.namespace(binding) if binding.get("kind") == "Binding" else ""
    return rbac.provider_rules(
        list(api_names(binding)), binding_namespace=namespace, related=_related(binding)
    )


def access_checks(bundle: Sequence[Mapping[str, Any]]) -> tuple[AccessCheck, ...]:
    """Rule 4: one check per verb (and name) of every rule, in a stable order, no duplicates."""
    checks: dict[AccessCheck, None] = {}
    for rule in provider_rules(bundle):
        for verb in rule.verbs:
            for name in rule.names or ("",):
                checks[
                    AccessCheck(rule.group, rule.resource, verb, name, rule.namespace, rule.why)
                ] = None
    return tuple(checks)


def find_konnector(deployments: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Rule 3: the konnector among the Deployments of its namespace (the first by name)."""
    ordered = sorted(deployments, key=o.name)
    labelled = [d for d in ordered if o.labels_of(d).get(NAME_LABEL) == KONNECTOR_DEPLOYMENT]
    named = [d for d in ordered if o.name(d) == KONNECTOR_DEPLOYMENT]
    found = labelled or named
    return found[0] if found else None


def deployment_version(deployment: Mapping[str, Any]) -> str:
    """Rule 3: the chart's version label, else the first container's image tag, else "?"."""
    label = o.labels_of(deployment).get(VERSION_LABEL)
    if label:
        return str(label)
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = o.list_at(pod, "containers")
    first = containers[0] if containers and isinstance(containers[0], Mapping) else {}
    image = first.get("image", "")
    tail = str(image).rsplit("/", 1)[-1]
    return tail.split(":", 1)[1] if ":" in tail else "?"


def verdict(
    bundle: Sequence[Mapping[str, Any]],
    consumer: ConsumerFacts,
    access: Mapping[AccessCheck, bool | str] | None,
) -> Verdict:
    """Rules 1 to 6. `access` answers each of `access_checks(bundle)`: True (allowed), False
    (denied) or an error text (could not be asked); a check missing from it is not asked yet
    and blocks like an error. None: the provider is not checked (yet), only the consumer."""
    findings: list[Finding] = []
    missing = [n for n in consumer_crds(bundle) if n not in consumer.crds]
    if missing:
        findings.append(
            Finding(
                BLOCKS,
                f"the consumer does not serve the CRDs {', '.join(missing)}",
                "install the konnector (its Helm chart installs the CRDs), or "
                "kubectl apply -f crds/",
            )
        )
    namespace = secret_namespace(bundle)
    if namespace and not consumer.namespace_exists:
        findings.append(
            Finding(
                BLOCKS,
                f"the konnector's namespace {namespace} does not exist on the consumer",
                f"install the konnector there, or kubectl create namespace {namespace}",
            )
        )
    binding = _one(bundle, ["Binding"])
    if binding is not None and not consumer.binding_namespace_exists:
        findings.append(
            Finding(
                BLOCKS,
                f"the Binding's namespace {o.namespace(binding)} does not exist on the consumer",
                f"kubectl create namespace {o.namespace(binding)}",
            )
        )
    if consumer.deployment is None:
        findings.append(
            Finding(
                WARNS,
                f"no konnector Deployment in {namespace} on the consumer: "
                "the binding stays unready until a konnector runs",
                "install the konnector (helm install konnector charts/konnector -n "
                f"{namespace}), or run it yourself with --kubeconfig pointing at this cluster",
            )
        )
    elif consumer.installing:
        version = deployment_version(consumer.deployment)
        findings.append(Finding(INFO, f"konnector {version} will be installed in {namespace}"))
    else:
        version = deployment_version(consumer.deployment)
        available = (consumer.deployment.get("status") or {}).get("availableReplicas") or 0
        if available:
            findings.append(Finding(INFO, f"konnector {version} is running in {namespace}"))
        else:
            findings.append(
                Finding(
                    WARNS,
                    f"the konnector Deployment ({version}) in {namespace} has no available replica",
                    f"kubectl -n {namespace} describe deployment {KONNECTOR_DEPLOYMENT}",
                )
            )
    if access is None:
        return Verdict(tuple(findings))
    denied, failed = [], []
    checks = access_checks(bundle)
    for check in checks:
        answer = access.get(check, "not asked")
        if answer is True:
            continue
        if answer is False:
            denied.append(f"{check.describe()} ({check.why})")
        else:
            failed.append(f"{check.describe()}: {answer}")
    if denied:
        findings.append(
            Finding(
                BLOCKS,
                "the provider denies the bundle's credentials what the konnector needs: "
                + "; ".join(denied),
                "ask the provider's administrator to grant it (for a gateway's bundle: the issuer "
                "mints it; bind again once its Grant is Ready)",
            )
        )
    if not denied and not failed:
        findings.append(
            Finding(INFO, f"the provider allows all {len(checks)} requests the konnector makes")
        )
    if failed:
        findings.append(
            Finding(
                BLOCKS,
                "the provider could not be asked what the credentials may do: " + "; ".join(failed),
                "check that the provider's API server is reachable from here",
            )
        )
    return Verdict(tuple(findings))
