"""`kube-bind-backend`: the provider's gateway (kbshell.backend.gateway) under uvicorn, and the
issuer's controllers (kbshell.backend.issuer) beside it in the same process.

Flags name the components to run (``--run``, `kbshell.backend.components`), where the gateway
listens, the OIDC provider and client it logs callers in with, the URL callers reach it at, the
issuer behind it (``provider``: `kbshell.backend.provider_issuer`; ``static:FILE``: the dev one),
the session store (``memory`` for one replica, a ``redis://`` URL for several) and the
per-identity bind rate limit. Bad flags are exit status 2 with one line saying what to fix; an
unusable OIDC provider or store at start-up is exit status 1 after a JSON log line. Logs are
JSON lines like the konnector's (kbshell.ops.logs), with no request paths that carry tokens and
no query strings (the gateway's own access log; uvicorn's is off).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import signal
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from kbshell.backend import components
from kbshell.backend.admission import Admission
from kbshell.backend.apply import Applier
from kbshell.backend.gateway import Gateway, GatewayConfig, make_app
from kbshell.backend.issuing import Issuer
from kbshell.backend.metrics import GatewayMetrics
from kbshell.backend.oidc import OidcClient, OidcError, OidcProvider
from kbshell.backend.reaper import Reaper, reap_settings
from kbshell.backend.sessions import MemoryStore, RedisStore, SessionStore
from kbshell.backend.static_issuer import StaticIssuer, StaticIssuerError
from kbshell.client import KubeClient
from kbshell.ops.logs import configure_logging
from kbshell.ops.server import ListenError, OpsServer, Probes, parse_bind_address

log = logging.getLogger("gateway")
PROG = "kube-bind-backend"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class UsageError(ValueError):
    """The flags cannot work; exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="The provider's gateway: OIDC login, the catalog, bind and one-time "
        "bundle pickup (docs/service-layer.md, Gateway).",
    )
    p.add_argument("--listen-address", default=":8080", help="host:port to serve on")
    p.add_argument(
        "--external-url",
        default=None,
        help="the URL callers reach the gateway at (the OIDC redirect URI is "
        "EXTERNAL_URL/api/callback)",
    )
    p.add_argument("--oidc-issuer-url", default=None)
    p.add_argument("--oidc-client-id", default=None)
    p.add_argument(
        "--oidc-client-secret-file",
        default=None,
        help="file holding the client secret (none: a public client, PKCE alone)",
    )
    p.add_argument(
        "--oidc-accept-audience",
        action="append",
        default=[],
        metavar="CLIENT_ID",
        help="also accept bearer ID tokens issued to this client (e.g. the CLI's); repeatable",
    )
    p.add_argument(
        "--oidc-cli-client-id",
        default=None,
        metavar="CLIENT_ID",
        help="the public OIDC client `kubectl bind` logs in as (shown in /api/provider; its ID "
        "tokens are accepted as bearer tokens)",
    )
    p.add_argument(
        "--oidc-scopes",
        default="openid email profile",
        help="scopes a login asks for (groups is added when --allow-group is given)",
    )
    p.add_argument(
        "--allow-email",
        action="append",
        default=[],
        metavar="EMAIL",
        help="admit this (verified) email; repeatable. With no --allow-* flag, everyone the "
        "OIDC provider vouches for is admitted",
    )
    p.add_argument(
        "--allow-email-domain",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="admit every verified email @DOMAIN; repeatable",
    )
    p.add_argument(
        "--allow-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="admit members of GROUP (the ID token's groups claim); repeatable",
    )
    p.add_argument(
        "--session-store",
        default="memory",
        help='"memory" (one replica) or a redis:// URL (any number of replicas)',
    )
    p.add_argument(
        "--issuer",
        default=None,
        help="what mints bundles: provider (a Grant per caller on the provider cluster, "
        "--provider-*) or static:FILE, the dev/demo issuer (a fixed catalog and bundles)",
    )
    components.add_flags(p)
    p.add_argument(
        "--enable-apply",
        action="store_true",
        help="serve POST /api/apply: the gateway applies a bundle to the consumer cluster of a "
        "kubeconfig the caller sends (off: the gateway would connect to addresses callers "
        "choose)",
    )
    p.add_argument("--provider-name", default="kube-bind")
    p.add_argument("--bind-rate-limit", type=int, default=10, help="binds per identity per window")
    p.add_argument("--bind-rate-window", type=float, default=60.0, metavar="SECONDS")
    p.add_argument(
        "--pickup-ttl",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long a pickup URL stays valid (it is also single use)",
    )
    p.add_argument(
        "--reap",
        default="off",
        choices=("off", "dry-run", "revoke", "delete"),
        help="the reaper (docs/service-layer.md, The reaper): Grants whose heartbeat is older "
        "than --reap-ttl are logged (dry-run), revoked or deleted",
    )
    p.add_argument("--reap-ttl", default="1h", metavar="DURATION", help="e.g. 90s, 30m, 1h")
    p.add_argument(
        "--reap-once",
        action="store_true",
        help="make one reaper pass (--reap, --reap-ttl, --provider-kubeconfig) and exit: 0, or 1 "
        "when the pass failed; nothing else runs",
    )
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error"))
    return p


def _listen(value: str) -> tuple[str, int]:
    try:
        address = parse_bind_address(value)
    except ValueError as err:
        raise UsageError(f"--listen-address: {err} (e.g. :8080, 127.0.0.1:8080)") from err
    if address is None:
        raise UsageError("--listen-address: the gateway cannot be disabled")
    return address


def _probe_address(value: str, flag: str = "--health-probe-bind-address") -> None:
    try:
        parse_bind_address(value)
    except ValueError as err:
        raise UsageError(f"{flag}: {err} (e.g. :8081, 0 to disable)") from err


def _external_url(value: str) -> str:
    url = urllib.parse.urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        raise UsageError(
            f"--external-url {value!r}: give an http(s) URL without query, e.g. "
            "https://bind.example.com"
        )
    return value.rstrip("/")


def _secret(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        secret = Path(path).read_text().strip()
    except OSError as err:
        raise UsageError(f"--oidc-client-secret-file: cannot read {path}: {err.strerror}") from err
    if not secret:
        raise UsageError(f"--oidc-client-secret-file: {path} is empty")
    return secret


def _issuer(value: str, args: argparse.Namespace, provider: KubeClient | None) -> Issuer:
    if value == "provider":
        assert provider is not None  # main makes the client whenever --issuer=provider
        try:
            return components.provider_issuer(
                provider, args.provider_server, args.provider_ca_file, args.bind_timeout
            )
        except components.ComponentsError as err:
            raise UsageError(str(err)) from err
    kind, _, arg = value.partition(":")
    if kind != "static" or not arg:
        raise UsageError(f"--issuer {value!r}: the issuers are provider and static:FILE")
    try:
        return StaticIssuer.from_file(arg)
    except StaticIssuerError as err:
        raise UsageError(f"--issuer: {err}") from err


def _store(value: str) -> SessionStore:
    if value == "memory":
        return MemoryStore()
    if value.startswith(("redis://", "rediss://", "unix://")):
        try:
            return RedisStore.from_url(value)
        except ValueError as err:
            raise UsageError(f"--session-store: {err}") from err
    raise UsageError(f"--session-store {value!r}: memory or a redis:// URL")


def _drop_color_message(record: logging.LogRecord) -> bool:
    """uvicorn adds its message again with terminal colour codes; the JSON log needs it once."""
    record.__dict__.pop("color_message", None)
    return True


def _version() -> str:
    try:
        return importlib.metadata.version("kube-bind")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _scopes(scopes: str, groups: bool) -> str:
    """The login's scopes; ``groups`` added when an --allow-group needs the claim."""
    have = scopes.split()
    return " ".join([*have, "groups"]) if groups and "groups" not in have else " ".join(have)


def _admission(args: argparse.Namespace) -> Admission:
    for flag, values in (("--allow-email", args.allow_email),
                         ("--allow-email-domain", args.allow_email_domain),
                         ("--allow-group", args.allow_group)):  # fmt: skip
        for value in values:
            if not value.strip():
                raise UsageError(f"{flag}: give a value (an empty one would admit nobody)")
    for email in args.allow_email:
        if "@" not in email.strip("@"):
            raise UsageError(f"--allow-email {email!r}: give an address, e.g. alice@example.com")
    for domain in args.allow_email_domain:
        if "@" in domain.lstrip("@") or "." not in domain:
            raise UsageError(f"--allow-email-domain {domain!r}: give a domain, e.g. example.com")
    return Admission(args.allow_email, args.allow_email_domain, args.allow_group)


def _required(args: argparse.Namespace, *flags: str) -> None:
    missing = [f for f in flags if getattr(args, f[2:].replace("-", "_")) is None]
    if missing:
        raise UsageError(f"the gateway needs {', '.join(missing)}")


def _run(args: argparse.Namespace) -> frozenset[str]:
    kind = "provider" if args.issuer == "provider" else "static"
    try:
        run = components.parse_run(args.run, kind)
    except components.ComponentsError as err:
        raise UsageError(str(err)) from err
    if not run:
        raise UsageError("--run: name at least one component")
    return run


def _gateway(
    args: argparse.Namespace, provider: KubeClient | None
) -> tuple[OidcClient, str, Issuer, SessionStore, Admission]:
    """The gateway's app from the flags (UsageError on a bad one; 1 on an unusable OIDC
    provider or store, logged)."""
    _required(args, "--external-url", "--oidc-issuer-url", "--oidc-client-id", "--issuer")
    external = _external_url(args.external_url)
    if args.bind_rate_limit < 1:
        raise UsageError("--bind-rate-limit must be at least 1")
    if args.bind_rate_window <= 0:
        raise UsageError("--bind-rate-window must be positive")
    if not 0 < args.pickup_ttl <= 3600:
        raise UsageError("--pickup-ttl must be more than 0 and at most 3600 seconds")
    client = OidcClient(
        issuer=args.oidc_issuer_url,
        client_id=args.oidc_client_id,
        client_secret=_secret(args.oidc_client_secret_file),
        extra_audiences=tuple(
            dict.fromkeys([*args.oidc_accept_audience, *filter(None, [args.oidc_cli_client_id])])
        ),
        scopes=_scopes(args.oidc_scopes, bool(args.allow_group)),
    )
    admission = _admission(args)
    issuer = _issuer(args.issuer, args, provider)
    store = _store(args.session_store)
    return client, external, issuer, store, admission


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.reap_once:
        return _reap_once(args)
    provider: KubeClient | None = None
    try:
        run = _run(args)
        host, port = _listen(args.listen_address)
        _probe_address(args.health_probe_bind_address)
        if args.metrics_bind_address is not None:
            _probe_address(args.metrics_bind_address, "--metrics-bind-address")
        try:
            reaper_settings = reap_settings(args.reap, args.reap_ttl)
        except ValueError as err:
            raise UsageError(str(err)) from err
        if args.issuer == "provider" or run - {components.GATEWAY} or reaper_settings:
            provider = components.provider_client(args.provider_kubeconfig)
        gateway = _gateway(args, provider) if components.GATEWAY in run else None
    except (UsageError, components.ComponentsError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    configure_logging(args.log_format, args.log_level)
    # httpx logs every URL it requests at info; keep it to warnings, as kubernetes and urllib3.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(_drop_color_message)
    app = None
    metrics = GatewayMetrics(_version())
    if gateway is not None:
        app = _gateway_app(args, *gateway, metrics)
        if app is None:
            if provider is not None:
                provider.close()
            return 1
    controllers = components.Controllers(provider, run) if provider is not None else None
    reaper = Reaper.every(provider, *reaper_settings) if provider and reaper_settings else None
    try:
        probes = OpsServer(
            probes=controllers.probes() if controllers else Probes(),
            metrics=metrics,
            health_address=args.health_probe_bind_address,
            metrics_address=args.metrics_bind_address,
        ).start()
    except ListenError as err:
        flag = (
            "--metrics-bind-address" if err.serves == "metrics" else ("--health-probe-bind-address")
        )
        log.error("cannot open a listener", extra={"error": str(err), "flag": flag})
        if provider is not None:
            provider.close()
        return 1
    if controllers is not None:
        controllers.start()
        log.info("issuer controllers starting", extra={"run": sorted(run)})
    if reaper is not None:
        reaper.start()
    try:
        if app is not None:
            uvicorn.run(app, host=host or "0.0.0.0", port=port, log_config=None, access_log=False)
        else:
            _wait_for_signal()
    finally:
        if reaper is not None:
            reaper.stop()
        if controllers is not None:
            controllers.stop()
        probes.shutdown()
        if provider is not None:
            provider.close()
    return 0


def _reap_once(args: argparse.Namespace) -> int:
    """`--reap-once`: one pass of the reaper on the provider, then the exit status."""
    try:
        settings = reap_settings(args.reap, args.reap_ttl)
        if settings is None:
            raise UsageError("--reap-once needs --reap dry-run, revoke or delete")
        provider = components.provider_client(args.provider_kubeconfig)
    except ValueError as err:  # UsageError, ComponentsError, reap_settings' own
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    configure_logging(args.log_format, args.log_level)
    try:
        return 0 if Reaper(provider, *settings).reap_once() is not None else 1
    finally:
        provider.close()


def _wait_for_signal() -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal received: stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()


def _gateway_app(
    args: argparse.Namespace,
    client: OidcClient,
    external: str,
    issuer: Issuer,
    store: SessionStore,
    admission: Admission,
    metrics: GatewayMetrics,
) -> Any:
    """The gateway's app, or None (logged) when its OIDC provider or store is unusable."""
    oidc = OidcProvider(client, httpx.Client(timeout=10))
    try:
        oidc.endpoints()
    except OidcError as err:
        log.error("cannot use the OIDC provider", extra={"error": str(err)})
        return None
    if not store.ping():
        log.error("the session store does not answer", extra={"store": args.session_store})
        return None
    config = GatewayConfig(
        external_url=external,
        provider_name=args.provider_name,
        version=_version(),
        bind_rate_limit=args.bind_rate_limit,
        bind_rate_window=args.bind_rate_window,
        pickup_ttl=args.pickup_ttl,
        admission=admission,
        cli_client_id=args.oidc_cli_client_id or "",
    )
    if not config.secure_cookies and urllib.parse.urlsplit(external).hostname not in LOOPBACK:
        log.warning(
            "the external URL is not https: session cookies and bundles travel in clear",
            extra={"externalURL": external},
        )
    log.info(
        "gateway starting",
        extra={"listen": args.listen_address, "externalURL": external, "issuer": client.issuer,
               "sessionStore": "memory" if args.session_store == "memory" else "redis",
               "admits": "everyone" if admission.everyone else "the allowed set",
               "apply": "enabled" if args.enable_apply else "disabled"},
    )  # fmt: skip
    applier = Applier() if args.enable_apply else None
    return make_app(Gateway(config, oidc, issuer, store, applier=applier, metrics=metrics))
