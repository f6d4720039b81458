"""``POST /api/apply``: the gateway applies a bind's bundle to the consumer cluster itself, for a
caller who hands it the consumer's kubeconfig (docs/service-layer.md, "Applying for the
caller"). Off unless ``--enable-apply``.

Why off by default: the gateway then opens a connection to an address the caller chooses,
from inside the provider's network, carrying the provider credentials of the bundle. Anyone
admitted could point it at an internal address (server-side request forgery); only a provider
whose gateway may reach every consumer, and nothing it should not, turns it on.

Rules:

1. The consumer kubeconfig is checked exactly as the konnector checks a provider's and
   ``kubectl bind`` a consumer's (``kbcore.views.bundle.single_context``, which runs
   ``kbcore.control.kubeconfig.sanitize``): no exec or auth-provider plugin, no file path,
   one usable context; a refusal names the rule broken.
2. The bundle carries the provider's credentials, so they must not travel in clear or to
   whoever answers: a consumer kubeconfig with a plain ``http://`` server or
   ``insecure-skip-tls-verify`` is refused (``transport_warning``), though the konnector would
   only warn.
3. Everything about the request is checked before anything is spent: a bad kubeconfig takes no
   pickup and makes no bind.
4. Each object is applied server-side (field manager ``kube-bind-gateway``, conflicts forced, as
   ``kubectl apply --server-side --force-conflicts``), in the bundle's order; a refusal stops
   there and says which objects were applied before it.
5. The consumer kubeconfig is never logged or stored: it lives in the request's memory only,
   and its client is closed when the request ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs
import yaml

from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CONNECTIONS, SECRETS
from kbcore.control.kubeconfig import Credentials, SecretProblem, sanitize, transport_warning
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.views.bundle import single_context
from kbshell.client import KubeClient

FIELD_MANAGER = "kube-bind-gateway"
KINDS: dict[tuple[str, str], GVR] = {
    (gvr.api_version, kind): gvr
    for kind, gvr in (
        ("Secret", SECRETS),
        ("Connection", CONNECTIONS),
        ("ClusterBinding", CLUSTERBINDINGS),
        ("Binding", BINDINGS),
    )
}
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0


class ApplyRefusedError(Exception):
    """The request cannot be carried out; ``status`` and ``error`` for the gateway's answer."""

    def __init__(self, status: int, error: str, message: str, applied: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.applied = list(applied)


def consumer_credentials(value: Any) -> Credentials:
    """Rules 1 and 2: the consumer kubeconfig (a JSON object, or YAML text) as credentials."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ApplyRefusedError(
                400, "invalid_kubeconfig", "kubeconfig is not YAML (or JSON)"
            ) from err
    if not isinstance(value, dict):
        raise ApplyRefusedError(
            400, "invalid_kubeconfig", "kubeconfig must be a kubeconfig object or its YAML text"
        )
    single = single_context(value)
    creds = sanitize(single) if not isinstance(single, SecretProblem) else single
    if isinstance(creds, SecretProblem):
        raise ApplyRefusedError(
            422, "invalid_kubeconfig",
            f"the consumer kubeconfig is refused: {creds.message.replace('konnector', 'gateway')}",
        )  # fmt: skip
    insecure = transport_warning(creds)
    if insecure:
        raise ApplyRefusedError(
            422, "insecure_consumer",
            "the bundle carries the provider's credentials, which must reach only your cluster, "
            f"verified: {insecure.split(': ', 1)[0]}; give the consumer's https:// address and "
            "its certificate-authority-data",
        )  # fmt: skip
    return creds


def _ref(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": str(obj.get("apiVersion", "")), "kind": str(obj.get("kind", "")),
           "name": str(meta.get("name", ""))}  # fmt: skip
    if meta.get("namespace"):
        ref["namespace"] = str(meta["namespace"])
    return ref


def _describe(obj: dict[str, Any]) -> str:
    ref = _ref(obj)
    where = f"{ref['namespace']}/{ref['name']}" if "namespace" in ref else ref["name"]
    return f"{ref['kind']} {where}"


def check_bundle(objects: Sequence[dict[str, Any]]) -> list[GVR]:
    """The resource of each bundle object (a kind the gateway cannot apply is refused)."""
    out = []
    for obj in objects:
        gvr = KINDS.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
        if gvr is None:
            raise ApplyRefusedError(
                409, "not_applicable",
                f"the bundle holds a {obj.get('kind')} ({obj.get('apiVersion')}), which the "
                "gateway does not apply; fetch the pickup URL and apply it yourself",
            )  # fmt: skip
        out.append(gvr)
    return out


class Consumer(Protocol):
    def patch(
        self, gvr: GVR, key: ObjectKey, body: Any, patch_type: Any, field_manager: str, force: bool
    ) -> Any: ...

    def close(self) -> None: ...


def connect(creds: Credentials) -> Consumer:
    """A client of the consumer cluster as the kubeconfig's user."""
    try:
        client = KubeClient.from_credentials(creds, user_agent="kube-bind-backend")
    except ValueError as err:
        raise ApplyRefusedError(
            422, "invalid_kubeconfig", f"the consumer kubeconfig is not usable: {err}"
        ) from err
    client.connect_timeout, client.read_timeout = CONNECT_TIMEOUT, READ_TIMEOUT
    return client


@attrs.frozen
class Applier:
    """Rule 4 over ``connect`` (the real client; tests pass a fake)."""

    connect: Callable[[Credentials], Consumer] = connect

    def apply(self, creds: Credentials, objects: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
        resources = check_bundle(objects)
        consumer = self.connect(creds)
        applied: list[dict[str, str]] = []
        try:
            for gvr, obj in zip(resources, objects, strict=True):
                meta = obj.get("metadata") or {}
                key = ObjectKey(str(meta.get("namespace", "")), str(meta.get("name", "")))
                try:
                    consumer.patch(gvr, key, obj, "apply", FIELD_MANAGER, True)
                except ApiError as err:
                    what = _describe(obj)
                    if err.is_unreachable:
                        raise ApplyRefusedError(
                            502, "consumer_unreachable",
                            f"cannot reach the consumer cluster to apply {what}: {err.message}",
                            applied,
                        ) from err  # fmt: skip
                    raise ApplyRefusedError(
                        422, "apply_refused",
                        f"the consumer cluster refused {what} ({err.code} {err.reason}): "
                        f"{err.message}",
                        applied,
                    ) from err  # fmt: skip
                applied.append(_ref(obj))
        finally:
            consumer.close()
        return applied
