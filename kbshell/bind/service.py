"""`kubectl bind URL`, `kubectl bind EXPORT`, `kubectl bind login URL`, `kubectl bind catalog`:
binding through a provider's gateway (docs/user-guide.md, "Binding from a provider's URL").

The flow of ``kubectl bind https://host/exports``: the provider's ``/api/provider`` (is it a
kube-bind gateway, which identity provider and CLI client), an ID token (cached, refreshed, or
a browser login: :mod:`kbshell.bind.login`), the catalog and the Export (``--export``, the only
one, or a choice on a terminal), the consumer's preflight, ``POST /api/bind`` with the
consumer cluster's identity, the one pickup, the provider's preflight with the bundle's own
credentials, then the bundle applied verbatim (server-side, as the ``--provider-kubeconfig``
flow applies its own) and a wait until the Connection and the binding are Ready. The checks and
their verdict are `kbcore.views.preflight`'s; nothing is applied unless it says ok.
"""

from __future__ import annotations

import argparse
import base64
import functools
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import yaml

from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CONNECTIONS, CRDS, NAMESPACES
from kbcore.control.kubeconfig import Credentials, SecretProblem, sanitize
from kbcore.errors import ApiError
from kbcore.identity import IdentityUnknown
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.views import bundle as kb
from kbcore.views import install as install_views
from kbcore.views import overview, preflight
from kbshell import install
from kbshell.bind import (
    CONNECT_TIMEOUT,
    PROG,
    USER_AGENT,
    _apply,
    _apply_failure,
    _cluster_flags,
    _describe,
    _get,
    _run_reads,
    consumer_client,
    consumer_failure,
    read_retrying,
    retrying,
    token_cache,
)
from kbshell.bind import login as oidc_login
from kbshell.bind.errors import Failure
from kbshell.bind.gateway_client import Gateway, TokenRefused, base_url
from kbshell.client import KubeClient

DEPLOYMENTS = GVR("apps", "v1", "deployments")
SSAR = GVR("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
WAIT_TIMEOUT = 120.0
LOGIN_TIMEOUT = 300.0
POLL_SECONDS = 1.0


# -- flags -------------------------------------------------------------------------------------


def _login_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-browser", action="store_true", help="print the login URL instead of opening a browser"
    )
    p.add_argument(
        "--callback-port",
        type=int,
        default=0,
        metavar="PORT",
        help="the login callback's port on 127.0.0.1 (default: a free one; "
        "a provider that lists redirect URIs must list http://localhost:PORT/callback)",
    )
    p.add_argument(
        "--login-timeout",
        type=float,
        default=LOGIN_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the browser login (default {LOGIN_TIMEOUT:g})",
    )


def build_parsers() -> dict[str, argparse.ArgumentParser]:
    """One parser per form: "login", "catalog", and "bind" (a URL or an Export name)."""
    bind = argparse.ArgumentParser(
        prog=PROG,
        description="Bind an Export of a provider's gateway: log in if needed, choose the "
        "Export, bind, pick the bundle up, check both clusters, apply it, wait until Ready.",
    )
    bind.add_argument(
        "target",
        metavar="URL|EXPORT",
        help="the provider's URL (https://host/exports), or an Export's name at "
        "the provider last logged in to (or --provider)",
    )
    bind.add_argument("--export", metavar="NAME", help="the Export to bind (with a URL)")
    bind.add_argument("--provider", metavar="URL", help="the provider, for an Export name")
    bind.add_argument(
        "-n",
        "--namespace",
        dest="bind_namespace",
        default="",
        metavar="NS",
        help="a Binding in NS (only NS is synced) instead of a ClusterBinding",
    )
    bind.add_argument(
        "-o",
        "--output",
        choices=("yaml",),
        help="write the provider's bundle verbatim instead of applying it",
    )
    bind.add_argument(
        "--dry-run",
        action="store_true",
        help="log in and check; bind nothing, apply nothing, say what would be done",
    )
    bind.add_argument(
        "--wait-timeout",
        type=float,
        default=WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait until Ready (default {WAIT_TIMEOUT:g}; 0: do not wait)",
    )
    bind.add_argument(
        "--install-konnector",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="install or upgrade the konnector in the consumer cluster (namespace kube-bind, "
        "from the chart's rendering) before applying the bundle (default: on when run from a "
        "terminal)",
    )
    bind.add_argument(
        "--konnector-image",
        metavar="IMAGE",
        help="the konnector image --install-konnector runs (default: the chart's)",
    )
    _cluster_flags(bind, top=True)
    _login_flags(bind)

    login = argparse.ArgumentParser(
        prog=f"{PROG} login",
        description="Log in to a provider (browser, loopback "
        "callback); the ID token is cached for later commands.",
    )
    login.add_argument("url", metavar="URL", help="the provider's URL")
    _login_flags(login)

    catalog = argparse.ArgumentParser(
        prog=f"{PROG} catalog", description="The Exports and Collections a provider offers you."
    )
    catalog.add_argument(
        "--provider", metavar="URL", help="default: the provider last logged in to"
    )
    _login_flags(catalog)
    return {"bind": bind, "login": login, "catalog": catalog}


# -- the provider and the caller -------------------------------------------------------------


def _provider_url(given: str | None) -> str:
    if given:
        return base_url(given)
    last = token_cache.last_provider()
    if last is None:
        raise Failure(
            "no provider: none was given and none was logged in to",
            f"pass --provider URL, or log in first: {PROG} login https://PROVIDER/exports",
            code=2,
        )
    return last


def _token(
    gateway: Gateway,
    doc: dict[str, Any],
    args: argparse.Namespace,
    err: IO[str],
    *,
    fresh: bool = False,
) -> str:
    """The cached ID token when still usable, else a refreshed one, else a new login."""
    issuer, client_id = doc["oidc"]["issuer"], doc["oidc"]["cliClientID"]
    entry = None if fresh else token_cache.load(gateway.base)
    if entry and (entry.get("issuer"), entry.get("clientID")) != (issuer, client_id):
        entry = None  # the provider changed its identity provider or client
    if entry and token_cache.usable(entry, time.time()):
        return str(entry["idToken"])
    new = None
    if entry and isinstance(entry.get("refreshToken"), str):
        new = oidc_login.refresh(issuer, client_id, entry["refreshToken"])
    if new is None:
        new = oidc_login.log_in(
            issuer,
            client_id,
            port=args.callback_port,
            timeout=args.login_timeout,
            open_browser=not args.no_browser,
            err=err,
        )
    token_cache.store(gateway.base, new)
    return str(new["idToken"])


class Session:
    """One provider and the caller's token; a refused token means one new login."""

    def __init__(self, base: str, args: argparse.Namespace, err: IO[str]) -> None:
        self.gateway = Gateway(base)
        self.doc = self.gateway.provider()
        self.args, self.err = args, err
        self.token = _token(self.gateway, self.doc, args, err)

    def call(self, method: str, *params: Any) -> Any:
        try:
            return getattr(self.gateway, method)(self.token, *params)
        except TokenRefused:
            token_cache.forget(self.gateway.base)
            self.token = _token(self.gateway, self.doc, self.args, self.err, fresh=True)
            try:
                return getattr(self.gateway, method)(self.token, *params)
            except TokenRefused:
                raise Failure(
                    f"the provider at {self.gateway.base} refuses the ID token of this login",
                    "ask the provider's administrator (the gateway must accept the CLI's "
                    "client: --oidc-cli-client-id)",
                ) from None

    @property
    def who(self) -> str:
        got = token_cache.claims(self.token)
        return str(got.get("email") or got.get("sub") or "?")


# -- login, catalog ---------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, out: IO[str]) -> int:
    gateway = Gateway(base_url(args.url))
    doc = gateway.provider()
    token = _token(gateway, doc, args, sys.stderr, fresh=True)
    who = token_cache.claims(token)
    out.write(
        f"logged in to {doc.get('name') or gateway.base} ({gateway.base}) as "
        f"{who.get('email') or who.get('sub')}\n"
    )
    return 0


def catalog_lines(catalog: dict[str, Any]) -> list[str]:
    rows = [("KIND", "NAME", "TITLE", "APIS")]
    for kind, key in (("Export", "exports"), ("Collection", "collections")):
        for e in catalog.get(key) or []:
            rows.append(
                (
                    kind,
                    str(e.get("name", "")),
                    str(e.get("title") or ""),
                    ",".join(map(str, e.get("apis") or ())) or "-",
                )
            )
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]}" for r in rows]


def cmd_catalog(args: argparse.Namespace, out: IO[str]) -> int:
    session = Session(_provider_url(args.provider), args, sys.stderr)
    catalog = session.call("catalog")
    if not catalog.get("exports") and not catalog.get("collections"):
        out.write(f"the provider at {session.gateway.base} offers you nothing to bind\n")
        return 0
    for line in catalog_lines(catalog):
        out.write(line.rstrip() + "\n")
    return 0


def choose_export(
    exports: Sequence[dict[str, Any]], wanted: str | None, base: str, interactive: bool
) -> dict[str, Any]:
    names = [str(e.get("name")) for e in exports]
    listing = ", ".join(names) or "none"
    if wanted is not None:
        for e in exports:
            if e.get("name") == wanted:
                return e
        raise Failure(
            f"the provider at {base} offers no Export {wanted!r} (it offers: {listing})",
            f"`{PROG} catalog --provider {base}` lists them",
        )
    if not exports:
        raise Failure(
            f"the provider at {base} offers you no Export", "ask the provider's administrator"
        )
    if len(exports) == 1:
        return exports[0]
    if not interactive:
        raise Failure(
            f"the provider at {base} offers several Exports: {listing}",
            "choose one with --export NAME",
            code=2,
        )
    for i, e in enumerate(exports, 1):
        sys.stderr.write(f"  {i}) {e.get('name')}: {e.get('title') or ''}\n")
    # The prompt on stderr, as the listing: stdout may be the bundle (-o yaml > file).
    sys.stderr.write(f"Export to bind [1-{len(exports)}]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip()
    if answer.isdigit() and 1 <= int(answer) <= len(exports):
        return exports[int(answer) - 1]
    for e in exports:
        if e.get("name") == answer:
            return e
    raise Failure(f"no Export {answer!r}", f"choose one of: {listing}", code=2)


# -- preflight --------------------------------------------------------------------------------


def consumer_uid(consumer: KubeClient) -> str:
    """The consumer cluster's identity, as its Connection will report it."""

    def answer(read: Any) -> Any:
        return read_retrying(consumer, read)

    try:
        return str(_run_reads(kb.consumer_identity(), answer))
    except (ApiError, IdentityUnknown) as err:
        if isinstance(err, ApiError):
            raise consumer_failure(
                err, "reading the consumer cluster's identity", consumer.host
            ) from err
        raise Failure(f"the consumer cluster cannot be identified: {err}", "") from err


def facts(
    consumer: KubeClient, bundle: Sequence[Obj], prepared: install.PreparedInstall | None
) -> preflight.ConsumerFacts:
    """The consumer as read, or as it will be once a prepared install is carried out (rule 7)."""
    read = consumer_facts(consumer, bundle)
    if prepared is None:
        return read
    return preflight.installing(read, prepared.installs, preflight.secret_namespace(bundle))


def consumer_facts(consumer: KubeClient, bundle: Sequence[Obj]) -> preflight.ConsumerFacts:
    crds = frozenset(
        n
        for n in preflight.consumer_crds(bundle)
        if _get(consumer, CRDS, ObjectKey("", n)) is not None
    )
    namespace = preflight.secret_namespace(bundle)
    exists = bool(namespace) and _get(consumer, NAMESPACES, ObjectKey("", namespace)) is not None
    deployment = None
    if exists:
        try:
            deployment = preflight.find_konnector(consumer.list(DEPLOYMENTS, namespace)[0])
        except ApiError as err:
            if err.code != 403:  # a user who may not list Deployments is told it is missing
                raise consumer_failure(err, "looking for the konnector", consumer.host) from err
    scoped = preflight.binding_namespace(bundle)
    scoped_exists = not scoped or _get(consumer, NAMESPACES, ObjectKey("", scoped)) is not None
    return preflight.ConsumerFacts(crds, exists, deployment, scoped_exists)


def provider_credentials(bundle: Sequence[Obj]) -> Credentials:
    secret = next((d for d in bundle if d.get("kind") == "Secret"), None)
    try:
        text = base64.b64decode((secret or {}).get("data", {}).get("kubeconfig", "")).decode()
        single = kb.single_context(yaml.safe_load(text), None)
    except (ValueError, yaml.YAMLError) as err:
        raise Failure(f"the provider's bundle holds no usable kubeconfig: {err}", "") from err
    if isinstance(single, SecretProblem):
        raise Failure(
            f"the konnector would refuse the bundle's kubeconfig: {single.message}",
            "tell the provider's administrator",
        )
    creds = sanitize(single)
    assert isinstance(creds, Credentials)  # single_context checked it
    return creds


def provider_access(bundle: Sequence[Obj]) -> dict[preflight.AccessCheck, bool | str]:
    """Rule 4 of the preflight, asked of the provider as the bundle's credentials."""
    answers: dict[preflight.AccessCheck, bool | str] = {}
    with KubeClient.from_credentials(provider_credentials(bundle), user_agent=USER_AGENT) as p:
        p.connect_timeout = CONNECT_TIMEOUT
        for check in preflight.access_checks(bundle):
            try:
                review = retrying(functools.partial(p.create, SSAR, check.review()))
                answers[check] = bool((review.get("status") or {}).get("allowed"))
            except ApiError as err:
                answers[check] = f"{err.code} {err.message}"
    return answers


def report(verdict: preflight.Verdict, out: IO[str]) -> None:
    for f in verdict.findings:
        mark = {"blocks": "x", "warns": "!", "info": "-"}[f.level]
        out.write(f"  {mark} {f.what}\n")
        if f.fix and f.level != "info":
            out.write(f"    fix: {f.fix}\n")


def refuse(verdict: preflight.Verdict) -> None:
    if not verdict.ok:
        raise Failure(
            "preflight failed, nothing was applied: " + "; ".join(f.what for f in verdict.blockers),
            " / ".join(f.fix for f in verdict.blockers if f.fix),
        )


def _lines(out: IO[str]) -> Callable[[str], None]:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()  # progress of a long install shows as it happens

    return say


def wants_install(args: argparse.Namespace, interactive: bool) -> bool:
    """`--install-konnector`, by default on when run from a terminal."""
    wanted = interactive if args.install_konnector is None else bool(args.install_konnector)
    if wanted and args.konnector_namespace != install_views.NAMESPACE:
        raise Failure(
            f"--install-konnector installs into namespace {install_views.NAMESPACE}, not "
            f"{args.konnector_namespace}",
            "drop --konnector-namespace, or pass --no-install-konnector and install it yourself",
            code=2,
        )
    return wanted


def prepare_install(
    consumer: KubeClient, args: argparse.Namespace, export: Obj, out: IO[str]
) -> install.PreparedInstall:
    """The installer's reads, plan and permission checks, before anything is bound: a consumer
    that cannot take the konnector is told so before the provider mints anything for it."""
    groups = sorted({str(a).partition(".")[2] for a in export.get("apis") or () if "." in str(a)})
    try:
        return install.prepare_install(
            consumer,
            image=args.konnector_image,
            bound_groups=groups,
            progress=_lines(out),
        )
    except install.InstallError as err:
        raise Failure(str(err), "or pass --no-install-konnector to bind without it") from err
    except ApiError as err:
        raise consumer_failure(err, "checking the konnector's install", consumer.host) from err


def carry_out_install(
    consumer: KubeClient, prepared: install.PreparedInstall, out: IO[str]
) -> None:
    try:
        install.carry_out_install(consumer, prepared, progress=_lines(out))
    except install.InstallError as err:
        raise Failure(str(err), "run the same command again once that is fixed") from err
    except ApiError as err:
        raise consumer_failure(err, "installing the konnector", consumer.host) from err
    out.flush()


# -- bind -------------------------------------------------------------------------------------


def cmd_bind(args: argparse.Namespace, out: IO[str]) -> int:
    if "://" in args.target:
        base, wanted = base_url(args.target), args.export
        if args.provider:
            raise Failure(
                "--provider is for an Export name; the URL names the provider", "", code=2
            )
    else:
        base, wanted = _provider_url(args.provider), args.target
        if args.export and args.export != args.target:
            raise Failure(f"two Exports: {args.target} and --export {args.export}", "", code=2)
    err = sys.stderr
    session = Session(base, args, err)
    catalog = session.call("catalog")
    interactive = sys.stdin.isatty() and err.isatty()
    export = choose_export(catalog.get("exports") or [], wanted, base, interactive)
    name = str(export["name"])
    with consumer_client(args) as consumer:
        uid = consumer_uid(consumer)
        if args.output == "yaml":
            raw = session.gateway.pickup(session.call("bind", name, uid, args.bind_namespace))
            out.flush()
            binary = getattr(out, "buffer", None)
            if binary is not None:
                binary.write(raw)  # verbatim: the gateway's bytes, byte for byte
            else:
                out.write(raw.decode())
            return 0
        expected = _expected(args.konnector_namespace, args.bind_namespace)
        prepared = None
        if wants_install(args, interactive):
            prepared = prepare_install(consumer, args, export, out)
        early = preflight.verdict(expected, facts(consumer, expected, prepared), None)
        if args.dry_run:
            out.write(
                f"dry run: would bind Export {name} ({', '.join(export.get('apis') or ())}) of "
                f"{base} as {session.who} into the consumer cluster {uid} (nothing is bound or "
                "applied); the consumer:\n"
            )
            report(early, out)
            refuse(early)
            if prepared is not None:
                out.write(
                    f"would {prepared.plan.outcome} the konnector first (--install-konnector)\n"
                )
            out.write(
                "then: POST /api/bind, the pickup once, the provider's access checked as the "
                "bundle's credentials, the bundle (a kubeconfig Secret, a Connection, a binding) "
                "applied as the provider wrote it, and a wait until it is Ready\n"
            )
            return 0
        refuse(early)  # before anything is minted for a consumer that cannot take it
        raw = session.gateway.pickup(session.call("bind", name, uid, args.bind_namespace))
        bundle = [d for d in yaml.safe_load_all(raw) if d]
        out.write(f"bound Export {name} of {base} as {session.who}; checking before applying:\n")
        verdict = preflight.verdict(
            bundle, facts(consumer, bundle, prepared), provider_access(bundle)
        )
        report(verdict, out)
        refuse(verdict)
        if prepared is not None:
            carry_out_install(consumer, prepared, out)
        for obj in bundle:
            try:
                retrying(functools.partial(_apply, consumer, obj))
            except ApiError as error:
                raise _apply_failure(error, obj, consumer.host) from error
            out.write(f"{_describe(obj)} applied\n")
        out.flush()
        if args.wait_timeout <= 0:
            out.write(f"`{PROG} status` shows when it is Ready\n")
            return 0
        return wait_ready(consumer, bundle, args.wait_timeout, out)


def _expected(namespace: str, binding_namespace: str) -> list[Obj]:
    """The kinds every gateway bundle has, for the consumer's checks before the bind."""
    binding: Obj = {"kind": "ClusterBinding", "metadata": {}}
    if binding_namespace:
        binding = {"kind": "Binding", "metadata": {"namespace": binding_namespace}}
    return [{"kind": "Secret", "metadata": {"namespace": namespace}},
            {"kind": "Connection", "metadata": {}}, binding]  # fmt: skip


def wait_ready(consumer: KubeClient, bundle: Sequence[Obj], timeout: float, out: IO[str]) -> int:
    """Progress lines until the Connection and the binding are Ready; the status table, and
    what to do when they are not by the timeout."""
    watched = [
        (gvr, d)
        for d in bundle
        for kind, gvr in (
            ("Connection", CONNECTIONS),
            ("ClusterBinding", CLUSTERBINDINGS),
            ("Binding", BINDINGS),
        )
        if d["kind"] == kind
    ]
    deadline = time.monotonic() + timeout
    said: dict[str, str] = {}
    while True:
        live: dict[str, list[Obj]] = {"Connection": [], "ClusterBinding": [], "Binding": []}
        ready = True
        for gvr, obj in watched:
            key = ObjectKey(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            current = _get(consumer, gvr, key) or {"kind": obj["kind"], "metadata": obj["metadata"]}
            live[obj["kind"]].append(current)
            status, reason, message = overview.ready_condition(current)
            line = (
                f"Ready={status}"
                + (f" {reason}" if reason else "")
                + (f": {message}" if message else "")
            )
            if said.get(_describe(obj)) != line:
                out.write(f"  {_describe(obj)}: {line}\n")
                out.flush()
                said[_describe(obj)] = line
            ready = ready and status == "True"
        if ready or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    rows = overview.status_rows(live["Connection"], live["ClusterBinding"], live["Binding"])
    for line in overview.table(rows):
        out.write(line.rstrip() + "\n")
    if not ready:
        raise Failure(
            f"not Ready after {timeout:g}s (the bundle is applied and stays)",
            "is the konnector running on this cluster? Its conditions above say what it waits "
            f"for; `{PROG} status` shows them again, and `{PROG} plan` what it would do next",
        )
    out.write("Ready: the provider's APIs are bound\n")
    return 0
