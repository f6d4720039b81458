"""The token controller and the service-account token authenticator (kbsim/apiserver/controllers.py).

As kube-controller-manager's TokensController and kube-apiserver's service-account
authenticator: a token Secret of an existing ServiceAccount gets its token, CA and namespace;
that token is the ServiceAccount while both exist, and refused (401) afterwards.
"""

from __future__ import annotations

import base64

import pytest

from kbcore.api.resources import NAMESPACES, SECRETS, SERVICE_ACCOUNTS
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbsim.apiserver import APIServer
from kbsim.rbac import User
from tests.unit.kbsim.conftest import Clock

TOKEN_TYPE = "kubernetes.io/service-account-token"


def server_with_sa() -> APIServer:
    server = APIServer("p", clock=Clock(), seed=1)
    server.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
    server.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                     "metadata": {"name": "sa", "namespace": "t"}})  # fmt: skip
    return server


def token_secret(name: str = "sa-token", sa: str = "sa") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "t",
                     "annotations": {"kubernetes.io/service-account.name": sa}},
        "type": TOKEN_TYPE,
    }  # fmt: skip


def settle(server: APIServer) -> None:
    while server.tick():
        pass


def token_of(server: APIServer, name: str = "sa-token") -> str:
    data = server.get(SECRETS, ObjectKey("t", name))["data"]
    return base64.b64decode(data["token"]).decode()


def test_a_token_secret_gets_token_ca_and_namespace() -> None:
    server = server_with_sa()
    server.create(SECRETS, token_secret())
    settle(server)
    secret = server.get(SECRETS, ObjectKey("t", "sa-token"))
    assert set(secret["data"]) == {"token", "ca.crt", "namespace"}
    assert base64.b64decode(secret["data"]["namespace"]) == b"t"
    assert b"BEGIN CERTIFICATE" in base64.b64decode(secret["data"]["ca.crt"])
    uid = server.get(SERVICE_ACCOUNTS, ObjectKey("t", "sa"))["metadata"]["uid"]
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == uid
    assert not server.pending_work()  # filled once, never rewritten


def test_the_token_authenticates_as_the_service_account() -> None:
    server = server_with_sa()
    server.create(SECRETS, token_secret())
    settle(server)
    assert server.authenticate(token_of(server)) == User(
        "system:serviceaccount:t:sa", ("system:serviceaccounts", "system:serviceaccounts:t")
    )
    assert server.authenticate("kbsim-sa-token.t.sa-token.forged") is None
    assert server.authenticate("alice") is None  # not a minted token: the world names the user


def test_a_token_secret_without_its_service_account_is_deleted() -> None:
    server = server_with_sa()
    server.create(SECRETS, token_secret("orphan", sa="nobody"))
    settle(server)
    with pytest.raises(ApiError) as err:
        server.get(SECRETS, ObjectKey("t", "orphan"))
    assert err.value.code == 404


def test_deleting_the_service_account_kills_the_token() -> None:
    server = server_with_sa()
    server.create(SECRETS, token_secret())
    settle(server)
    token = token_of(server)
    server.delete(SERVICE_ACCOUNTS, ObjectKey("t", "sa"))
    assert server.authenticate(token) is None  # at once, before the controller runs
    settle(server)
    with pytest.raises(ApiError):
        server.get(SECRETS, ObjectKey("t", "sa-token"))


def test_a_request_with_a_dead_token_is_refused_with_401() -> None:
    server = server_with_sa()
    server.create(SECRETS, token_secret())
    settle(server)
    dead = User(token_of(server))  # what the world passes on for a token nobody accepts
    server.delete(SECRETS, ObjectKey("t", "sa-token"))
    with pytest.raises(ApiError) as err:
        server.get(NAMESPACES, ObjectKey("", "t"), user=dead)
    assert (err.value.code, err.value.reason) == (401, "Unauthorized")
