"""The dev/demo issuer behind `--issuer=static:FILE`: what it serves and what it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kbshell.backend.issuing import BindRefused, CatalogEntry, Identity
from kbshell.backend.static_issuer import StaticIssuer, StaticIssuerError

ALICE = Identity("https://op", "alice-id", "alice@example.com")
BOB = Identity("https://op", "bob-id", "bob@example.com")
FILE = """
catalog:
  - {kind: Export, name: widgets, title: Widgets, apis: [widgets.example.com]}
  - {kind: Export, name: gadgets, visibleTo: [alice@example.com]}
  - {kind: Collection, name: all, description: everything}
bundles:
  widgets: [{apiVersion: v1, kind: Secret, metadata: {name: s}}]
  gadgets: [{apiVersion: v1, kind: Secret, metadata: {name: g}}]
  all: [{apiVersion: v1, kind: Secret, metadata: {name: a}}]
"""


@pytest.fixture
def issuer(tmp_path: Path) -> StaticIssuer:
    path = tmp_path / "issuer.yaml"
    path.write_text(FILE)
    return StaticIssuer.from_file(path)


def test_each_identity_sees_what_it_may(issuer: StaticIssuer) -> None:
    assert [e.name for e in issuer.catalog(ALICE)] == ["widgets", "gadgets", "all"]
    assert [e.name for e in issuer.catalog(BOB)] == ["widgets", "all"]
    assert issuer.catalog(BOB)[0] == CatalogEntry(
        "Export", "widgets", "Widgets", apis=("widgets.example.com",)
    )


def test_bind_hands_out_a_copy_of_the_bundle(issuer: StaticIssuer) -> None:
    first = issuer.bind(ALICE, "widgets", "uid")
    first[0]["metadata"]["name"] = "changed"
    assert issuer.bind(BOB, "widgets", "uid") == [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    ]


@pytest.mark.parametrize(("who", "export"), [(BOB, "gadgets"), (ALICE, "nope"), (ALICE, "all")])
def test_an_invisible_missing_or_collection_export_is_refused_alike(
    issuer: StaticIssuer, who: Identity, export: str
) -> None:
    with pytest.raises(BindRefused) as refused:
        issuer.bind(who, export, "uid")
    assert refused.value.reason == "UnknownExport"
    assert refused.value.message == f"there is no export {export!r} to bind"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a", "the file must hold a mapping with catalog and bundles"),
        ("catalog: {}", "catalog must be a list"),
        ("catalog: [{kind: Thing, name: x}]", "catalog[0].kind must be Export or Collection"),
        ("catalog: [{title: x}]", "catalog[0].name must be a non-empty string"),
        ("catalog: [{name: x, apis: x}]", "catalog[0].apis must be a list of strings"),
        ("catalog: [{name: x, visibleTo: [1]}]", "catalog[0].visibleTo must be a list of strings"),
        ("bundles: {x: [1]}", "bundles must map export names to lists of objects"),
        ("catalog: [", "is not YAML"),
    ],
)
def test_a_bad_file_is_refused_saying_what_is_wrong(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "issuer.yaml"
    path.write_text(text)
    with pytest.raises(StaticIssuerError, match=re.escape(message)):
        StaticIssuer.from_file(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StaticIssuerError, match=r"cannot read .*: No such file or directory"):
        StaticIssuer.from_file(tmp_path / "nope.yaml")
