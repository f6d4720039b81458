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

from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.runtime import cluster
from kbsim.apiserver import ADMIN, APIServer, User


@attrs.frozen
class ServerAPI:
    """`ClusterAPI` over `server` as `user`. The arguments are passed on as the kernel's
    `perform` and `read` give them (`ClusterAPI` types them); this adds only the user, and the
    URL's namespace of a create or update."""

    server: APIServer
    user: User = ADMIN

    @staticmethod
    def url_namespace(gvr: GVR, body: Obj) -> str | None:
        """The URL's namespace as the konnector's client sends it (None would be a client that
        knows the resource's scope)."""
        return cluster.url_namespace(gvr, body)

    def get(self, gvr: GVR, key: ObjectKey, /, *, subresource: str = "") -> Obj:
        return self.server.get(gvr, key, user=self.user, subresource=subresource)

    def list(self, *args: Any) -> tuple[list[Obj], str]:
        return self.server.list(*args, user=self.user)

    def create(self, gvr: GVR, body: Obj, *args: Any) -> Obj:
        namespace = self.url_namespace(gvr, body)
        return self.server.create(gvr, body, *args, user=self.user, url_namespace=namespace)

    def update(self, gvr: GVR, body: Obj, *args: Any) -> Obj:
        namespace = self.url_namespace(gvr, body)
        return self.server.update(gvr, body, *args, user=self.user, url_namespace=namespace)

    def patch(self, *args: Any) -> Obj:
        return self.server.patch(*args, user=self.user)

    def delete(
        self, gvr: GVR, key: ObjectKey, uid: str | None, rv: str | None, policy: str | None, /
    ) -> Obj | None:
        return self.server.delete(gvr, key, uid, rv, user=self.user, propagation_policy=policy)

    def discovery(self, path: str, /) -> Obj:
        return self.server.discovery(path, user=self.user)

    def openapi(self, path: str, /) -> Obj:
        return self.server.openapi(path, user=self.user)
