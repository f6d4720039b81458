"""Built-in controllers: what kube-controller-manager and apiextensions-apiserver do
asynchronously, run by `tick()`.

CRD naming and establishing (NamesAccepted, Established), CRD instance cleanup on deletion,
namespace finalization (delete the contents, report the conditions, drop the `kubernetes`
finalizer), garbage collection (background, orphan and foreground propagation), the token
controller (service-account-token Secrets: `data.token`, `data.ca.crt`, `data.namespace` filled
while their ServiceAccount exists, the Secret deleted once it does not; `authenticate` accepts
such a token as the ServiceAccount while both exist; always on, as every real cluster's
kube-controller-manager runs it) and, with `namespace_defaults`, the per-namespace `default`
ServiceAccount and `kube-root-ca.crt` ConfigMap. Also the bootstrap objects every cluster
starts with. Controllers write through the same commit path as requests (so watches and
observers see them) but bypass hooks and RBAC.
"""

from __future__ import annotations

import base64
import builtins
from collections.abc import Callable, Mapping
from typing import Any

from kbcore import objects as o
from kbcore.objects import Obj, ObjectKey
from kbsim import schema as crschema
from kbsim.apiserver.apply import Patch
from kbsim.apiserver.pipeline import FOREGROUND_FINALIZER, ORPHAN_FINALIZER, SA_TOKEN_PREFIX
from kbsim.apiserver.store import canonical, condition, condition_true, ensure_meta, set_condition
from kbsim.apiserver.strategy import NAMESPACE_FINALIZER
from kbsim.rbac import User
from kbsim.resources import ResourceInfo, from_crd

INITIAL_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)

# Identities of the simulated control-plane components (what a WriteRecord shows).
KUBE_APISERVER = User("system:apiserver", ("system:masters",))
NAMESPACE_CONTROLLER = User("system:serviceaccount:kube-system:namespace-controller")
GARBAGE_COLLECTOR = User("system:serviceaccount:kube-system:generic-garbage-collector")
CONTROLLER_MANAGER = User("system:kube-controller-manager")
TOKEN_CONTROLLER = User("system:serviceaccount:kube-system:tokens-controller")

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Controllers(Patch):
    """The asynchronous controllers and the bootstrap (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], float],
        seed: int,
        namespace_defaults: bool,
    ) -> None:
        super().__init__(name, clock=clock, seed=seed)
        self._namespace_defaults = namespace_defaults
        self._pending: tuple[int, bool] | None = None

    def tick(self) -> int:
        """Run the asynchronous controllers once; returns the number of writes they made."""
        if not self.pending_work():
            return 0
        before = self._rv
        self._crd_controller(act=True)
        self._namespace_controller(act=True)
        self._garbage_collector(act=True)
        self._token_controller(act=True)
        if self._namespace_defaults:
            self._namespace_defaults_controller(act=True)
        return self._rv - before

    def pending_work(self) -> bool:
        """Whether `tick()` would do anything (memoized per resourceVersion: controllers only
        react to stored state)."""
        if self._pending is not None and self._pending[0] == self._rv:
            return self._pending[1]
        pending = self._compute_pending()
        self._pending = (self._rv, pending)
        return pending

    def _compute_pending(self) -> bool:
        return (
            self._crd_controller(act=False)
            or self._namespace_controller(act=False)
            or self._garbage_collector(act=False)
            or self._token_controller(act=False)
            or (self._namespace_defaults and self._namespace_defaults_controller(act=False))
        )

    def _bootstrap(self) -> None:
        ns_info = self._builtin[("", "namespaces")]
        for name in INITIAL_NAMESPACES:
            self._system_create(ns_info, {"metadata": {"name": name}})
        rbac = "rbac.authorization.k8s.io"
        admin = {
            "name": "cluster-admin",
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        }
        self._system_create(
            self._builtin[(rbac, "clusterroles")],
            {
                "metadata": admin,
                "rules": [
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]},
                ],
            },
        )
        self._system_create(
            self._builtin[(rbac, "clusterrolebindings")],
            {
                "metadata": admin,
                "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": rbac, "kind": "Group", "name": "system:masters"}],
            },
        )

    def _system_create(
        self,
        info: ResourceInfo,
        body: Obj,
        *,
        user: User = KUBE_APISERVER,
        manager: str = "kube-apiserver",
    ) -> Obj:
        body = o.deepcopy(body)
        body["apiVersion"], body["kind"] = info.api_version(), info.kind
        return self._create(info, info.storage_version, body, manager, user, managed=None)

    def _system_status(
        self, info: ResourceInfo, existing: Obj, status: dict[str, Any], *, user: User, manager: str
    ) -> None:
        """A controller's status write (an Update on /status, recorded in managedFields)."""
        meta = existing.get("metadata") or {}
        key = ObjectKey(meta.get("namespace", ""), meta["name"])
        body = self._present(info, info.storage_version, existing, view=True)
        body["status"] = status
        self._write_update(
            info,
            info.storage_version,
            key,
            existing,
            body,
            verb="update",
            subresource="status",
            field_manager=manager,
            user=user,
            applied=None,
        )

    def _crd_controller(self, *, act: bool) -> bool:
        info = self._crd_info()
        work = False
        for key in sorted(self._store(info)):
            crd = self._store(info).get(key)
            if crd is None:
                continue
            if crd["metadata"].get("deletionTimestamp"):
                held = crschema.CLEANUP_FINALIZER in (crd["metadata"].get("finalizers") or [])
                if held and self._crd_cleanup_pending(crd):
                    work = True
                    if act:
                        self._crd_cleanup(info, key)
                continue
            names = dict((crd.get("spec") or {}).get("names") or {})
            status = crd.get("status") or {}
            established = condition_true(crd, "Established")
            if established and status.get("acceptedNames") == names:
                continue
            conflict = self._names_conflict(crd, names)
            if conflict and any(
                c.get("type") == "NamesAccepted" and c.get("status") == "False"
                for c in status.get("conditions") or []
            ):
                continue
            work = True
            if act:
                self._crd_establish(info, crd, names, conflict)
        return work

    def _names_conflict(self, crd: Obj, names: Mapping[str, Any]) -> str:
        group = (crd.get("spec") or {}).get("group")
        for other in self._store(self._crd_info()).values():
            if other is crd or (other.get("spec") or {}).get("group") != group:
                continue
            accepted = (other.get("status") or {}).get("acceptedNames") or {}
            if accepted.get("plural") and accepted.get("plural") == names.get("plural"):
                return f'"{names.get("plural")}" is already in use'
            if accepted.get("kind") and accepted.get("kind") == names.get("kind"):
                return f'"{names.get("kind")}" is already in use'
        return ""

    def _crd_establish(
        self, info: ResourceInfo, crd: Obj, names: dict[str, Any], conflict: str
    ) -> None:
        now = self._now()
        status = o.deepcopy(crd.get("status") or {})
        conditions = status.get("conditions") or []
        if conflict:
            plural = f'"{names.get("plural")}"'
            reason = "PluralConflict" if conflict.startswith(plural) else "KindConflict"
            status["conditions"] = set_condition(
                conditions, condition("NamesAccepted", "False", reason, conflict, now)
            )
            self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")
            return
        status["acceptedNames"] = names
        status["conditions"] = set_condition(
            conditions,
            condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", now),
        )
        if condition_true(crd, "Established"):
            self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")
            return
        self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")
        crd = self._store(info)[ObjectKey("", crd["metadata"]["name"])]
        status = o.deepcopy(crd.get("status") or {})
        status["conditions"] = set_condition(
            status.get("conditions") or [],
            condition(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                now,
            ),
        )
        self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")

    def _crd_cleanup_pending(self, crd: Obj) -> bool:
        """Whether the CRD finalizer has something to do (not just waiting on finalizers)."""
        in_progress = any(
            c.get("type") == "Terminating" and c.get("reason") == "InstanceDeletionInProgress"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
        served = from_crd(crd) if condition_true(crd, "Established") else None
        if not in_progress or served is None:
            return True
        instances = self._store(served).values()
        return not instances or any(not i["metadata"].get("deletionTimestamp") for i in instances)

    def _crd_cleanup(self, info: ResourceInfo, key: ObjectKey) -> None:
        crd = self._store(info)[key]
        now = self._now()
        status = o.deepcopy(crd.get("status") or {})
        in_progress = condition(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            now,
        )
        if not any(
            c.get("type") == "Terminating" and c.get("reason") == "InstanceDeletionInProgress"
            for c in status.get("conditions") or []
        ):
            status["conditions"] = set_condition(status.get("conditions") or [], in_progress)
            self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")
            crd = self._store(info)[key]
        served = from_crd(crd) if condition_true(crd, "Established") else None
        remaining = 0
        if served is not None:
            store = self._store(served)
            for okey in sorted(store):
                obj = store.get(okey)
                if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                    self._delete(served, okey, obj, None, None, None, KUBE_APISERVER)
            remaining = len(self._store(served))
            final = condition(
                "Terminating", "False", "InstanceDeletionCompleted", "removed all instances", now
            )
        else:
            final = condition(
                "Terminating", "False", "NeverEstablished", "resource was never established", now
            )
        if remaining:
            return
        crd = self._store(info)[key]
        status = o.deepcopy(crd.get("status") or {})
        status["conditions"] = set_condition(status.get("conditions") or [], final)
        finalizers = [
            f for f in crd["metadata"].get("finalizers") or [] if f != crschema.CLEANUP_FINALIZER
        ]
        marked = o.deepcopy(crd)
        marked["status"] = status
        ensure_meta(marked)["finalizers"] = finalizers
        # Removing the last finalizer deletes the CRD (the update path does the same).
        self._commit(
            info,
            key,
            crd,
            canonical(info, marked) if finalizers else None,
            verb="update",
            user=KUBE_APISERVER,
            field_manager="kube-apiserver",
            subresource="status",
        )

    def _namespace_controller(self, *, act: bool) -> bool:
        ns_info = self._builtin[("", "namespaces")]
        work = False
        for key in sorted(self._store(ns_info)):
            ns = self._store(ns_info).get(key)
            if ns is None or not ns["metadata"].get("deletionTimestamp"):
                continue
            if NAMESPACE_FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
                continue
            contents = [
                (info, okey, obj)
                for info in self._namespaced_infos()
                for okey, obj in sorted(self._store(info).items())
                if okey.namespace == key.name
            ]
            deletable = [c for c in contents if not c[2]["metadata"].get("deletionTimestamp")]
            pending = (
                bool(deletable)
                or not contents
                or self._namespace_conditions(ns, contents)
                != (ns.get("status") or {}).get("conditions")
            )
            if pending:
                work = True
                if act:
                    self._finalize_namespace(ns_info, key, deletable)
        return work

    def _namespace_conditions(
        self, ns: Obj, contents: builtins.list[tuple[ResourceInfo, ObjectKey, Obj]]
    ) -> builtins.list[dict[str, Any]]:
        now = self._now()
        by_resource: dict[str, int] = {}
        by_finalizer: dict[str, int] = {}
        for info, _, obj in contents:
            by_resource[info.group_resource] = by_resource.get(info.group_resource, 0) + 1
            for f in obj["metadata"].get("finalizers") or []:
                by_finalizer[f] = by_finalizer.get(f, 0) + 1
        conditions = list((ns.get("status") or {}).get("conditions") or [])
        remaining = ", ".join(
            f"{r} has {n} resource instances" for r, n in sorted(by_resource.items())
        )
        held = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(by_finalizer.items()))
        content = (
            ("True", "SomeResourcesRemain", f"Some resources are remaining: {remaining}")
            if by_resource
            else ("False", "ContentRemoved", "All content successfully removed")
        )
        finalizers = (
            (
                "True",
                "SomeFinalizersRemain",
                f"Some content in the namespace has finalizers remaining: {held}",
            )
            if by_finalizer
            else ("False", "ContentHasNoFinalizers", "All content-preserving finalizers finished")
        )
        # (type, status, reason, message), in the order the namespace controller sets them.
        updates = [
            (
                "NamespaceDeletionDiscoveryFailure",
                "False",
                "ResourcesDiscovered",
                "All resources successfully discovered",
            ),
            (
                "NamespaceDeletionGroupVersionParsingFailure",
                "False",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed",
            ),
            (
                "NamespaceDeletionContentFailure",
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            ),
            ("NamespaceContentRemaining", *content),
            ("NamespaceFinalizersRemaining", *finalizers),
        ]
        for ctype, status, reason, message in updates:
            conditions = set_condition(conditions, condition(ctype, status, reason, message, now))
        return conditions

    def _finalize_namespace(
        self,
        ns_info: ResourceInfo,
        key: ObjectKey,
        deletable: builtins.list[tuple[ResourceInfo, ObjectKey, Obj]],
    ) -> None:
        for info, okey, _ in deletable:
            current = self._store(info).get(okey)
            if current is not None and not current["metadata"].get("deletionTimestamp"):
                self._delete(info, okey, current, None, None, None, NAMESPACE_CONTROLLER)
        contents = [
            (info, okey, obj)
            for info in self._namespaced_infos()
            for okey, obj in sorted(self._store(info).items())
            if okey.namespace == key.name
        ]
        ns = self._store(ns_info)[key]
        conditions = self._namespace_conditions(ns, contents)
        if conditions != (ns.get("status") or {}).get("conditions"):
            status = o.deepcopy(ns.get("status") or {})
            status["conditions"] = conditions
            self._system_status(
                ns_info, ns, status, user=NAMESPACE_CONTROLLER, manager="kube-controller-manager"
            )
            ns = self._store(ns_info)[key]
        if contents:
            return
        body = self._present(ns_info, "v1", ns, view=True)
        body["spec"] = dict(body.get("spec") or {})
        body["spec"]["finalizers"] = [
            f for f in body["spec"].get("finalizers") or [] if f != NAMESPACE_FINALIZER
        ]
        self._write_update(
            ns_info,
            "v1",
            key,
            ns,
            body,
            verb="update",
            subresource="finalize",
            field_manager="kube-controller-manager",
            user=NAMESPACE_CONTROLLER,
            applied=None,
        )

    def _owner_state(self, dependent_ns: str, ref: Mapping[str, Any]) -> str:
        """`present`, `absent` or `unknown` (unresolvable: the GC leaves the dependent alone)."""
        info = self._owner_info(ref)
        if info is None:
            return "unknown"
        if info.namespaced and not dependent_ns:
            return "unknown"
        key = ObjectKey(dependent_ns if info.namespaced else "", str(ref.get("name") or ""))
        owner = self._store(info).get(key)
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return "absent"
        return "present"

    def _garbage_collector(self, *, act: bool) -> bool:
        work = False
        objects = self._all_objects()
        by_owner: dict[str, builtins.list[tuple[ResourceInfo, ObjectKey, Obj]]] = {}
        for info, key, obj in objects:
            for ref in obj["metadata"].get("ownerReferences") or []:
                if isinstance(ref, dict) and ref.get("uid"):
                    by_owner.setdefault(str(ref["uid"]), []).append((info, key, obj))
        # Dangling dependents: every owner is gone.
        for info, key, obj in objects:
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if isinstance(r, dict)]
            if not refs or obj["metadata"].get("deletionTimestamp"):
                continue
            states = {self._owner_state(key.namespace, r) for r in refs}
            if states == {"absent"}:
                work = True
                if act:
                    current = self._store(info).get(key)
                    if current is not None:
                        self._delete(
                            info,
                            key,
                            current,
                            current["metadata"].get("uid"),
                            None,
                            None,
                            GARBAGE_COLLECTOR,
                        )
        # Owners deleted with Orphan or Foreground propagation.
        for info, key, obj in objects:
            meta = obj["metadata"]
            finalizers = meta.get("finalizers") or []
            if not meta.get("deletionTimestamp"):
                continue
            dependents = by_owner.get(str(meta.get("uid")), [])
            if ORPHAN_FINALIZER in finalizers:
                work = True
                if act:
                    self._orphan(info, key, meta.get("uid"), dependents)
            elif FOREGROUND_FINALIZER in finalizers:
                live = [d for d in dependents if self._store(d[0]).get(d[1]) is not None]
                pending = [d for d in live if not d[2]["metadata"].get("deletionTimestamp")]
                if pending or not live:
                    work = True
                if act:
                    for dinfo, dkey, _ in pending:
                        current = self._store(dinfo).get(dkey)
                        if current is not None:
                            self._delete(
                                dinfo, dkey, current, None, None, "Foreground", GARBAGE_COLLECTOR
                            )
                    if not [d for d in live if self._store(d[0]).get(d[1]) is not None]:
                        self._remove_finalizer(info, key, FOREGROUND_FINALIZER)
        return work

    def _orphan(
        self,
        info: ResourceInfo,
        key: ObjectKey,
        uid: Any,
        dependents: builtins.list[tuple[ResourceInfo, ObjectKey, Obj]],
    ) -> None:
        for dinfo, dkey, _ in dependents:
            current = self._store(dinfo).get(dkey)
            if current is None:
                continue
            refs = current["metadata"].get("ownerReferences") or []
            kept = [r for r in refs if r.get("uid") != uid]
            self._gc_patch(dinfo, dkey, "ownerReferences", kept or None)
        self._remove_finalizer(info, key, ORPHAN_FINALIZER)

    def _remove_finalizer(self, info: ResourceInfo, key: ObjectKey, finalizer: str) -> None:
        current = self._store(info).get(key)
        if current is not None:
            finalizers = current["metadata"].get("finalizers") or []
            self._gc_patch(info, key, "finalizers", [f for f in finalizers if f != finalizer])

    def _gc_patch(self, info: ResourceInfo, key: ObjectKey, field: str, value: Any) -> None:
        """The garbage collector's patch of one metadata field (None removes it), if the
        object still exists."""
        current = self._store(info).get(key)
        if current is None:
            return
        body = self._present(info, info.storage_version, current, view=True)
        body["metadata"] = dict(body["metadata"])
        if value is None:
            body["metadata"].pop(field, None)
        else:
            body["metadata"][field] = value
        self._write_update(
            info,
            info.storage_version,
            key,
            current,
            body,
            verb="patch",
            subresource="",
            field_manager="kube-controller-manager",
            user=GARBAGE_COLLECTOR,
            applied=None,
        )

    def _namespace_defaults_controller(self, *, act: bool) -> bool:
        ns_info = self._builtin[("", "namespaces")]
        sa_info = self._builtin[("", "serviceaccounts")]
        cm_info = self._builtin[("", "configmaps")]
        work = False
        for key in sorted(self._store(ns_info)):
            ns = self._store(ns_info)[key]
            if ns["metadata"].get("deletionTimestamp"):
                continue
            if ObjectKey(key.name, "default") not in self._store(sa_info):
                work = True
                if act:
                    self._system_create(
                        sa_info,
                        {"metadata": {"name": "default", "namespace": key.name}},
                        user=CONTROLLER_MANAGER,
                        manager="kube-controller-manager",
                    )
            if ObjectKey(key.name, "kube-root-ca.crt") not in self._store(cm_info):
                work = True
                if act:
                    self._system_create(
                        cm_info,
                        {
                            "metadata": {
                                "name": "kube-root-ca.crt",
                                "namespace": key.name,
                                "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
                            },
                            "data": {
                                "ca.crt": "-----BEGIN CERTIFICATE-----\n"
                                f"kbsim-{self.name}\n-----END CERTIFICATE-----\n"
                            },
                        },
                        user=CONTROLLER_MANAGER,
                        manager="kube-controller-manager",
                    )
        return work

    # -- service-account tokens (kube-controller-manager's TokensController) ------------------

    def _root_ca(self) -> str:
        return f"-----BEGIN CERTIFICATE-----\nkbsim-{self.name}\n-----END CERTIFICATE-----\n"

    def _token_secret_owner(self, key: ObjectKey, secret: Obj) -> Obj | None:
        """The live ServiceAccount a token Secret belongs to (by name, and by UID once set)."""
        meta = secret["metadata"]
        annotations = meta.get("annotations") or {}
        sa_name = annotations.get(SA_NAME_ANNOTATION)
        sa = self._store(self._builtin[("", "serviceaccounts")]).get(
            ObjectKey(key.namespace, str(sa_name or ""))
        )
        if sa is None or sa["metadata"].get("deletionTimestamp"):
            return None
        pinned = annotations.get(SA_UID_ANNOTATION)
        if pinned and pinned != sa["metadata"].get("uid"):
            return None  # a same-named ServiceAccount made afterwards is not its owner
        return sa

    def _token_controller(self, *, act: bool) -> bool:
        info = self._builtin[("", "secrets")]
        work = False
        for key in sorted(self._store(info)):
            secret = self._store(info).get(key)
            if secret is None or secret.get("type") != SA_TOKEN_TYPE:
                continue
            if secret["metadata"].get("deletionTimestamp"):
                continue
            sa = self._token_secret_owner(key, secret)
            if sa is None:
                work = True
                if act:
                    uid = secret["metadata"].get("uid")
                    self._delete(info, key, secret, uid, None, None, TOKEN_CONTROLLER)
                continue
            data = secret.get("data") or {}
            want = {"ca.crt": _b64(self._root_ca()), "namespace": _b64(key.namespace)}
            annotations = secret["metadata"].get("annotations") or {}
            sa_uid = sa["metadata"].get("uid")
            if (
                data.get("token")
                and all(data.get(k) == v for k, v in want.items())
                and annotations.get(SA_UID_ANNOTATION) == sa_uid
            ):
                continue
            work = True
            if act:
                if not data.get("token"):
                    token = f"{SA_TOKEN_PREFIX}{key.namespace}.{key.name}.{self._uid()}"
                    want["token"] = _b64(token)
                body = self._present(info, info.storage_version, secret, view=True)
                body["data"] = {**data, **want}
                body["metadata"] = dict(body["metadata"])
                body["metadata"]["annotations"] = {**annotations, SA_UID_ANNOTATION: sa_uid}
                self._write_update(
                    info,
                    info.storage_version,
                    key,
                    secret,
                    body,
                    verb="update",
                    subresource="",
                    field_manager="kube-controller-manager",
                    user=TOKEN_CONTROLLER,
                    applied=None,
                )
        return work

    def authenticate(self, token: str) -> User | None:
        """The ServiceAccount a minted token authenticates as, while its Secret and the
        ServiceAccount exist (the service-account token authenticator); None otherwise."""
        if not token.startswith(SA_TOKEN_PREFIX):
            return None
        namespace, _, rest = token[len(SA_TOKEN_PREFIX) :].partition(".")
        name = rest.rpartition(".")[0]
        key = ObjectKey(namespace, name)
        secret = self._store(self._builtin[("", "secrets")]).get(key)
        if secret is None or secret.get("type") != SA_TOKEN_TYPE:
            return None
        if secret["metadata"].get("deletionTimestamp"):
            return None
        if (secret.get("data") or {}).get("token") != _b64(token):
            return None
        sa = self._token_secret_owner(key, secret)
        if sa is None:
            return None
        sa_name = sa["metadata"]["name"]
        return User(
            f"system:serviceaccount:{namespace}:{sa_name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
        )
