"""What `kube-bind-backend --run` starts (kbshell/backend/components.py, rule 1)."""

from __future__ import annotations

import pytest

from kbshell.backend.components import ComponentsError, parse_run


def test_by_default_the_provider_issuer_runs_everything_and_static_only_the_gateway() -> None:
    assert parse_run(None, "provider") == {"gateway", "grants", "claims"}
    assert parse_run(None, "static") == {"gateway"}


@pytest.mark.parametrize(
    ("value", "run"),
    [
        ("gateway", {"gateway"}),
        ("issuer", {"grants", "claims"}),
        ("gateway,issuer", {"gateway", "grants", "claims"}),
        ("grants, gateway", {"gateway", "grants"}),
        ("claims,claims", {"claims"}),
    ],
)
def test_run_names_components_and_issuer_is_both_controllers(value: str, run: set[str]) -> None:
    assert parse_run(value, "provider") == run


@pytest.mark.parametrize("value", ["", "gateway,", "Gateway", "reaper-x"])
def test_an_unknown_component_is_refused(value: str) -> None:
    with pytest.raises(ComponentsError, match="is not a component"):
        parse_run(value, "provider")
