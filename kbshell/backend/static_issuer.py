"""A dev/demo Issuer (`kbshell.backend.issuing`): a fixed catalog and fixed bundles from a file.

``kube-bind-backend --issuer=static:FILE`` serves what FILE (YAML or JSON) says, and mints
nothing: every caller who may see an export gets the same bundle for it. It exists to run and
test the gateway without a provider cluster (and to demo the flow); the real issuer mints a
Grant and credentials per identity. FILE::

    catalog:
      - kind: Export            # or Collection
        name: mangodb
        title: MangoDB
        description: Managed MangoDB instances
        docsURL: https://mangodb.example.com/docs
        iconURL: https://mangodb.example.com/icon.svg
        apis: [mangodbs.mangodb.io]
        visibleTo: [alice@example.com]   # optional: only these emails see (and may bind) it
    bundles:
      mangodb:                  # export name -> the objects handed out, in apply order
        - {apiVersion: v1, kind: Secret, ...}
        - ...

Only an Export with a bundle can be bound; anything else is refused as ``UnknownExport``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import attrs
import yaml

from kbshell.backend.issuing import BindRefused, CatalogEntry, Identity


class StaticIssuerError(ValueError):
    """The static issuer's file is unreadable or not of the documented shape."""


@attrs.frozen
class _Offering:
    entry: CatalogEntry
    visible_to: frozenset[str] | None


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StaticIssuerError(f"{where} must be a list of strings")
    return tuple(value)


def _offering(raw: object, i: int) -> _Offering:
    where = f"catalog[{i}]"
    if not isinstance(raw, dict):
        raise StaticIssuerError(f"{where} must be a mapping")
    kind, name = raw.get("kind", "Export"), raw.get("name")
    if kind not in ("Export", "Collection"):
        raise StaticIssuerError(f"{where}.kind must be Export or Collection, not {kind!r}")
    if not isinstance(name, str) or not name:
        raise StaticIssuerError(f"{where}.name must be a non-empty string")
    texts = {}
    for field in ("title", "description", "docsURL", "iconURL"):
        value = raw.get(field, "")
        if not isinstance(value, str):
            raise StaticIssuerError(f"{where}.{field} must be a string")
        texts[field] = value
    visible = raw.get("visibleTo")
    entry = CatalogEntry(
        kind=kind,
        name=name,
        title=texts["title"],
        description=texts["description"],
        docs_url=texts["docsURL"],
        icon_url=texts["iconURL"],
        apis=_str_list(raw.get("apis", []), f"{where}.apis"),
    )
    who = None if visible is None else frozenset(_str_list(visible, f"{where}.visibleTo"))
    return _Offering(entry, who)


class StaticIssuer:
    def __init__(
        self, offerings: list[_Offering], bundles: dict[str, list[dict[str, Any]]]
    ) -> None:
        self._offerings = offerings
        self._bundles = bundles

    @classmethod
    def from_document(cls, doc: object) -> StaticIssuer:
        if not isinstance(doc, dict):
            raise StaticIssuerError("the file must hold a mapping with catalog and bundles")
        catalog, bundles = doc.get("catalog", []), doc.get("bundles", {})
        if not isinstance(catalog, list):
            raise StaticIssuerError("catalog must be a list")
        if not isinstance(bundles, dict) or not all(
            isinstance(objs, list) and all(isinstance(o, dict) for o in objs)
            for objs in bundles.values()
        ):
            raise StaticIssuerError("bundles must map export names to lists of objects")
        return cls([_offering(raw, i) for i, raw in enumerate(catalog)], bundles)

    @classmethod
    def from_file(cls, path: str | Path) -> StaticIssuer:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise StaticIssuerError(f"cannot read {path}: {err.strerror or err}") from err
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise StaticIssuerError(f"{path} is not YAML: {err}") from err
        try:
            return cls.from_document(doc)
        except StaticIssuerError as err:
            raise StaticIssuerError(f"{path}: {err}") from err

    def _visible(self, identity: Identity) -> list[CatalogEntry]:
        return [
            o.entry
            for o in self._offerings
            if o.visible_to is None or identity.email in o.visible_to
        ]

    def catalog(self, identity: Identity) -> list[CatalogEntry]:
        return self._visible(identity)

    def bind(
        self, identity: Identity, export: str, consumer_cluster_uid: str, *, namespace: str = ""
    ) -> list[dict[str, Any]]:
        exports = {e.name for e in self._visible(identity) if e.kind == "Export"}
        if export not in exports or export not in self._bundles:
            raise BindRefused("UnknownExport", f"there is no export {export!r} to bind")
        if namespace:
            # Its bundles are fixed: it cannot make the Binding asked for.
            raise BindRefused("Invalid", "this provider hands out fixed bundles: bind without "
                              "a namespace")  # fmt: skip
        return copy.deepcopy(self._bundles[export])
