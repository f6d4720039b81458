"""`backend_rules(reap)` (kbcore/service/backend_rbac.py rule 9): the reaper's mode adds exactly
what the reaper does, and nothing when it is off."""

from __future__ import annotations

import pytest

from kbcore.service.backend_rbac import backend_rules
from kbcore.service.reaper import ReapMode

Allowed = set[tuple[str, str, str, tuple[str, ...]]]


def allowed(mode: ReapMode | None) -> Allowed:
    return {(r.group, r.resource, v, r.names) for r in backend_rules(mode) for v in r.verbs}


def test_off_grants_no_lease_and_no_grant_deletion() -> None:
    off = allowed(None)
    assert not [a for a in off if a[1] == "leases"]
    assert ("iam.kube-bind.io", "grants", "delete", ()) not in off


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        (ReapMode.DRY_RUN, {("coordination.k8s.io", "leases", "list", ())}),
        (ReapMode.REVOKE, {("coordination.k8s.io", "leases", "list", ())}),
        (
            ReapMode.DELETE,
            {
                ("coordination.k8s.io", "leases", "list", ()),
                ("iam.kube-bind.io", "grants", "delete", ()),
            },
        ),
    ],
)
def test_each_mode_adds_exactly_what_the_reaper_does(mode: ReapMode, extra: Allowed) -> None:
    """Revoke writes `grants/status`, which the issuer already holds; a dry run only reads."""
    assert allowed(mode) - allowed(None) == extra
    assert allowed(None) <= allowed(mode)
    assert ("iam.kube-bind.io", "grants/status", "update", ()) in allowed(None)
