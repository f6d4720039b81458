"""kbcore.runtime.cluster: what a request means on any ClusterAPI, and "a 404 on a Get is None".

A recording ClusterAPI shows the calls `perform` and `read` make; kbsim's ServerAPI shows that
an API server then sees what kbshell's client would send it.
"""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.actions import Apply, Create, CreateNamespace, Delete, RemoveFinalizer
from kbcore.api.resources import CONFIGMAPS, CRDS, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey, ObjectRef
from kbcore.reads import Discovery, Failed, Get, List, OpenAPIDoc
from kbcore.runtime import cluster
from kbcore.runtime.requests import Request, to_request
from kbsim.apiserver import APIServer
from kbsim.serverapi import ServerAPI

CM = ObjectRef("provider", CONFIGMAPS, ObjectKey("team", "cm"))


class Recorder:
    """A ClusterAPI that notes each call and answers with `answer` (or raises it)."""

    def __init__(self, answer: Any = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.answer = answer

    def _call(self, *call: Any) -> Any:
        self.calls.append(call)
        if isinstance(self.answer, ApiError):
            raise self.answer
        return self.answer

    def get(self, gvr: GVR, key: ObjectKey, /, *, subresource: str = "") -> Obj:
        return self._call("get", gvr, key)  # type: ignore[no-any-return]

    def list(self, gvr: GVR, namespace: str, selector: str, /) -> tuple[list[Obj], str]:
        return self._call("list", gvr, namespace, selector), "7"

    def create(self, gvr: GVR, body: Obj, field_manager: str, /) -> Obj:
        return self._call("create", gvr, body, field_manager)  # type: ignore[no-any-return]

    def update(self, gvr: GVR, body: Obj, subresource: str, field_manager: str, /) -> Obj:
        return self._call("update", gvr, body, subresource, field_manager)  # type: ignore[no-any-return]

    def patch(self, *args: Any) -> Obj:
        return self._call("patch", *args)  # type: ignore[no-any-return]

    def delete(self, *args: Any) -> Obj | None:
        return self._call("delete", *args)  # type: ignore[no-any-return]

    def discovery(self, path: str, /) -> Obj:
        return self._call("discovery", path)  # type: ignore[no-any-return]

    def openapi(self, path: str, /) -> Obj:
        return self._call("openapi", path)  # type: ignore[no-any-return]


def test_a_create_is_addressed_to_the_key_namespace_when_its_body_names_none() -> None:
    api = Recorder({})
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    request = to_request(Create(CM, body, "kube-bind"), 0.0)
    assert request is not None
    cluster.perform(api, request)
    [(_, gvr, sent, manager)] = api.calls
    assert (gvr, sent["metadata"], manager) == (
        CONFIGMAPS,
        {"name": "cm", "namespace": "team"},
        "kube-bind",
    )
    assert body["metadata"] == {"name": "cm"}  # the action's body is not changed
    assert cluster.url_namespace(gvr, sent) == "team"


def test_a_namespace_is_created_without_a_namespace_in_its_url() -> None:
    api = Recorder({})
    request = to_request(CreateNamespace("provider", "kube-bind-x", {}), 0.0)
    assert request is not None
    cluster.perform(api, request)
    [(_, gvr, sent, _)] = api.calls
    assert gvr == NAMESPACES and cluster.url_namespace(gvr, sent) == ""


def test_patches_and_deletes_carry_their_type_preconditions_and_manager() -> None:
    api = Recorder({})
    for action in (
        Apply(CM, {"data": {"a": "1"}}, "kube-bind", force=True),
        RemoveFinalizer(CM, "kube-bind.io/cleanup", "41", ()),
        Delete(CM, uid="u-1"),
        Delete(CM, uid=""),
    ):
        request = to_request(action, 0.0)
        assert request is not None
        cluster.perform(api, request)
    apply, merge, delete, unconditional = api.calls
    assert apply == (
        "patch",
        CONFIGMAPS,
        CM.key,
        {"data": {"a": "1"}},
        "apply",
        "kube-bind",
        True,
        "",
    )
    assert merge[4] == "merge" and merge[3]["metadata"]["resourceVersion"] == "41"
    assert delete == ("delete", CONFIGMAPS, CM.key, "u-1", None, None)
    assert unconditional == ("delete", CONFIGMAPS, CM.key, None, None, None)


NOT_FOUND = ApiError(404, "NotFound", 'configmaps "cm" not found')
FORBIDDEN = ApiError(403, "Forbidden", "no")


@pytest.mark.parametrize(
    ("read", "error", "expected"),
    [
        (Get("provider", CONFIGMAPS, CM.key), NOT_FOUND, None),
        (Get("provider", CONFIGMAPS, CM.key), FORBIDDEN, Failed(FORBIDDEN)),
        # Only a Get's 404 means absent: a List or a document that is not there failed.
        (List("provider", CONFIGMAPS, "team"), NOT_FOUND, Failed(NOT_FOUND)),
        (Discovery("provider", "/apis/x.example.com/v1"), NOT_FOUND, Failed(NOT_FOUND)),
        (OpenAPIDoc("provider", "/openapi/v3"), NOT_FOUND, Failed(NOT_FOUND)),
    ],
)
def test_a_404_on_a_get_is_absence_and_every_other_failure_is_failed(
    read: Any, error: ApiError, expected: Any
) -> None:
    assert cluster.read(Recorder(error), read) == expected


def test_reads_return_what_the_server_answered() -> None:
    api = Recorder([{"metadata": {"name": "cm"}}])
    assert cluster.read(api, List("provider", CONFIGMAPS, "team", "a=b")) == [
        {"metadata": {"name": "cm"}}
    ]
    assert api.calls == [("list", CONFIGMAPS, "team", "a=b")]


def test_on_kbsim_a_namespaced_url_of_a_cluster_scoped_resource_is_not_found() -> None:
    """The client addresses a write by its body, not by the resource's scope, so a kernel bug
    that names a namespace for a cluster-scoped object fails as on a real server."""
    server = APIServer("provider", clock=lambda: 0.0, seed=1)
    api = ServerAPI(server)
    crd_key = ObjectKey("team", "widgets.example.org")
    body = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.org"}}  # fmt: skip
    with pytest.raises(ApiError) as info:
        cluster.perform(api, Request("create", "provider", CRDS, crd_key, body))
    assert info.value.code == 404
    namespace = to_request(CreateNamespace("provider", "team", {}), 0.0)
    assert namespace is not None
    cluster.perform(api, namespace)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    cluster.perform(api, Request("create", "provider", CONFIGMAPS, CM.key, cm))
    got = cluster.read(api, Get("provider", CONFIGMAPS, CM.key))
    assert got["metadata"]["namespace"] == "team"
    assert cluster.read(api, Get("provider", CONFIGMAPS, ObjectKey("team", "gone"))) is None


def test_get_or_none_is_none_only_for_a_404() -> None:
    assert cluster.get_or_none(Recorder(NOT_FOUND), CONFIGMAPS, CM.key) is None
    assert cluster.get_or_none(Recorder({"a": 1}), CONFIGMAPS, CM.key) == {"a": 1}
    with pytest.raises(ApiError) as info:
        cluster.get_or_none(Recorder(FORBIDDEN), CONFIGMAPS, CM.key)
    assert info.value is FORBIDDEN
