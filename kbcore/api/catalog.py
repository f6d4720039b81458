"""The `catalog.kube-bind.io/v1alpha1` API: what a provider offers to consumers.

The provider's administrator writes Exports (one service: the provider CRDs it consists of and
the binding defaults a consumer gets) and Collections (a named group of Exports). The issuer
reads them to show the catalog and to issue Grants (`kbcore.api.iam`), and writes their status.
Both kinds are cluster-scoped. docs/service-layer.md describes the whole service layer.

Same conventions and field metadata vocabulary as `kbcore.api.types` (see its docstring): class
docstrings and field descriptions are API documentation that ends up in the CRDs in
`crds/service/`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from kbcore.api.keys import CATALOG_GROUP
from kbcore.api.types import (
    AGE_COLUMN,
    CONDITIONS_SCHEMA,
    METADATA_FIELD,
    READY_COLUMN,
    Condition,
    ConflictPolicy,
    KindInfo,
    ObjectMeta,
    PrinterColumn,
    RelatedResource,
    SchemaPolicy,
    Scope,
    field_meta,
)

# A CRD's group needs at least one dot (the API server refuses a CRD whose group has none), so
# an exportable group is a DNS subdomain with two or more labels; a CRD's plural is a DNS label.
GROUP_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
RESOURCE_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# http or https and nothing else: a catalog shows these as links and images, so `javascript:`,
# `data:` and `file:` URLs must never get in. The host takes no userinfo (no credentials in a
# URL) and the rest only the characters RFC 3986 allows unescaped.
URL_PATTERN = (
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*)?$"
)
URL_MAX_LENGTH = 2048
TITLE_MAX_LENGTH = 128
DESCRIPTION_MAX_LENGTH = 4096


def _title(what: str) -> dict[str, Any]:
    return field_meta(
        f"title is the {what}'s name as a catalog shows it.",
        schema={"minLength": 1, "maxLength": TITLE_MAX_LENGTH},
    )


def _description(what: str) -> dict[str, Any]:
    return field_meta(
        f"description says what the {what} provides, in plain text.",
        schema={"maxLength": DESCRIPTION_MAX_LENGTH},
    )


# ---------------------------------------------------------------------------------------------
# Export.


@attrs.frozen(kw_only=True)
class GroupResource:
    """GroupResource names one provider CRD by its group and plural resource name; the API's
    name is "<resource>.<group>", the CRD's name."""

    group: str = attrs.field(
        metadata=field_meta(
            "group of the API, a DNS subdomain with at least one dot.",
            schema={"maxLength": 253, "pattern": GROUP_PATTERN},
        )
    )
    resource: str = attrs.field(
        metadata=field_meta(
            "resource is the plural resource name, a DNS label.",
            schema={"maxLength": 63, "pattern": RESOURCE_PATTERN},
        )
    )

    @property
    def api_name(self) -> str:
        """The CRD name, "<resource>.<group>", as bindings and Connections name the API."""
        return f"{self.resource}.{self.group}"


@attrs.frozen(kw_only=True)
class ExportSpec:
    """ExportSpec is one service a provider offers: the APIs it consists of, how the catalog
    presents it, and the defaults copied into the binding and Connection a consumer gets."""

    title: str = attrs.field(metadata=_title("service"))
    description: str = attrs.field(default="", metadata=_description("service"))
    docs_url: str = attrs.field(
        default="",
        metadata=field_meta(
            "docsURL links to the service's documentation: an http or https URL.",
            json="docsURL",
            schema={"maxLength": URL_MAX_LENGTH, "pattern": URL_PATTERN},
        ),
    )
    icon_url: str = attrs.field(
        default="",
        metadata=field_meta(
            "iconURL is the address of the service's icon: an http or https URL.",
            json="iconURL",
            schema={"maxLength": URL_MAX_LENGTH, "pattern": URL_PATTERN},
        ),
    )
    apis: tuple[GroupResource, ...] = attrs.field(
        metadata=field_meta(
            "apis are the provider CRDs the service consists of, each at most once. A consumer "
            "bound to the service gets all of them.",
            schema={
                "minItems": 1,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["group", "resource"],
            },
        )
    )
    conflict_policy: ConflictPolicy = attrs.field(
        default=ConflictPolicy.FAIL,
        metadata=field_meta(
            "conflictPolicy is copied into the consumer's binding: Fail leaves a foreign "
            "provider object untouched and records a conflict; Adopt takes over an unowned one.",
            server_default=True,
        ),
    )
    related_resources: tuple[RelatedResource, ...] = attrs.field(
        default=(),
        metadata=field_meta(
            "relatedResources are copied into the consumer's binding: the Secrets and "
            "ConfigMaps synced alongside the bound instances."
        ),
    )
    schema: SchemaPolicy = attrs.field(
        factory=SchemaPolicy,
        metadata=field_meta(
            "schema is copied into the consumer's Connection: how the APIs' schemas reach the "
            "consumer.",
            server_default=True,
        ),
    )


@attrs.frozen(kw_only=True)
class ExportStatus:
    """ExportStatus is the observed state of an Export, written by the issuer."""

    conditions: tuple[Condition, ...] = attrs.field(
        default=(),
        metadata=field_meta(
            "conditions: Ready, True when every listed API is served by a CRD on the provider; "
            "else False with reason APINotExported naming the missing APIs. A catalog lists "
            "only Ready Exports.",
            schema=CONDITIONS_SCHEMA,
        ),
    )


@attrs.frozen(kw_only=True)
class Export:
    """Export is one service a provider offers to consumers: a set of provider CRDs, how a
    catalog presents them, and the binding defaults a consumer gets. Written by the provider's
    administrator; cluster-scoped."""

    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Export",
        plural="exports",
        singular="export",
        scope=Scope.CLUSTER,
        group=CATALOG_GROUP,
        printer_columns=(
            PrinterColumn(name="Title", type="string", json_path=".spec.title"),
            READY_COLUMN,
            AGE_COLUMN,
        ),
    )

    metadata: ObjectMeta = attrs.field(factory=ObjectMeta, metadata=METADATA_FIELD)
    spec: ExportSpec
    status: ExportStatus = attrs.field(factory=ExportStatus)


# ---------------------------------------------------------------------------------------------
# Collection.


@attrs.frozen(kw_only=True)
class CollectionSpec:
    """CollectionSpec groups Exports under one title, as a catalog shows them."""

    title: str = attrs.field(metadata=_title("collection"))
    description: str = attrs.field(default="", metadata=_description("collection"))
    exports: tuple[str, ...] = attrs.field(
        metadata=field_meta(
            "exports are the names of the Exports in the collection, each at most once.",
            schema={"minItems": 1, "x-kubernetes-list-type": "set"},
        )
    )


@attrs.frozen(kw_only=True)
class CollectionStatus:
    """CollectionStatus is the observed state of a Collection, written by the issuer."""

    conditions: tuple[Condition, ...] = attrs.field(
        default=(),
        metadata=field_meta(
            "conditions: Ready, True when every listed Export exists; else False with reason "
            "ExportNotFound naming the missing ones.",
            schema=CONDITIONS_SCHEMA,
        ),
    )


@attrs.frozen(kw_only=True)
class Collection:
    """Collection is a named group of Exports a catalog shows together. Written by the
    provider's administrator; cluster-scoped."""

    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Collection",
        plural="collections",
        singular="collection",
        scope=Scope.CLUSTER,
        group=CATALOG_GROUP,
        printer_columns=(
            PrinterColumn(name="Title", type="string", json_path=".spec.title"),
            READY_COLUMN,
            AGE_COLUMN,
        ),
    )

    metadata: ObjectMeta = attrs.field(factory=ObjectMeta, metadata=METADATA_FIELD)
    spec: CollectionSpec
    status: CollectionStatus = attrs.field(factory=CollectionStatus)


CatalogObject = Export | Collection
"""Any object of the `catalog.kube-bind.io` API."""

KINDS: tuple[type[Export] | type[Collection], ...] = (Export, Collection)
"""Every catalog kind, in the order their CRDs are generated."""
