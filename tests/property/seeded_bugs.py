"""Deliberately broken kernels. The property suite must catch every one of them.

Each mutant wraps the real `plan_instance` and breaks exactly one rule, the way a plausible bug
would; `test_seeded_bugs.py` runs the convergence machine with each and expects a failure.
`KERNEL_PATCHES` break a control-plane rule instead, by replacing one kernel function for the
run (the control-plane planners have no seam of their own).

`RELATED_SEEDED_BUGS` break the trust boundary of related resources instead (`kbcore.control.related`
T1-T6): each replaces one or two of its rule functions (the way a plausible regression would
loosen a check) while `test_seeded_bugs.py` runs the related-resources machine; the
`related-within-trust-boundary` invariant must name the rule that was broken.

`SCHEMA_SEEDED_BUGS` break the schema gate, the hash bookkeeping, per-API sync or the shell's
addressing instead (patched in for the run); the schema-change machine must catch each.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Callable, Collection, Iterator
from typing import Any

import attrs
from hypothesis import HealthCheck, Phase, settings

from kbcore import objects as o
from kbcore.actions import Apply, Delete, Plan, RemoveFinalizer, RequeueAfter, UpdateStatus
from kbcore.api import keys
from kbcore.api.types import ConflictPolicy
from kbcore.sync.instance import (
    InstanceView,
    Ownership,
    classify,
    desired_provider_body,
    fresh_read,
    plan_instance,
    provider_copy,
    provider_ref,
)

Planner = Callable[[InstanceView], Plan]


def _with_copy(view: InstanceView, p: o.Obj | None) -> InstanceView:
    """`view` with the provider copy replaced by `p`, cached and, if it was read, fresh."""
    read = fresh_read(view)
    observed = dict(view.observed)
    if read is not None and read in observed:
        observed[read] = p
    return attrs.evolve(view, provider=p, observed=observed)


def delete_by_name_without_uid_check(view: InstanceView) -> Plan:
    """On consumer deletion, delete whatever provider object has the name, ours or not."""
    c, p = view.consumer, provider_copy(view)
    if (
        c is not None
        and o.is_deleting(c)
        and keys.FINALIZER_SYNCER in o.finalizers(c)
        and p is not None
        and not o.is_deleting(p)
    ):
        pref = provider_ref(view.gvr, o.key_of(c), view.mapper)
        return Plan((Delete(pref, ""), RequeueAfter(2.0)), why="bug: delete by name")
    return plan_instance(view)


def finalizer_removed_before_copy_is_gone(view: InstanceView) -> Plan:
    """Release the consumer finalizer first, then delete the provider copy."""
    plan = plan_instance(view)
    deletes = [a for a in plan.actions if isinstance(a, Delete)]
    if not deletes or view.consumer is None:
        return plan
    c = view.consumer
    cref = attrs.evolve(deletes[0].target, cluster="consumer")
    rest = tuple(f for f in o.finalizers(c) if f != keys.FINALIZER_SYNCER)
    release = RemoveFinalizer(cref, keys.FINALIZER_SYNCER, o.resource_version(c), rest)
    return Plan((release, *plan.actions), why="bug: finalizer released early")


def noop_writes(view: InstanceView) -> Plan:
    """Re-apply the provider copy on every pass even when nothing changed."""
    plan = plan_instance(view)
    c, p = view.consumer, provider_copy(view)
    if c is None or p is None or o.is_deleting(c) or not view.coverage.bound:
        return plan
    if any(isinstance(a, Apply) for a in plan.actions):
        return plan
    if classify(p, view.local_cluster_uid, o.uid(c)) is not Ownership.OURS:
        return plan
    pref = provider_ref(view.gvr, o.key_of(c), view.mapper)
    body = desired_provider_body(c, pref.key, view.local_cluster_uid)
    return Plan((*plan.actions, Apply(pref, body, keys.FIELD_MANAGER)), why="bug: no-op apply")


def adopt_foreign_owned(view: InstanceView) -> Plan:
    """Adopt any existing provider object, even one carrying another consumer's markers."""
    c, p = view.consumer, provider_copy(view)
    if c is None or p is None or o.is_deleting(c):
        return plan_instance(view)
    if classify(p, view.local_cluster_uid, o.uid(c)) is Ownership.OWNED_BY_ANOTHER:
        stripped = o.deepcopy(p)
        ann = stripped.get("metadata", {}).get("annotations", {})
        ann.pop(keys.ANNOTATION_CONSUMER_CLUSTER_UID, None)
        ann.pop(keys.ANNOTATION_CONSUMER_OBJECT_UID, None)
        view = attrs.evolve(
            _with_copy(view, stripped),
            coverage=attrs.evolve(view.coverage, conflict_policy=ConflictPolicy.ADOPT),
        )
    return plan_instance(view)


def status_dropped(view: InstanceView) -> Plan:
    """Never mirror status back to the consumer."""
    plan = plan_instance(view)
    kept = tuple(a for a in plan.actions if not isinstance(a, UpdateStatus))
    return attrs.evolve(plan, actions=kept)


def deletion_timestamp_ignored(view: InstanceView) -> Plan:
    """Treat a deleting consumer object as live: keep syncing, never release the finalizer."""
    c = view.consumer
    if c is not None and o.is_deleting(c):
        live = o.deepcopy(c)
        live["metadata"].pop("deletionTimestamp", None)
        view = attrs.evolve(view, consumer=live)
    return plan_instance(view)


def recursive_copy(view: InstanceView) -> Plan:
    """Copy the objects with Python's recursive `copy.deepcopy` before planning (what
    `kbcore.objects.deepcopy` was): a status nested past the recursion limit raises."""
    c, p = view.consumer, view.provider
    view = attrs.evolve(
        view,
        consumer=copy.deepcopy(c),
        provider=copy.deepcopy(p),
        observed=copy.deepcopy(dict(view.observed)),
    )
    return plan_instance(view)


SEEDED_BUGS: dict[str, tuple[Planner, str]] = {
    # bug -> (mutant kernel, the property failure that must catch it)
    "delete by name without a UID check": (
        delete_by_name_without_uid_check,
        "no-foreign-provider-writes",
    ),
    "finalizer removed before the provider copy is gone": (
        finalizer_removed_before_copy_is_gone,
        "finalizer-held-while-provider-copy-exists",
    ),
    "no-op writes": (noop_writes, "converged world still plans"),
    "adopting a foreign-owned object": (adopt_foreign_owned, "no-foreign-provider-writes"),
    "status dropped": (status_dropped, "status not mirrored"),
    "deletionTimestamp ignored": (deletion_timestamp_ignored, "still deleting"),
    "recursive copy of the objects": (recursive_copy, "kernel-never-raises"),
}


KERNEL_PATCHES: dict[str, tuple[str, Any, str]] = {
    # bug -> (kernel attribute replaced, its replacement, the property failure that must catch it)
    "self-binding not refused": (
        "kbcore.control.connection.reaches_itself",
        lambda _provider, _consumer: False,
        "no-self-binding",
    ),
}


# -- the trust boundary of related resources (kbcore.control.related) ---------------------------------


def every_namespace_synced(namespace: str, synced: Collection[str]) -> bool:
    """T1 lost: a source is admitted whether or not the binding syncs anything there."""
    return True


def no_reserved_namespace(namespace: str, konnector_namespace: str) -> bool:
    """T2 lost: kube-* and the konnector's namespace are like any other."""
    return False


def no_reserved_name(name: str) -> bool:
    """T3 lost: kube-root-ca.crt and other kube-* names are copied."""
    return False


def every_secret_type(value: Any) -> bool:
    """T4 lost: the type allow-list is gone; tokens are copied as they are."""
    return True


def namespaces_created_everywhere(cluster: str) -> bool:
    """T5 lost: a copy's missing namespace is created on the consumer too."""
    return True


def a_missing_namespace_synced(namespace: str, synced: Collection[str]) -> bool:
    """T1 bypassed for `team-new`, a namespace the consumer lacks (as if objects were there):
    with T1 intact a consumer namespace is never missing, so T5 is only reachable this way."""
    return namespace in synced or namespace == "team-new"


def every_selector_explicit(selector: Any) -> bool:
    """T6 lost: a FromConsumer rule without a selector uploads everything it can read."""
    return True


FINDING_BUDGET = settings(
    max_examples=300,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    phases=[Phase.generate],  # finding is enough; shrinking would only cost time
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
    database=None,
)
"""How hard a test looks for a seeded bug: the same examples on every run, no shrinking, and
no example database (a failure saved for one mutant must not be replayed against another)."""


Patch = tuple[str, Callable[..., Any]]
"""(a function of kbcore.control.related, its broken replacement)."""

RELATED_SEEDED_BUGS: dict[str, tuple[tuple[Patch, ...], str]] = {
    # bug -> (patches of kbcore.control.related, the invariant message that must catch it)
    "the namespace rule removed (T1)": (
        (("synced_namespace", every_namespace_synced),),
        r"related-within-trust-boundary', '[^']*syncs no object \(T1\)"),
    "kube-* and konnector namespaces admitted (T2)": (
        (("reserved_namespace", no_reserved_namespace),),
        r"related-within-trust-boundary', '[^']*\(T2\)"),
    "kube-* names admitted (T3)": (
        (("reserved_name", no_reserved_name),),
        r"related-within-trust-boundary', '[^']*\(T3\)"),
    "the Secret type allow-list removed (T4)": (
        (("data_secret_type", every_secret_type),),
        r"related-within-trust-boundary', '[^']*\(T4\)"),
    "consumer namespace creation restored (T5)": (
        (("may_create_namespace", namespaces_created_everywhere),
         ("synced_namespace", a_missing_namespace_synced)),
        r"related-within-trust-boundary', '[^']*created consumer namespace"),
    "the FromConsumer selector requirement removed (T6)": (
        (("explicit_selector", every_selector_explicit),),
        r"related-within-trust-boundary', '[^']*\(T6\)"),
}  # fmt: skip


# -- the schema gate and per-API sync (issue 12): patched into kbcore / kbsim for a run ----------

SchemaPatch = Callable[[], contextlib.AbstractContextManager[None]]


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    old = inspect.getattr_static(module, name)  # a staticmethod stays one when restored
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def gate_ignores_scope() -> contextlib.AbstractContextManager[None]:
    """The change gate compares names and versions but forgets the scope."""
    from kbcore.schema import policy as schema

    real = schema.refuse_schema_change

    def mutant(current: Any, desired: Any) -> Any:
        scope = (current.get("spec") or {}).get("scope")
        return real(current, {**desired, "spec": {**desired["spec"], "scope": scope}})

    return _patched(schema, "refuse_schema_change", mutant)


def gate_ignores_stored_versions() -> contextlib.AbstractContextManager[None]:
    """The change gate forgets that objects are stored at versions the CRD once stored."""
    from kbcore.schema import policy as schema

    real = schema.refuse_schema_change

    def mutant(current: Any, desired: Any) -> Any:
        return real({**current, "status": {**(current.get("status") or {}),
                                           "storedVersions": []}}, desired)  # fmt: skip

    return _patched(schema, "refuse_schema_change", mutant)


def hash_claimed_before_the_write() -> contextlib.AbstractContextManager[None]:
    """plan_install reports the hash of the CRD it is about to write as the installed one."""
    from kbcore.schema import policy as schema

    real = schema.plan_install

    def mutant(*args: Any, **kwargs: Any) -> Any:
        install = real(*args, **kwargs)
        return attrs.evolve(install, crd_hash=install.writes_hash or install.crd_hash)

    return _patched(schema, "plan_install", mutant)


def sync_follows_the_binding_not_the_api() -> contextlib.AbstractContextManager[None]:
    """Instance sync asks whether any API of the binding is bound, not this one."""
    from kbcore.control import binding
    from kbcore.runtime import observe

    def mutant(b: Any, api: str) -> bool:
        entries = (b.get("status") or {}).get("boundAPIs") or []
        return any(binding.api_is_ready(e) for e in entries if isinstance(e, dict))

    return _patched(observe, "syncs_api", mutant)


def syncer_kept_for_an_incompatible_api() -> contextlib.AbstractContextManager[None]:
    """The engagement pass keeps the syncer of an API whose provider schema was refused."""
    from kbcore.control import engagement

    return _patched(engagement, "paused", lambda _api, _bindings: False)


def shell_addresses_the_provider_by_its_own_scope() -> contextlib.AbstractContextManager[None]:
    """The shell builds a write's URL from the provider's discovery (a RESTMapper), so a
    namespaced consumer object is written cluster-wide on a cluster-scoped provider API."""
    from kbsim import serverapi

    return _patched(serverapi.ServerAPI, "url_namespace", staticmethod(lambda _gvr, _body: None))


SCHEMA_SEEDED_BUGS: dict[str, tuple[SchemaPatch, str]] = {
    # bug -> (what it patches in, the property failure that must catch it)
    "change gate ignores scope": (gate_ignores_scope, "consumer-crd-immutable-fields"),
    "change gate ignores stored versions": (
        gate_ignores_stored_versions, "consumer-crd-immutable-fields"),
    "hash claimed before the write": (hash_claimed_before_the_write, "bound-hash-was-written"),
    "sync follows the binding, not the API": (
        sync_follows_the_binding_not_the_api, "refused API still synced|did not settle"),
    "syncer kept for an incompatible API": (syncer_kept_for_an_incompatible_api, "did not settle"),
    "shell addresses the provider by its own scope": (
        shell_addresses_the_provider_by_its_own_scope, "instance-scope-matches-provider"),
}  # fmt: skip
