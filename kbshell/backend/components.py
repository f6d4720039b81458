"""What one `kube-bind-backend` process runs besides the gateway: the provider issuer behind it
and the issuer's controllers, their flags, their provider client and their probes.

Rules:

 1. ``--run`` names the components, comma-separated: ``gateway``, ``grants`` (`GrantsIssuer`:
    Exports, Collections, Grants) and ``claims`` (`ClaimsIssuer`: BoundNamespace claims);
    ``issuer`` is ``grants,claims``. By default ``--issuer=provider`` runs all three and
    ``--issuer=static:FILE`` only the gateway.
 2. The controllers and ``--issuer=provider`` talk to the provider as the backend's own
    credentials: ``--provider-kubeconfig``, or the pod's ServiceAccount (in-cluster) without it.
 3. ``--issuer=provider`` hands consumers the provider's EXTERNAL address and CA
    (``--provider-server``, required; ``--provider-ca-file``), never the address the backend
    itself uses, which is often a cluster-internal one.
 4. ``/healthz`` and ``/readyz`` (kube style, `kbshell.ops.server`) on
    ``--health-probe-bind-address``; ready once every running controller's caches synced.
    ``/metrics`` (`kbshell.backend.metrics`) on the same listener, or on
    ``--metrics-bind-address`` when given.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from kbshell.backend.issuer import ClaimsIssuer, GrantsIssuer
from kbshell.backend.provider_issuer import DEFAULT_TIMEOUT, ProviderIssuer
from kbshell.client import KubeClient
from kbshell.ops.server import Probes, ready_when_synced

GATEWAY, GRANTS, CLAIMS = "gateway", "grants", "claims"
COMPONENTS = (GATEWAY, GRANTS, CLAIMS)
ALIASES = {"issuer": (GRANTS, CLAIMS)}


class ComponentsError(ValueError):
    """The flags cannot work (the caller exits 2 with this message)."""


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--run",
        default=None,
        help="components to run, comma-separated: gateway, grants, claims (issuer = "
        "grants,claims); default: all with --issuer=provider, the gateway with static:FILE",
    )
    p.add_argument(
        "--provider-kubeconfig",
        default=None,
        help="the backend's own credentials for the provider cluster (default: in-cluster)",
    )
    p.add_argument(
        "--provider-server",
        default=None,
        help="the provider API server's address as consumers reach it (put in the bundles' "
        "kubeconfigs); required with --issuer=provider",
    )
    p.add_argument(
        "--provider-ca-file",
        default=None,
        help="PEM CA consumers verify --provider-server with (default: none, the system's)",
    )
    p.add_argument(
        "--bind-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="how long a bind waits for the issuer to issue the Grant's token",
    )
    p.add_argument(
        "--health-probe-bind-address",
        default=":8081",
        help="host:port of /healthz and /readyz (0 disables them)",
    )
    p.add_argument(
        "--metrics-bind-address",
        default=None,
        help="host:port of /metrics (0 disables it); default: the probes' listener serves it",
    )


def parse_run(value: str | None, issuer_kind: str) -> frozenset[str]:
    """Rule 1."""
    if value is None:
        return frozenset(COMPONENTS if issuer_kind == "provider" else (GATEWAY,))
    out: set[str] = set()
    for part in (x.strip() for x in value.split(",")):
        if part in ALIASES:
            out.update(ALIASES[part])
        elif part in COMPONENTS:
            out.add(part)
        else:
            raise ComponentsError(
                f"--run: {part!r} is not a component (gateway, grants, claims, issuer)"
            )
    return frozenset(out)


def provider_client(kubeconfig: str | None) -> KubeClient:
    """Rule 2."""
    try:
        if kubeconfig is None:
            return KubeClient.in_cluster(user_agent="kube-bind-backend")
        return KubeClient.from_kubeconfig_file(kubeconfig, user_agent="kube-bind-backend")
    except Exception as err:  # the kubernetes loader raises its own types
        where = "--provider-kubeconfig" + (f" {kubeconfig}" if kubeconfig else " (in-cluster)")
        raise ComponentsError(f"{where}: cannot load the provider's credentials: {err}") from err


def provider_issuer(
    provider: KubeClient, server: str | None, ca_file: str | None, timeout: float
) -> ProviderIssuer:
    """Rule 3."""
    if not server or not server.startswith("https://"):
        raise ComponentsError(
            "--issuer=provider needs --provider-server: the provider's https:// address as "
            "consumers reach it"
        )
    if timeout <= 0:
        raise ComponentsError("--bind-timeout must be positive")
    ca = ""
    if ca_file is not None:
        try:
            ca = Path(ca_file).read_text()
        except OSError as err:
            raise ComponentsError(f"--provider-ca-file: cannot read {ca_file}: {err}") from err
        if "-----BEGIN CERTIFICATE-----" not in ca:
            raise ComponentsError(f"--provider-ca-file: {ca_file} holds no PEM certificate")
    return ProviderIssuer(provider, server=server.rstrip("/"), ca_pem=ca, timeout=timeout)


class Controllers:
    """The issuer's controllers that `--run` names, on one provider client."""

    def __init__(self, provider: KubeClient, run: Iterable[str]) -> None:
        chosen = set(run)
        self.running: list[GrantsIssuer | ClaimsIssuer] = []
        if GRANTS in chosen:
            self.running.append(GrantsIssuer(provider))
        if CLAIMS in chosen:
            self.running.append(ClaimsIssuer(provider))

    def unsynced(self) -> list[str]:
        return [
            r.name for c in self.running for r in c.controller.reflectors if not r.synced.is_set()
        ]

    def probes(self) -> Probes:
        """Rule 4."""
        return Probes(readiness={"caches": ready_when_synced(self.unsynced)})

    def start(self) -> None:
        for c in self.running:
            c.start()

    def stop(self) -> None:
        for c in self.running:
            c.stop()
