"""kbshell's client and reflector against real API servers.

What the konnector relies on when it talks to a provider: the credentials a kubeconfig Secret
yields authenticate as the provider's user (client certificate or token); the kernel's requests
are executed with their preconditions; reads are answered exactly as kbsim answers them (None
for NotFound, `Failed` for a denial or an unreachable server, never an exception); and a
reflector keeps its cache right across apiserver restarts and network partitions, including a
delete it could not see, and stops promptly.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import yaml

from kbcore.actions import Action, Apply, Delete, MergePatch
from kbcore.api import keys
from kbcore.api.resources import CONFIGMAPS, NAMESPACES
from kbcore.control.kubeconfig import Credentials, sanitize
from kbcore.errors import UNREACHABLE, ApiError
from kbcore.objects import GVR, Obj, ObjectKey, ObjectRef
from kbcore.reads import Discovery, Failed, Get, List, OpenAPIDoc
from kbcore.runtime.requests import Next, Request, judge, to_request
from kbshell.client import KubeClient, WatchStream
from kbshell.reflector import Reflector
from tests.conformance.adapters import RealClient
from tests.harness.clusters import Cluster, Clusters

pytestmark = pytest.mark.realcluster

T = TypeVar("T")
SERVICEACCOUNTS = GVR("", "v1", "serviceaccounts")
SELF_SUBJECT_REVIEWS = GVR("authentication.k8s.io", "v1", "selfsubjectreviews")
PROVIDER = "provider"


def eventually(check: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.05)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def configmap(name: str, namespace: str, labels: dict[str, str] | None = None, **data: str) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def credentials_of(kubeconfig_text: str) -> Credentials:
    """What the konnector gets from a kubeconfig Secret: the sanitized inline credentials."""
    creds = sanitize(yaml.safe_load(kubeconfig_text))
    assert isinstance(creds, Credentials), creds
    return creds


def who_am_i(client: KubeClient) -> Obj:
    review = client.create(
        SELF_SUBJECT_REVIEWS,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    user_info: Obj = review["status"]["userInfo"]
    return user_info


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def provider(clusters: Clusters) -> Cluster:
    return clusters.provider


@pytest.fixture
def admin(provider: Cluster) -> Iterator[KubeClient]:
    with KubeClient.from_kubeconfig_file(provider.kubeconfig) as client:
        yield client


@contextlib.contextmanager
def scratch_namespace(client: KubeClient) -> Iterator[str]:
    name = unique("kbshell")
    client.create(NAMESPACES, {"metadata": {"name": name}})
    try:
        yield name
    finally:
        # Not waited for: kube-controller-manager empties and removes it in the background.
        with contextlib.suppress(ApiError):
            client.delete(NAMESPACES, ObjectKey("", name))


@pytest.fixture
def namespace(admin: KubeClient) -> Iterator[str]:
    with scratch_namespace(admin) as name:
        yield name


def request_for(action: Action) -> Request:
    request = to_request(action, now=0.0)
    assert request is not None, action
    return request


class Recorder:
    """A reflector handler that remembers every call, for the test thread to wait on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Obj | None, Obj | None]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        with self._lock:
            self.events.append((kind, old, new))
            self.threads.add(threading.current_thread().name)

    def seen(self) -> list[tuple[str, str]]:
        with self._lock:
            return [
                (k, str(((new or old) or {})["metadata"]["name"])) for k, old, new in self.events
            ]

    def wait_for(
        self, kind: str, name: str, timeout: float = 30.0
    ) -> tuple[Obj | None, Obj | None]:
        def found() -> tuple[Obj | None, Obj | None] | None:
            with self._lock:
                for k, old, new in self.events:
                    if k == kind and ((new or old) or {})["metadata"]["name"] == name:
                        return old, new
            return None

        return eventually(found, timeout, f"{kind} {name}; seen {self.seen()}")


@contextlib.contextmanager
def running(reflector: Reflector) -> Iterator[Reflector]:
    reflector.start()
    try:
        assert reflector.synced.wait(30), f"{reflector} never synced: {reflector.last_error!r}"
        yield reflector
    finally:
        assert reflector.stop(10), f"{reflector} did not stop"


class Relay:
    """A TCP relay in front of an API server that the test can cut and restore, as a network
    partition would: while cut, open connections are dropped and new ones closed at once."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:  # the listener was closed
                return
            with self._lock:
                cut = self._cut
            if cut:
                downstream.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {downstream, upstream}
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
            with self._lock:
                self._open.discard(s)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            victims = list(self._open)
        self._drop(*victims)

    def heal(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._listener.close()
        self.cut()


# --------------------------------------------------------------------------- credentials


def test_client_certificate_credentials_authenticate_as_their_user(provider: Cluster) -> None:
    user = unique("kbshell-cert-user")
    creds = credentials_of(provider.mint_kubeconfig(user, ("kbshell-team",)).read_text())
    assert creds.client_certificate_data and creds.client_key_data and not creds.token

    with KubeClient.from_credentials(creds) as client:
        info = who_am_i(client)
    assert info["username"] == user
    assert "kbshell-team" in info["groups"]


def test_token_credentials_authenticate_as_the_service_account(
    provider: Cluster, admin: KubeClient, namespace: str
) -> None:
    admin.create(SERVICEACCOUNTS, {"metadata": {"name": "provider-sa", "namespace": namespace}})
    status, data = provider.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/provider-sa/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert status == 201, data
    admin_creds = credentials_of(provider.kubeconfig_text())
    creds = Credentials(
        server=admin_creds.server,
        certificate_authority_data=admin_creds.certificate_authority_data,
        token=data["status"]["token"],
    )

    with KubeClient.from_credentials(creds) as client:
        info = who_am_i(client)
    assert info["username"] == f"system:serviceaccount:{namespace}:provider-sa"

    # A token the server does not know is refused with its own Status, not a transport error.
    forged = Credentials(
        server=creds.server,
        certificate_authority_data=creds.certificate_authority_data,
        token="not-a-token",
    )
    with KubeClient.from_credentials(forged) as client, pytest.raises(ApiError) as info_:
        client.list(CONFIGMAPS, namespace)
    assert (info_.value.code, info_.value.reason) == (401, "Unauthorized")


def test_a_server_certificate_from_another_ca_is_refused_as_unreachable(
    clusters: Clusters,
) -> None:
    """Each cluster has its own CA: the provider's address with the consumer's CA data must fail
    the TLS handshake (no request is sent), and say so."""
    provider = credentials_of(clusters.provider.kubeconfig_text())
    consumer = credentials_of(clusters.consumer.kubeconfig_text())
    wrong = Credentials(
        server=provider.server,
        certificate_authority_data=consumer.certificate_authority_data,
        client_certificate_data=provider.client_certificate_data,
        client_key_data=provider.client_key_data,
    )
    with KubeClient.from_credentials(wrong) as client:
        result = client.read(Discovery(PROVIDER, "/apis"))
    assert isinstance(result, Failed)
    assert (result.error.code, result.error.reason) == (0, UNREACHABLE)
    assert "certificate verify failed" in result.error.message


# --------------------------------------------------------------------------- perform and read


def test_perform_executes_the_kernels_requests_with_their_preconditions(
    admin: KubeClient, namespace: str
) -> None:
    ref = ObjectRef(PROVIDER, CONFIGMAPS, ObjectKey(namespace, "synced"))
    apply = Apply(ref, configmap("synced", namespace, a="1"), keys.FIELD_MANAGER)
    request = request_for(apply)
    assert request.patch_type == "apply"

    applied = admin.perform(request)
    assert applied is not None and applied["data"] == {"a": "1"}
    managers = [(m["manager"], m["operation"]) for m in applied["metadata"]["managedFields"]]
    assert managers == [(keys.FIELD_MANAGER, "Apply")]

    # A merge patch planned from a resourceVersion that is no longer current must not land:
    # the server refuses it and the kernel plans again.
    planned_rv = applied["metadata"]["resourceVersion"]
    admin.patch(CONFIGMAPS, ref.key, {"data": {"a": "someone else"}})
    stale = MergePatch(ref, {"data": {"a": "2"}}, resource_version=planned_rv)
    with pytest.raises(ApiError) as info:
        admin.perform(request_for(stale))
    assert (info.value.code, info.value.reason) == (409, "Conflict")
    assert judge(stale, info.value).next is Next.REPLAN
    assert admin.get(CONFIGMAPS, ref.key)["data"] == {"a": "someone else"}

    current = admin.get(CONFIGMAPS, ref.key)["metadata"]["resourceVersion"]
    fresh = MergePatch(ref, {"data": {"a": "2"}}, resource_version=current)
    patched = admin.perform(request_for(fresh))
    assert patched is not None and patched["data"] == {"a": "2"}

    # A delete carries the uid it was planned for: a same-named replacement survives it.
    wrong_uid = Delete(ref, uid=str(uuid.uuid4()))
    with pytest.raises(ApiError) as info:
        admin.perform(request_for(wrong_uid))
    assert (info.value.code, info.value.reason) == (409, "Conflict")
    assert admin.read(Get(PROVIDER, CONFIGMAPS, ref.key)) is not None

    gone = admin.perform(request_for(Delete(ref, uid=patched["metadata"]["uid"])))
    assert gone is None
    assert admin.read(Get(PROVIDER, CONFIGMAPS, ref.key)) is None

    # A create request targets the namespace of its key.
    made = ObjectKey(namespace, "made")
    created = admin.perform(
        Request("create", PROVIDER, CONFIGMAPS, made, {"metadata": {"name": "made"}})
    )
    assert created is not None and created["metadata"]["namespace"] == namespace


def test_read_answers_like_kbsim(admin: KubeClient, namespace: str) -> None:
    """Get: the object or None; List: items that look like GET results; documents as sent."""
    created = admin.create(CONFIGMAPS, configmap("present", namespace, a="1"))

    assert admin.read(Get(PROVIDER, CONFIGMAPS, ObjectKey(namespace, "absent"))) is None
    assert admin.read(Get(PROVIDER, CONFIGMAPS, ObjectKey(namespace, "present"))) == created

    items = admin.read(List(PROVIDER, CONFIGMAPS, namespace))
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [
        ("v1", "ConfigMap", "present")
    ]
    assert items[0] == created

    groups = admin.read(Discovery(PROVIDER, "/apis"))
    assert groups["kind"] == "APIGroupList"
    assert "apiextensions.k8s.io" in [g["name"] for g in groups["groups"]]
    index = admin.read(OpenAPIDoc(PROVIDER, "/openapi/v3"))
    assert "api/v1" in index["paths"]
    core = admin.read(OpenAPIDoc(PROVIDER, index["paths"]["api/v1"]["serverRelativeURL"]))
    assert "io.k8s.api.core.v1.ConfigMap" in core["components"]["schemas"]

    # An unknown API group is a failed read (the kernel reports it), not an exception.
    missing = admin.read(Discovery(PROVIDER, "/apis/nothing.example.com/v1"))
    assert isinstance(missing, Failed) and missing.error.code == 404


def test_a_denied_read_is_a_failure_not_an_absence(
    provider: Cluster, admin: KubeClient, namespace: str
) -> None:
    """A 403 on a Get must not look like a deleted object to the kernel."""
    admin.create(CONFIGMAPS, configmap("secret-ish", namespace, a="1"))
    config = yaml.safe_load(provider.mint_kubeconfig(unique("kbshell-nobody")).read_text())
    with KubeClient.from_kubeconfig(config) as restricted:
        got = restricted.read(Get(PROVIDER, CONFIGMAPS, ObjectKey(namespace, "secret-ish")))
        listed = restricted.read(List(PROVIDER, CONFIGMAPS, namespace))
        discovery = restricted.read(Discovery(PROVIDER, "/api/v1"))
    for result in (got, listed):
        assert isinstance(result, Failed), result
        assert (result.error.code, result.error.reason) == (403, "Forbidden")
        assert "cannot" in result.error.message
    assert discovery["kind"] == "APIResourceList"  # every authenticated user may discover


def test_an_unreachable_server_is_reported_quickly_with_code_0() -> None:
    port = closed_port()
    with KubeClient.from_credentials(Credentials(server=f"https://127.0.0.1:{port}")) as client:
        # Quickly means before any timeout: a refused connection is not waited on.
        client.connect_timeout = client.read_timeout = 120.0
        started = time.monotonic()
        result = client.read(Get(PROVIDER, CONFIGMAPS, ObjectKey("default", "x")))
        with pytest.raises(ApiError) as info:
            client.perform(Request("delete", PROVIDER, CONFIGMAPS, ObjectKey("default", "x")))
        assert time.monotonic() - started < client.connect_timeout
    assert isinstance(result, Failed)
    for err in (result.error, info.value):
        assert (err.code, err.reason) == (0, UNREACHABLE)
        assert err.message == f"127.0.0.1:{port}: connection refused"
        assert err.is_unreachable and not err.is_retryable


def test_a_watch_closed_from_another_thread_ends_promptly(
    admin: KubeClient, namespace: str
) -> None:
    stream = admin.watch(CONFIGMAPS, namespace, timeout_seconds=300)
    closer = threading.Timer(0.3, stream.close)
    closer.start()
    # Ends with the close, not the 300 s watch timeout.
    events = list(stream)
    assert stream.end_reason == "closed by the client"
    # From resourceVersion "" the server only says it has sent the (empty) initial state.
    assert [e["type"] for e in events] in ([], ["BOOKMARK"])


# --------------------------------------------------------------------------- reflector

TEST_LABEL = "kbshell.example.com/test"


def labelled_configmaps(
    client: KubeClient, namespace: str, record: Recorder, name: str, **options: Any
) -> Reflector:
    """A Reflector of the ConfigMaps labelled with this test's namespace, reporting to `record`."""
    return Reflector(
        client,
        CONFIGMAPS,
        label_selector=f"{TEST_LABEL}={namespace}",
        on_event=record,
        name=name,
        **options,
    )


def test_reflector_keeps_a_cache_and_reports_every_change(
    admin: KubeClient, namespace: str
) -> None:
    label = {TEST_LABEL: namespace}
    before = admin.create(CONFIGMAPS, configmap("before", namespace, label, a="0"))
    admin.create(CONFIGMAPS, configmap("unselected", namespace, a="0"))
    record = Recorder()
    reflector = labelled_configmaps(admin, namespace, record, "cm")

    with running(reflector):
        # The list's objects look like GET results (apiVersion/kind filled in).
        assert reflector.get(ObjectKey(namespace, "before")) == before
        assert record.seen() == [("ADDED", "before")]

        admin.create(CONFIGMAPS, configmap("w", namespace, label, a="1"))
        _, added = record.wait_for("ADDED", "w")
        admin.patch(CONFIGMAPS, ObjectKey(namespace, "w"), {"data": {"a": "2"}})
        old, new = record.wait_for("MODIFIED", "w")
        assert old == added and new is not None and new["data"] == {"a": "2"}
        admin.delete(CONFIGMAPS, ObjectKey(namespace, "w"))
        old, new = record.wait_for("DELETED", "w")
        assert new is None and old is not None and old["data"] == {"a": "2"}
        # Leaving the selector is a delete too, as on a server-side selector watch.
        admin.patch(CONFIGMAPS, ObjectKey(namespace, "before"), {"metadata": {"labels": None}})
        record.wait_for("DELETED", "before")

        assert reflector.items() == [] and reflector.keys() == []
        assert int(reflector.resource_version) >= int(before["metadata"]["resourceVersion"])
        assert reflector.relists == 0 and reflector.last_error is None

    assert record.seen() == [
        ("ADDED", "before"),
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
        ("DELETED", "before"),
    ]
    assert record.threads == {"reflector-cm"}


def test_reflector_rewatching_reports_nothing_that_did_not_change(
    provider: Cluster, namespace: str
) -> None:
    """The server ends every watch after `watch_timeout`; resuming must not replay objects the
    handler already saw (each spurious event would wake a reconcile)."""
    label = {TEST_LABEL: namespace}
    with KubeClient.from_kubeconfig_file(provider.kubeconfig) as client:
        for name in ("a", "b"):
            client.create(CONFIGMAPS, configmap(name, namespace, label, x="1"))
        watched_from: list[str] = []
        watch = client.watch

        def counting_watch(*args: object, **kwargs: object) -> WatchStream:
            watched_from.append(str(kwargs.get("resource_version")))
            return watch(*args, **kwargs)  # type: ignore[arg-type]

        client.watch = counting_watch  # type: ignore[method-assign]
        record = Recorder()
        reflector = labelled_configmaps(client, namespace, record, "rewatch", watch_timeout=1)
        with running(reflector):
            eventually(lambda: len(watched_from) >= 4, 30, "the server ended three watches")
            assert record.seen() == [("ADDED", "a"), ("ADDED", "b")]
            assert reflector.relists == 0 and reflector.last_error is None
            client.patch(CONFIGMAPS, ObjectKey(namespace, "b"), {"data": {"x": "2"}})
            record.wait_for("MODIFIED", "b")
        assert record.seen() == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "b")]
        assert all(rv for rv in watched_from)  # always resumed, never from "now" or ""


def test_reflector_survives_an_apiserver_restart(clusters: Clusters) -> None:
    consumer = clusters.consumer
    with (
        KubeClient.from_kubeconfig_file(consumer.kubeconfig) as client,
        scratch_namespace(client) as namespace,
    ):
        label = {TEST_LABEL: namespace}
        client.create(CONFIGMAPS, configmap("before", namespace, label, a="0"))
        record = Recorder()
        reflector = labelled_configmaps(client, namespace, record, "restart", backoff=(0.1, 1.0))
        with running(reflector):
            record.wait_for("ADDED", "before")
            consumer.restart_apiserver(crash=True)  # open connections break without a goodbye

            client.create(CONFIGMAPS, configmap("after", namespace, label, a="1"))
            record.wait_for("ADDED", "after", timeout=60)
            client.patch(CONFIGMAPS, ObjectKey(namespace, "before"), {"data": {"a": "1"}})
            _, new = record.wait_for("MODIFIED", "before", timeout=60)
            assert new is not None and new["data"] == {"a": "1"}
            assert reflector.get(ObjectKey(namespace, "after")) == client.get(
                CONFIGMAPS, ObjectKey(namespace, "after")
            )
        # Nothing still there is reported deleted, nothing is reported twice.
        assert record.seen() == [("ADDED", "before"), ("ADDED", "after"), ("MODIFIED", "before")]


def test_reflector_reports_a_delete_it_missed_while_partitioned(
    provider: Cluster, admin: KubeClient, namespace: str
) -> None:
    """The delete happens while the reflector cannot reach the server, and the history it would
    resume from is compacted away: the watch gets 410, and the relist reports the delete."""
    label = {TEST_LABEL: namespace}
    admin.create(CONFIGMAPS, configmap("doomed", namespace, label, a="0"))
    admin.create(CONFIGMAPS, configmap("kept", namespace, label, a="0"))
    relay = Relay(provider.port)
    creds = credentials_of(provider.kubeconfig_text())
    via_relay = Credentials(
        server=f"https://127.0.0.1:{relay.port}",
        certificate_authority_data=creds.certificate_authority_data,
        client_certificate_data=creds.client_certificate_data,
        client_key_data=creds.client_key_data,
    )
    record = Recorder()
    errors: list[Exception] = []
    with KubeClient.from_credentials(via_relay) as client:
        reflector = labelled_configmaps(
            client, namespace, record, "partitioned", backoff=(0.1, 1.0), on_error=errors.append
        )
        try:
            with running(reflector):
                last_known = reflector.get(ObjectKey(namespace, "doomed"))
                relay.cut()
                admin.delete(CONFIGMAPS, ObjectKey(namespace, "doomed"))
                admin.patch(CONFIGMAPS, ObjectKey(namespace, "kept"), {"data": {"a": "1"}})
                conformance = RealClient(provider, namespace)
                try:
                    conformance.compact()  # etcd compaction + apiserver restart
                finally:
                    conformance.close()
                eventually(lambda: errors, 30, "the reflector reports the partition")
                assert record.seen() == [("ADDED", "doomed"), ("ADDED", "kept")]
                relay.heal()

                old, new = record.wait_for("DELETED", "doomed", timeout=60)
                assert new is None and old == last_known
                _, kept = record.wait_for("MODIFIED", "kept", timeout=60)
                assert kept is not None and kept["data"] == {"a": "1"}
                assert reflector.relists >= 1  # the 410 path: history was gone
                assert [o["metadata"]["name"] for o in reflector.items()] == ["kept"]
        finally:
            relay.close()


def test_reflector_stops_promptly(admin: KubeClient, namespace: str) -> None:
    record = Recorder()
    reflector = Reflector(admin, CONFIGMAPS, on_event=record, name="stopper", watch_timeout=300)
    reflector.start()
    assert reflector.synced.wait(30)
    assert reflector.stop(10)  # joined: its watch (300 s) was cut short
    # Handlers run only on the reflector's thread, which is gone: no event can follow.
    assert "reflector-stopper" not in [t.name for t in threading.enumerate()]

    # Also while it waits to retry an unreachable server.
    with KubeClient.from_credentials(
        Credentials(server=f"https://127.0.0.1:{closed_port()}")
    ) as dead:
        seen: list[Exception] = []
        stuck = Reflector(dead, CONFIGMAPS, on_event=record, name="dead", on_error=seen.append)
        stuck.start()
        eventually(lambda: seen, 10, "the first failure is reported")
        assert stuck.stop(10)  # joined while it waited to retry
    assert not stuck.synced.is_set()
    assert isinstance(seen[0], ApiError) and seen[0].is_unreachable
