"""`kbcore.runtime.cluster.ClusterAPI` over one in-memory `APIServer`, as one user.

What a client adds to a request before the server sees it lives here: who is asking (the
`User` the server authorizes) and the namespace in the URL, which kbshell's `KubeClient` takes
from the body (`kbcore.runtime.cluster.url_namespace`) without looking up the resource's scope,
so a namespaced URL of a cluster-scoped resource is answered 404 on kbsim as on a real server.
The konnector's requests (`kbsim.world.World.perform`) and the conformance suite's kbsim
backend both go through it.
"""

from __future__ import annotations

from typing import Any

import attrs

from kbcore.api import keys
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.runtime import cluster
from kbcore.runtime.requests import PatchType
from kbsim.apiserver import ADMIN, APIServer, User


@attrs.frozen
class ServerAPI:
    server: APIServer
    user: User = ADMIN

    @staticmethod
    def url_namespace(gvr: GVR, body: Obj) -> str | None:
        """The URL's namespace as the konnector's client sends it (None would be a client that
        knows the resource's scope)."""
        return cluster.url_namespace(gvr, body)

    def get(self, gvr: GVR, key: ObjectKey, /, *, subresource: str = "") -> Obj:
        return self.server.get(gvr, key, user=self.user, subresource=subresource)

    def list(
        self, gvr: GVR, namespace: str = "", label_selector: str = "", /
    ) -> tuple[list[Obj], str]:
        return self.server.list(gvr, namespace, label_selector, user=self.user)

    def create(self, gvr: GVR, body: Obj, field_manager: str = keys.FIELD_MANAGER, /) -> Obj:
        return self.server.create(
            gvr, body, field_manager, user=self.user, url_namespace=self.url_namespace(gvr, body)
        )

    def update(
        self, gvr: GVR, body: Obj, subresource: str = "", field_manager: str = keys.FIELD_MANAGER, /
    ) -> Obj:
        return self.server.update(
            gvr,
            body,
            subresource,
            field_manager,
            user=self.user,
            url_namespace=self.url_namespace(gvr, body),
        )

    def patch(
        self,
        gvr: GVR,
        key: ObjectKey,
        body: Any,
        patch_type: PatchType = "merge",
        field_manager: str = keys.FIELD_MANAGER,
        force: bool = False,
        subresource: str = "",
        /,
    ) -> Obj:
        return self.server.patch(
            gvr, key, body, patch_type, field_manager, force, subresource, user=self.user
        )

    def delete(
        self,
        gvr: GVR,
        key: ObjectKey,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
        /,
    ) -> Obj | None:
        return self.server.delete(
            gvr, key, uid, resource_version, user=self.user, propagation_policy=propagation_policy
        )

    def discovery(self, path: str, /) -> Obj:
        return self.server.discovery(path, user=self.user)

    def openapi(self, path: str, /) -> Obj:
        return self.server.openapi(path, user=self.user)
