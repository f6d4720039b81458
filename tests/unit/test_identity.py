"""Cluster identity (upstream's unit test, e2e step 26; kbcore/identity.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.errors import ApiError
from kbcore.identity import IdentityUnknown, identity_reads, resolve_identity
from kbcore.reads import Failed, Missing

CLUSTER = "provider"
LOGICAL, KUBE_SYSTEM = identity_reads(CLUSTER)
FORBIDDEN = ApiError(403, "Forbidden", 'User "bob" cannot get resource "logicalclusters"')
NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource")


def obj(name: str, uid: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid}}


def resolve(logical: Any, kube_system: Any) -> str:
    return resolve_identity({LOGICAL: logical, KUBE_SYSTEM: kube_system}, CLUSTER)


def test_plain_cluster_is_identified_by_kube_system() -> None:
    assert resolve(None, obj("kube-system", "ks-uid")) == "ks-uid"


def test_kcp_workspace_is_identified_by_its_logical_cluster() -> None:
    assert resolve(obj("cluster", "lc-uid"), None) == "lc-uid"


def test_logical_cluster_wins_when_both_exist() -> None:
    assert resolve(obj("cluster", "lc-uid"), obj("kube-system", "ks-uid")) == "lc-uid"


def test_neither_is_an_error_naming_both() -> None:
    with pytest.raises(IdentityUnknown) as err:
        resolve(None, None)
    msg = str(err.value)
    assert "cannot determine cluster identity" in msg
    assert "LogicalCluster" in msg and "kube-system" in msg


def test_objects_without_uid_do_not_identify() -> None:
    assert resolve(obj("cluster", ""), obj("kube-system", "ks-uid")) == "ks-uid"
    with pytest.raises(IdentityUnknown, match="has no uid"):
        resolve(None, obj("kube-system", ""))


def test_forbidden_logical_cluster_read_is_raised_not_skipped() -> None:
    # Falling through would identify the same cluster differently depending on RBAC.
    with pytest.raises(ApiError) as err:
        resolve(Failed(FORBIDDEN), obj("kube-system", "ks-uid"))
    assert err.value.code == 403


def test_forbidden_kube_system_read_is_raised() -> None:
    with pytest.raises(ApiError) as err:
        resolve(None, Failed(ApiError(403, "Forbidden", "no")))
    assert err.value.code == 403


def test_other_failures_are_raised() -> None:
    with pytest.raises(ApiError) as err:
        resolve(Failed(ApiError(503, "ServiceUnavailable", "down")), obj("kube-system", "ks"))
    assert err.value.code == 503


def test_404_failure_counts_as_absent() -> None:
    # A plain cluster answers the LogicalCluster GET with 404 (resource not served).
    assert resolve(Failed(NOT_FOUND), obj("kube-system", "ks-uid")) == "ks-uid"
    with pytest.raises(IdentityUnknown):
        resolve(Failed(NOT_FOUND), Failed(NOT_FOUND))


def test_both_reads_are_asked_for_in_one_round() -> None:
    with pytest.raises(Missing) as m:
        resolve_identity({}, CLUSTER)
    assert set(m.value.reads) == {LOGICAL, KUBE_SYSTEM}
    with pytest.raises(Missing) as m:
        resolve_identity({LOGICAL: obj("cluster", "lc-uid")}, CLUSTER)
    assert m.value.reads == (KUBE_SYSTEM,)


def test_reads_address_the_named_cluster() -> None:
    assert {r.cluster for r in identity_reads("consumer")} == {"consumer"}
    assert LOGICAL.gvr.group == "core.kcp.io" and LOGICAL.key.name == "cluster"
    assert KUBE_SYSTEM.gvr.resource == "namespaces" and KUBE_SYSTEM.key.name == "kube-system"
