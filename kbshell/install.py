"""Install or upgrade the konnector in the consumer cluster (`kubectl bind --install-konnector`).

Contract, for the CLI that calls it:

    result = install_konnector(consumer, image=None, progress=print, bound_groups=["example.org"])

- `consumer`: a KubeClient as the user running `kubectl bind` (their kubeconfig, their rights).
- `image`: the konnector image reference to run; None keeps the chart's default
  (`ghcr.io/kube-bind/konnector-py:<appVersion>`). Only the Deployment's `konnector` container
  changes with it.
- `bound_groups`: the API groups of the APIs being bound (e.g. `example.org`): the konnector's
  ClusterRole is given the chart's `rbac.boundResourceGroups` rule for them, on top of the groups
  it already allows (none are ever taken away; rule 10). Without any, the konnector may touch
  no bound API's objects.
- `progress`: called with one human line per stage and per object written (no newline).
- What is installed: kbshell/data/konnector.yaml, the konnector chart rendered with default
  values, release and namespace `kube-bind` (tools/gen_konnector_manifests.py keeps it equal to
  the chart), plus the `kube-bind` Namespace when it is missing. The decisions (what is ours,
  what differs, order, refusals) are kbcore/views/install.py's, rules 1-10 at its top.
- Steps: GET each object under its rendered name, and LIST konnector Deployments in every
  namespace (another konnector would write alongside this one); a read refused raises
  `InstallForbidden` naming it. Plan; when the plan is refused, raise `InstallRefused` (each
  reason on its own line) having written nothing; when it needs writes, ask a
  SelfSubjectAccessReview for every permission the writes need and raise
  `InstallForbidden` naming each missing one, having written nothing; otherwise server-side
  apply each object in order (field manager `kubectl-bind`, forced: rule 3 proved it ours, and
  an edit made since with kubectl must not block an upgrade), then wait until every CRD of the
  rendering is Established (`crd_timeout` seconds, else `InstallError`).
- Returns `InstallResult`: the outcome (`install`, `upgrade` or `up-to-date`), the version
  found before and the one installed, and the objects written. An up-to-date cluster sees no
  write at all.
- Any other API failure is raised as kbcore.errors.ApiError as the client raised it; objects
  applied before it stay (running again resumes: what is already right is skipped).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import attrs
import yaml

from kbcore import errors
from kbcore.api.resources import CRDS
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.views import install as plan_install
from kbcore.views.install import InstallPlan, Permission, Version
from kbshell.client import KubeClient

Obj = dict[str, Any]

SSAR = GVR("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
MANIFESTS = "konnector.yaml"
CRD_TIMEOUT = 60.0
POLL = 0.2


class InstallError(Exception):
    """The konnector could not be installed; the message says why and what to do."""


class InstallRefused(InstallError):  # noqa: N818 - reads as what happened
    """A same-named object is not ours, or the request is invalid (kbcore/views/install.py
    rule 4); nothing was written."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        lines = "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(f"not installing the konnector; nothing was changed:\n{lines}")


class InstallForbidden(InstallError):  # noqa: N818 - reads as what happened
    """The caller lacks permissions the install needs; nothing was written."""

    def __init__(self, lacking: Sequence[str]) -> None:
        self.lacking = tuple(lacking)
        lines = "\n".join(f"  - {m}" for m in self.lacking)
        super().__init__(
            "not installing the konnector: you lack permissions it needs on the consumer "
            f"cluster (nothing was changed):\n{lines}\n"
            "Ask a cluster admin to install it, or to grant you these."
        )


@attrs.frozen
class InstallResult:
    outcome: str
    """`install`, `upgrade` or `up-to-date`."""
    previous: Version | None
    """The konnector found before (None: there was none)."""
    installed: Version | None
    written: tuple[str, ...] = ()
    """`Kind namespace/name` of every object applied, in order."""


def rendered_manifests() -> list[Obj]:
    """The chart's rendering shipped with the package (kbshell/data/konnector.yaml)."""
    text = resources.files("kbshell").joinpath("data", MANIFESTS).read_text()
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _observe(consumer: KubeClient, rendered: Sequence[Obj], image: str | None) -> list[Obj]:
    found: list[Obj] = []
    forbidden: list[str] = []
    for t in plan_install.targets(rendered, image):
        try:
            found.append(consumer.get(t.gvr, t.key))
        except ApiError as err:
            if err.reason == errors.NOT_FOUND:
                continue
            if err.reason == errors.FORBIDDEN:
                get = Permission("get", t.gvr.group, t.gvr.resource, t.key.namespace, t.key.name)
                forbidden.append(f"to read {t.label}: {get}")
                continue
            raise
    # Rule 4: a konnector installed under another name would write alongside this one.
    try:
        others, _ = consumer.list(
            plan_install.DEPLOYMENTS, label_selector=plan_install.KONNECTOR_SELECTOR
        )
    except ApiError as err:
        if err.reason != errors.FORBIDDEN:
            raise
        others = []
        forbidden.append("to find other konnectors: list deployments.apps in every namespace")
    if forbidden:
        raise InstallForbidden(forbidden)
    return found + others


def _allowed(consumer: KubeClient, permission: Permission) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": permission.attributes()},
    }
    answer = consumer.create(SSAR, review)
    return bool((answer.get("status") or {}).get("allowed"))


def check_permissions(consumer: KubeClient, plan: InstallPlan) -> None:
    """Rule 9: InstallForbidden naming every missing permission."""
    allowed = {p: _allowed(consumer, p) for p in plan_install.permissions(plan.needs)}
    lacking = plan_install.missing(plan.needs, allowed)
    if lacking:
        raise InstallForbidden(lacking)


def _established(consumer: KubeClient, name: str) -> bool:
    crd = consumer.get(CRDS, ObjectKey("", name))
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def wait_established(
    consumer: KubeClient, names: Sequence[str], timeout: float = CRD_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(names)
    while waiting:
        waiting = [n for n in waiting if not _established(consumer, n)]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise InstallError(
                f"CRDs not Established within {timeout:g}s: {', '.join(waiting)} "
                "(kubectl describe crd NAME shows why)"
            )
        time.sleep(POLL)


@attrs.frozen
class PreparedInstall:
    """What `prepare_install` read and decided, with the caller's permissions checked: carry
    it out with `carry_out_install`. Nothing has been written yet."""

    plan: InstallPlan
    """`outcome` is `install`, `upgrade` or `up-to-date` (a refused plan raised)."""
    installs: tuple[Obj, ...]
    """Every object the cluster holds once it is carried out (the rendering, image set)."""


def install_konnector(
    consumer: KubeClient,
    *,
    image: str | None,
    progress: Callable[[str], None],
    bound_groups: Sequence[str] = (),
    crd_timeout: float = CRD_TIMEOUT,
) -> InstallResult:
    """See the module's contract."""
    prepared = prepare_install(consumer, image=image, bound_groups=bound_groups, progress=progress)
    return carry_out_install(consumer, prepared, progress=progress, crd_timeout=crd_timeout)


def prepare_install(
    consumer: KubeClient,
    *,
    image: str | None,
    progress: Callable[[str], None],
    bound_groups: Sequence[str] = (),
) -> PreparedInstall:
    """The reads, the plan and the permission check of the contract, writing nothing: raises
    InstallRefused or InstallForbidden exactly as `install_konnector` does. `kubectl bind`
    prepares before it binds anything, so a consumer that cannot take the konnector is told
    so before the provider mints a Grant for it."""
    rendered = rendered_manifests()
    observed = _observe(consumer, rendered, image)
    plan = plan_install.plan(rendered, observed, image, bound_groups)
    if plan.outcome == "refused":
        raise InstallRefused(plan.refusals)
    if plan.outcome != "up-to-date":
        progress(
            "checking your permissions for "
            + ("the install" if plan.outcome == "install" else "the upgrade")
        )
        check_permissions(consumer, plan)
    installs = tuple(t.body for t in plan_install.targets(rendered, image, bound_groups))
    return PreparedInstall(plan, installs)


def carry_out_install(
    consumer: KubeClient,
    prepared: PreparedInstall,
    *,
    progress: Callable[[str], None],
    crd_timeout: float = CRD_TIMEOUT,
) -> InstallResult:
    """The writes of a prepared install, then the wait for the CRDs."""
    plan = prepared.plan
    if plan.outcome == "up-to-date":
        progress(f"konnector {plan.current} is up to date in namespace {plan_install.NAMESPACE}")
        wait_established(consumer, plan.crds, crd_timeout)
        return InstallResult("up-to-date", plan.current, plan.target)
    if plan.outcome == "install":
        progress(f"installing konnector {plan.target} in namespace {plan_install.NAMESPACE}")
    else:
        progress(f"upgrading konnector {plan.current} to {plan.target}")
    written: list[str] = []
    for step in plan.steps:
        t = step.target
        consumer.patch(t.gvr, t.key, t.body, "apply", plan_install.FIELD_MANAGER, force=True)
        what = "created" if step.create else "updated: " + ", ".join(step.changes[:3])
        if len(step.changes) > 3:
            what += f" and {len(step.changes) - 3} more"
        progress(f"  {t.label} {what}")
        written.append(t.label)
    progress(f"waiting for the CRDs to be Established: {', '.join(plan.crds)}")
    wait_established(consumer, plan.crds, crd_timeout)
    return InstallResult(plan.outcome, plan.current, plan.target, tuple(written))
