"""`kubectl bind`: bind a provider's APIs into this cluster, and look at or undo what is bound.

A kubectl plugin (an executable `kubectl-bind` on PATH runs as `kubectl bind`). Every decision
is the kernel's: the bundle and what may be bound (`kbcore.views.bundle`), the provider RBAC
(`kbcore.views.rbac`), the dry run of the konnector (`kbcore.views.dryrun`), the status table and
what an unbind will do (`kbcore.views.overview`). This module reads files and flags, answers the
kernel's reads with `KubeClient`s, applies the bundle, and turns failures into messages that name
the problem and the fix.

`kubectl bind URL`, `kubectl bind EXPORT`, `kubectl bind login URL` and `kubectl bind catalog`
bind through a provider's gateway instead (`kbshell.bind.service`); `main` tells them from the
subcommands below by the first positional word (`first_word`).

`kubectl bind --provider-kubeconfig FILE --list` lists what the provider exports and exits 0;
binding without choosing (neither --api nor --all) lists the same in its error and exits 2.

Exit status: 0 when done, 1 when something failed (a refused kubeconfig, an unreachable
cluster, an API the provider does not export, no access, a provider kubeconfig that points at
this cluster itself), 2 for a usage error (bad flags, or a --provider-kubeconfig file that is
missing, a directory, binary, not UTF-8, not YAML, empty or not a mapping: the message names
the file, and its line and column for a YAML error).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Generator, Sequence
from typing import IO, Any, NoReturn, TypeVar

import yaml

from kbcore.actions import CONSUMER
from kbcore.api import keys
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CONNECTIONS, CRDS, SECRETS
from kbcore.control.binding import gvr_of
from kbcore.control.kubeconfig import Credentials, SecretProblem, sanitize, transport_warning
from kbcore.errors import UNREACHABLE, UNREACHABLE_CODE, ApiError
from kbcore.identity import IdentityUnknown, reaches_itself
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.reads import Failed, Read
from kbcore.runtime.requests import throttled
from kbcore.runtime.worker import Ask, Send, drive
from kbcore.schema.crds import served_resource
from kbcore.sync.coverage import api_names, connection_name
from kbcore.views import bundle as kb
from kbcore.views import dryrun, overview, rbac
from kbshell.bind.errors import Failure
from kbshell.bundle_yaml import bundle_yaml
from kbshell.client import KubeClient
from kbshell.kubeconfig_file import KubeconfigFileError, load_kubeconfig_file

PROG = "kubectl bind"
FIELD_MANAGER = "kubectl-bind"
USER_AGENT = "kubectl-bind/0.1.0"
CONNECT_TIMEOUT = 5.0
UNBIND_TIMEOUT = 120.0
POLL_SECONDS = 1.0
RETRY_SECONDS = 15.0
RBAC_HINT = "kubectl bind rbac --api NAME ... | kubectl --kubeconfig PROVIDER apply -f -"
KINDS: dict[str, GVR] = {
    "Secret": SECRETS,
    "Connection": CONNECTIONS,
    "ClusterBinding": CLUSTERBINDINGS,
    "Binding": BINDINGS,
}


# -- flags -------------------------------------------------------------------------------------


def _cluster_flags(p: argparse.ArgumentParser, *, top: bool) -> None:
    """Like kubectl's: on the command and on every subcommand (a subcommand's must not reset
    what was given before it, hence SUPPRESS there)."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--kubeconfig",
        default=default(None),
        metavar="FILE",
        help="consumer kubeconfig (default: $KUBECONFIG, else ~/.kube/config)",
    )
    p.add_argument("--context", default=default(None), help="consumer kubeconfig context")
    p.add_argument(
        "--konnector-namespace",
        default=default(kb.DEFAULT_KONNECTOR_NAMESPACE),
        metavar="NS",
        help="the konnector's namespace, where kubeconfig Secrets live (default: kube-bind)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        usage=(
            f"{PROG} --provider-kubeconfig FILE (--api NAME ... | --all) [-n NS] "
            "[--connection NAME] [--dry-run] [-o yaml]\n"
            f"       {PROG} --provider-kubeconfig FILE --list\n"
            f"       {PROG} {{status,plan,rbac,unbind}} ...\n"
            f"       {PROG} URL|EXPORT [--export NAME] [--dry-run] [-o yaml]   (a provider's "
            "gateway; URL|EXPORT -h)\n"
            f"       {PROG} login URL | {PROG} catalog [--provider URL]"
        ),
        description=(
            "Bind APIs a provider cluster exports into this (consumer) cluster: checks the "
            "provider kubeconfig as the konnector will, lists what the provider exports, and "
            "applies the one-apply bundle (kubeconfig Secret, Connection, ClusterBinding, or a "
            "Binding with -n)."
        ),
    )
    _cluster_flags(p, top=True)
    p.add_argument(
        "--provider-kubeconfig",
        metavar="FILE",
        dest="provider_kubeconfig",
        help="the kubeconfig the provider handed out (checked as the konnector checks it; only "
        "its one context goes into the Secret)",
    )
    p.add_argument(
        "--provider-context", metavar="NAME", help="context in FILE (default: its current one)"
    )
    p.add_argument(
        "--api",
        action="append",
        default=[],
        dest="bind_apis",
        metavar="NAME",
        help="an exported API to bind, <plural>.<group> (repeatable)",
    )
    p.add_argument("--all", action="store_true", dest="bind_all", help="bind every exported API")
    p.add_argument(
        "--list",
        action="store_true",
        dest="list_exports",
        help="list the APIs the provider exports and exit (reads the provider only)",
    )
    p.add_argument(
        "-n",
        "--namespace",
        dest="bind_namespace",
        default="",
        metavar="NS",
        help="create a Binding in NS (only NS is synced) instead of a ClusterBinding",
    )
    p.add_argument("--connection", metavar="NAME", help="Connection name (default: from FILE)")
    p.add_argument("--binding", metavar="NAME", help="binding name (default: the Connection's)")
    p.add_argument(
        "--dry-run", action="store_true", help="check everything and show the bundle; apply nothing"
    )
    p.add_argument(
        "-o",
        "--output",
        choices=("yaml",),
        help="print the bundle as YAML instead of applying it",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands", prog=PROG)

    status = sub.add_parser(
        "status", help="Connections and bindings with their conditions and APIs"
    )
    _cluster_flags(status, top=False)

    plan = sub.add_parser(
        "plan",
        help="what the konnector would do now for both clusters' current state (writes nothing)",
        description="A dry run of the konnector: its kernel plans every Connection, binding and "
        "synced object from live reads of both clusters, and every write it would make is shown "
        "instead of sent. One step: what it would do next, not everything it will do.",
    )
    _cluster_flags(plan, top=False)
    plan.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="default: text"
    )

    rb = sub.add_parser(
        "rbac",
        help="the provider RBAC a binding needs, as YAML",
        description="The RBAC the provider must grant the kubeconfig's user: exactly what the "
        "konnector does on the provider for these APIs. Apply it on the provider.",
    )
    rb.add_argument(
        "--api",
        action="append",
        default=[],
        required=True,
        metavar="NAME",
        help="an API the binding lists, <plural>.<group> (repeatable)",
    )
    rb.add_argument(
        "-n", "--namespace", default="", metavar="NS", help="for a Binding in NS (default: a "
        "ClusterBinding)"
    )  # fmt: skip
    rb.add_argument(
        "--related",
        action="append",
        default=[],
        metavar="KIND:DIRECTION",
        help="related resources the binding syncs, e.g. secrets:FromConsumer (repeatable)",
    )
    who = rb.add_mutually_exclusive_group()
    who.add_argument("--user", help="the provider user the kubeconfig authenticates as")
    who.add_argument("--group", help="a provider group instead")
    who.add_argument(
        "--service-account",
        metavar="NS/NAME",
        help="a provider ServiceAccount instead (default: kube-bind/konnector)",
    )
    rb.add_argument("--name", default="kube-bind-konnector", help="name of the roles and bindings")

    ub = sub.add_parser(
        "unbind",
        help="delete a ClusterBinding (or a Binding with -n)",
        description="Says what the konnector's drain will do with the objects (provider copies "
        "deleted, or kept when annotated deletion-policy: Orphan; the consumer CRD a "
        "ClusterBinding installed), deletes the binding, and waits until it is gone.",
    )
    _cluster_flags(ub, top=False)
    ub.add_argument("name", metavar="NAME", help="the ClusterBinding (or Binding) to delete")
    ub.add_argument("-n", "--namespace", default="", metavar="NS", help="a Binding in NS")
    ub.add_argument(
        "--timeout",
        type=float,
        default=UNBIND_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the drain (default {UNBIND_TIMEOUT:g})",
    )
    ub.add_argument("--no-wait", action="store_true", help="do not wait for the drain")
    return p


# -- clients -----------------------------------------------------------------------------------


def consumer_client(args: argparse.Namespace) -> KubeClient:
    """The consumer cluster, chosen as kubectl chooses: --kubeconfig, else $KUBECONFIG (a
    path list, merged), else ~/.kube/config; --context, else the current context."""
    path = args.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    files = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
    if not any(os.path.exists(f) for f in files):
        raise Failure(
            f"no consumer kubeconfig: {path} does not exist",
            "pass --kubeconfig FILE, or set KUBECONFIG",
        )
    try:
        client = KubeClient.from_kubeconfig_file(
            path if args.kubeconfig is None else os.path.expanduser(path),
            context=args.context,
            user_agent=USER_AGENT,
        )
    except Exception as err:  # the kubernetes loader raises its own types for bad files
        raise Failure(
            f"cannot load the consumer kubeconfig {path}: {err}",
            "check the file and --context (kubectl config get-contexts lists them)",
        ) from err
    client.connect_timeout = CONNECT_TIMEOUT
    return client


def consumer_failure(err: ApiError, doing: str, host: str, gvr: GVR | None = None) -> Failure:
    """A consumer request (on `gvr`, if known) failed: say why and what to do."""
    if err.code == UNREACHABLE_CODE:
        return Failure(
            f"cannot reach the consumer cluster while {doing}: {err.message}",
            "check --kubeconfig / --context and that the cluster is up",
        )
    if err.code == 401:
        return Failure(
            f"the consumer cluster at {host} rejected the credentials while {doing}",
            "refresh the credentials in your kubeconfig (or pick another --context)",
        )
    if err.code == 403:
        return Failure(
            f"no consumer access while {doing}: {err.message}",
            "use a kubeconfig allowed to read and write core.kube-bind.io objects and "
            "Secrets in the konnector's namespace (ask a cluster admin)",
        )
    if err.code == 404 and gvr is not None and gvr.group == keys.GROUP:
        return Failure(
            f"the {keys.GROUP} API is not installed on the consumer ({err.message})",
            "install the konnector (its Helm chart installs the CRDs), or: kubectl apply -f crds/",
        )
    return Failure(f"{doing} failed: {err}", "")


def read_retrying(client: KubeClient, read: Read) -> Any:
    """`client.read(read)` (a result or `Failed`), retried as `retrying` retries."""

    def call() -> Any:
        result = client.read(read)
        if isinstance(result, Failed):
            raise result.error
        return result

    try:
        return retrying(call)
    except ApiError as err:
        return Failed(err)


class Clients:
    """The consumer client, and one provider client per set of credentials the kernel hands
    out (as the konnector keeps them)."""

    def __init__(self, consumer: KubeClient) -> None:
        self.consumer = consumer
        self._providers: dict[str, KubeClient] = {}

    def provider(self, creds: Credentials) -> KubeClient:
        client = self._providers.get(creds.fingerprint)
        if client is None:
            client = KubeClient.from_credentials(creds, user_agent=USER_AGENT)
            client.connect_timeout = CONNECT_TIMEOUT
            self._providers[creds.fingerprint] = client
        return client

    def answer(self, ask: Ask) -> Any:
        """A kernel read, answered live (`KubeClient.read`: never raises an ApiError)."""
        if ask.read.cluster == CONSUMER:
            client = self.consumer
        elif ask.credentials is None:
            return Failed(ApiError(UNREACHABLE_CODE, UNREACHABLE, "no provider credentials"))
        else:
            try:
                client = self.provider(ask.credentials)
            except ValueError as err:  # credentials no connection can be made with
                return Failed(ApiError(UNREACHABLE_CODE, UNREACHABLE, str(err)))
        return read_retrying(client, ask.read)

    def close(self) -> None:
        for client in [*self._providers.values(), self.consumer]:
            client.close()


T = TypeVar("T")


def retrying(call: Callable[[], T], deadline: float = RETRY_SECONDS) -> T:
    """`call()`, again while the server says "try again later" (429, or 503 with Retry-After:
    a CRD just created is served before its storage is ready), for at most `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        try:
            return call()
        except ApiError as err:
            wait = throttled(err)  # the konnector's rule for "try again later"
            if wait is None or time.monotonic() >= end:
                raise
            time.sleep(min(wait.after, 2.0))


def _refuse_writes(send: Send) -> ApiError | None:
    raise AssertionError(f"a dry run must not write, yet it was asked to: {send.action!r}")


# -- kubectl bind --provider-kubeconfig ---------------------------------------------------------


def _provider_kubeconfig(path: str, context: str | None) -> dict[str, Any]:
    try:
        doc = load_kubeconfig_file(path)
    except KubeconfigFileError as err:
        raise Failure(
            f"cannot use the provider kubeconfig {err}",
            "pass the kubeconfig file the provider handed out to --provider-kubeconfig",
            code=2,
        ) from err
    single = kb.single_context(doc, context)
    if isinstance(single, SecretProblem):
        raise Failure(
            f"the konnector would refuse the provider kubeconfig {path}: {single.message}",
            "the konnector accepts inline credentials only (no exec or auth-provider plugins, "
            "no file paths), and a token or password only over verified https:// (no plain "
            "http://, no insecure-skip-tls-verify): `kubectl config view --minify --flatten "
            "--context CONTEXT` writes a usable file for a certificate or token user; for a "
            "plugin user, ask the provider for a token or client certificate (e.g. kubectl "
            "create token ...)",
        )
    return single


def _offer(client: KubeClient, path: str) -> kb.Offer:
    def answer(read: Read) -> Any:
        return read_retrying(client, read)

    try:
        offer: kb.Offer = _run_reads(kb.provider_offer(), answer)
    except IdentityUnknown as err:
        raise Failure(f"the provider at {client.server} cannot be identified: {err}", "") from err
    except ApiError as err:
        raise provider_failure(err, client.server, path) from err
    return offer


def _run_reads(gen: Generator[Read, Any, Any], answer: Callable[[Read], Any]) -> Any:
    try:
        read = next(gen)
        while True:
            read = gen.send(answer(read))
    except StopIteration as stop:
        return stop.value


def provider_failure(err: ApiError, server: str, path: str) -> Failure:
    if err.code == UNREACHABLE_CODE:
        why = err.message.removeprefix(f"{urllib.parse.urlsplit(server).netloc}: ")
        return Failure(
            f"cannot reach the provider at {server}: {why}",
            f"check that the provider's API server is up and that the server address in {path} "
            "is reachable from here (the konnector must reach it from the consumer too)",
        )
    if err.code == 401:
        return Failure(
            f"the provider at {server} rejected the credentials in {path} ({err.message})",
            "ask the provider for a fresh kubeconfig (the token or certificate may have expired)",
        )
    if err.code == 403:
        return Failure(
            f"the provider's RBAC denies what the konnector needs: {err.message}",
            f"ask the provider's admin to grant it: {RBAC_HINT}",
        )
    return Failure(f"asking the provider at {server} failed: {err}", "")


def cmd_bind(args: argparse.Namespace, out: IO[str]) -> int:
    single = _provider_kubeconfig(args.provider_kubeconfig, args.provider_context)
    creds = sanitize(single)
    assert isinstance(creds, Credentials)  # single_context checked it
    warning = transport_warning(creds)
    if warning:
        # The Connection will say the same in SecretValid=True/InsecureTransport.
        sys.stderr.write(f"{PROG}: warning: {warning}\n")
    try:
        provider = KubeClient.from_credentials(creds, user_agent=USER_AGENT)
    except ValueError as err:
        raise Failure(
            f"the credentials in {args.provider_kubeconfig} are not usable: {err}", ""
        ) from err
    provider.connect_timeout = CONNECT_TIMEOUT
    with provider:
        offer = _offer(provider, args.provider_kubeconfig)
    if args.list_exports:
        out.write(exports_table(offer, creds.server))
        return 0
    chosen = kb.choose_apis(
        offer, args.bind_apis, every=args.bind_all, namespaced=bool(args.bind_namespace)
    )
    if isinstance(chosen, kb.NotBindable):
        # Neither --api nor --all: the user learns what there is to bind (a usage error; --list
        # is the listing that succeeds).
        if args.bind_apis or args.bind_all:
            raise Failure(chosen.message)
        raise Failure(
            chosen.message, f"`{PROG} --provider-kubeconfig FILE --list` lists them", code=2
        )
    connection = args.connection or kb.as_label(kb.cluster_name(single))
    ref = kb.BindingRef(args.binding or connection, args.bind_namespace)
    problems = kb.bundle_problems(
        connection=connection, konnector_namespace=args.konnector_namespace, binding=ref
    )
    if problems:
        raise Failure("; ".join(problems), "choose another name", code=2)
    objects = kb.bundle(
        connection=connection,
        kubeconfig_text=yaml.safe_dump(single, sort_keys=False),
        apis=chosen,
        konnector_namespace=args.konnector_namespace,
        binding=ref,
    )
    if args.output == "yaml":
        out.write(bundle_yaml(objects))
        return 0
    if args.dry_run:
        for obj in objects:
            out.write(f"{_describe(obj)} (dry run: not applied)\n")
        return 0
    with consumer_client(args) as consumer:
        _refuse_self_binding(consumer, offer, args.provider_kubeconfig)
        for obj in objects:
            try:
                retrying(functools.partial(_apply, consumer, obj))
            except ApiError as err:
                raise _apply_failure(err, obj, consumer.host) from err
            out.write(f"{_describe(obj)} applied\n")
    out.write(
        f"binding {', '.join(chosen)} through Connection {connection}; "
        f"`{PROG} status` shows when it is Ready\n"
    )
    return 0


def exports_table(offer: kb.Offer, server: str) -> str:
    """`--list`: what the provider exports, one API a line, and how to bind one."""
    if not offer.apis:
        return (
            f"the provider at {server} exports no APIs (schema source {offer.source}); on the "
            f"provider, run: kubectl label crd <name> {keys.LABEL_EXPORTED}=true\n"
        )
    rows = [("NAME", "SCOPE", "VERSIONS")] + [
        (str(a["name"]), str(a.get("scope", "")), ",".join(map(str, a.get("versions", ()))))
        for a in offer.apis
    ]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}".rstrip() for r in rows]
    return (
        f"the provider at {server} exports (schema source {offer.source}):\n"
        + "".join(f"  {line}\n" for line in lines)
        + f"bind with: {PROG} --provider-kubeconfig FILE --api NAME (or --all)\n"
    )


def _refuse_self_binding(consumer: KubeClient, offer: kb.Offer, path: str) -> None:
    """The Connection would refuse it (`kbcore.control.connection` rule 6a): say so before
    applying."""

    def answer(read: Read) -> Any:
        try:
            return read_retrying(consumer, read)
        except ApiError as err:
            return Failed(err)

    try:
        local = _run_reads(kb.consumer_identity(), answer)
    except (ApiError, IdentityUnknown):
        return  # the konnector checks again, and says why in the Connection's conditions
    if reaches_itself(offer.cluster_uid, local):
        raise Failure(
            f"the provider kubeconfig {path} points at this cluster itself (cluster "
            f"{local}): a cluster is never bound to itself",
            "pass the provider's kubeconfig to --provider-kubeconfig, and your own cluster "
            "with --kubeconfig / --context",
        )


def _apply(client: KubeClient, obj: Obj) -> Obj:
    """Server-side apply, as `kubectl apply --server-side --force-conflicts`."""
    key = ObjectKey(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
    return client.patch(KINDS[obj["kind"]], key, obj, "apply", FIELD_MANAGER, force=True)


def _describe(obj: Obj) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    return f"{obj['kind']} {where}"


def _apply_failure(err: ApiError, obj: Obj, host: str) -> Failure:
    namespace = obj["metadata"].get("namespace", "")
    if err.code == 404 and namespace and "namespaces" in err.message:
        return Failure(
            f"namespace {namespace} does not exist on the consumer ({err.message})",
            f"kubectl create namespace {namespace}"
            + (" (or install the konnector, which creates it)" if obj["kind"] == "Secret" else ""),
        )
    return consumer_failure(err, f"applying {_describe(obj)}", host, KINDS[obj["kind"]])


# -- kubectl bind status -----------------------------------------------------------------------


def _list(client: KubeClient, gvr: GVR, namespace: str = "") -> list[Obj]:
    try:
        return retrying(lambda: client.list(gvr, namespace)[0])
    except ApiError as err:
        raise consumer_failure(err, f"listing {gvr.group_resource}", client.host, gvr) from err


def cmd_status(args: argparse.Namespace, out: IO[str]) -> int:
    with consumer_client(args) as consumer:
        conns = _list(consumer, CONNECTIONS)
        cbs = _list(consumer, CLUSTERBINDINGS)
        bs = _list(consumer, BINDINGS)
    if not (conns or cbs or bs):
        out.write(
            "no Connections or bindings on this cluster; bind with: "
            f"{PROG} --provider-kubeconfig FILE --api NAME\n"
        )
        return 0
    for line in overview.table(overview.status_rows(conns, cbs, bs)):
        out.write(line.rstrip() + "\n")
    return 0


# -- kubectl bind plan -------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace, out: IO[str]) -> int:
    clients = Clients(consumer_client(args))
    try:
        gen = dryrun.dry_run(args.konnector_namespace, time.time())
        result = drive(gen, clients.answer, _refuse_writes)
    finally:
        clients.close()
    if args.output == "json":
        out.write(json.dumps(dryrun.to_json(result), indent=2) + "\n")
    else:
        out.write("\n".join(dryrun.report(result)) + "\n")
    if result.problems and not result.keys:
        raise Failure(
            "cannot plan: " + "; ".join(result.problems),
            "use a consumer kubeconfig that may list what the konnector watches",
        )
    return 0


# -- kubectl bind rbac -------------------------------------------------------------------------


def _subject(args: argparse.Namespace) -> rbac.Subject:
    if args.user:
        return rbac.Subject("User", args.user)
    if args.group:
        return rbac.Subject("Group", args.group)
    namespace, sep, name = (args.service_account or "kube-bind/konnector").partition("/")
    if not sep or not namespace or not name:
        raise Failure("--service-account must be NAMESPACE/NAME", "", code=2)
    return rbac.Subject("ServiceAccount", name, namespace)


def _related(values: Sequence[str]) -> list[rbac.RelatedAccess]:
    out = []
    for value in values:
        resource, _, direction = value.partition(":")
        try:
            out.append(rbac.RelatedAccess(resource, direction))
        except ValueError as err:
            raise Failure(
                f"--related {value}: {err}", "e.g. --related secrets:FromConsumer", 2
            ) from err
    return out


def cmd_rbac(args: argparse.Namespace, out: IO[str]) -> int:
    for name in args.api:
        api = rbac.api_resource(name)
        if not api.resource or not api.group:
            raise Failure(f"--api {name}: not an API name <plural>.<group>", "", code=2)
    rules = rbac.provider_rules(
        args.api, binding_namespace=args.namespace, related=_related(args.related)
    )
    objects = rbac.rbac_objects(rules, name=args.name, subject=_subject(args))
    out.write(
        "# Provider RBAC for kube-bind: what the konnector does on the provider for "
        f"{', '.join(args.api)}"
        + (f" (a Binding in namespace {args.namespace})" if args.namespace else "")
        + ".\n# Apply it on the provider: kubectl apply -f -\n"
    )
    docs = []
    for obj in objects:
        lines = []
        if obj["kind"] in ("ClusterRole", "Role"):
            namespace = obj["metadata"].get("namespace", "")
            for r in rules:
                if r.namespace == namespace:
                    names = f" {','.join(r.names)}" if r.names else ""
                    target = f"{r.resource}.{r.group}" if r.group else r.resource
                    lines.append(f"# {','.join(r.verbs)} {target}{names}: {r.why}")
        docs.append(
            "\n".join(lines) + ("\n" if lines else "") + yaml.safe_dump(obj, sort_keys=False)
        )
    out.write("---\n".join(docs))
    return 0


# -- kubectl bind unbind -----------------------------------------------------------------------


def _get(client: KubeClient, gvr: GVR, key: ObjectKey) -> Obj | None:
    try:
        return retrying(lambda: client.get(gvr, key))
    except ApiError as err:
        if err.code == 404 and not (err.details or {}).get("causes"):
            return None
        raise consumer_failure(
            err, f"reading {gvr.group_resource} {key}", client.host, gvr
        ) from err


def _forecast(client: KubeClient, binding: Obj) -> list[str]:
    scope = binding["metadata"].get("namespace", "")
    crds: dict[str, Obj | None] = {}
    objects: dict[str, list[Obj]] = {}
    for name in api_names(binding):
        crd = _get(client, CRDS, ObjectKey("", name))
        crds[name] = crd
        served = served_resource(crd) if crd is not None else None
        objects[name] = _list(client, served.gvr, scope) if served is not None else []
    return overview.unbind_forecast(
        binding,
        cluster_bindings=_list(client, CLUSTERBINDINGS),
        bindings=_list(client, BINDINGS),
        crds=crds,
        objects=objects,
    )


def _ready_message(obj: Obj) -> str:
    """The binding's Ready condition, as the konnector last wrote it."""
    status, reason, message = overview.ready_condition(obj)
    return f"Ready={status} {reason}: {message}" if reason else f"Ready={status}: {message}"


def cmd_unbind(args: argparse.Namespace, out: IO[str]) -> int:
    kind = "Binding" if args.namespace else "ClusterBinding"
    gvr = gvr_of({"kind": kind})
    key = ObjectKey(args.namespace, args.name)
    with consumer_client(args) as consumer:
        binding = _get(consumer, gvr, key)
        if binding is None:
            raise Failure(
                f"{kind} {key} not found",
                f"`{PROG} status` lists the bindings"
                + ("" if args.namespace else "; for a Binding pass -n NAMESPACE"),
            )
        binding = {**binding, "kind": kind}
        out.write(f"unbinding {kind} {key} (Connection {connection_name(binding) or '?'}):\n")
        for line in _forecast(consumer, binding):
            out.write(f"  {line}\n")
        try:
            consumer.delete(gvr, key, uid=binding["metadata"].get("uid"))
        except ApiError as err:
            if err.code != 404:
                raise consumer_failure(err, f"deleting {kind} {key}", consumer.host, gvr) from err
        if args.no_wait:
            out.write(f"{kind} {key} deleted; the konnector drains it before it goes\n")
            return 0
        return _wait_gone(consumer, gvr, key, kind, args.timeout, out)


def _wait_gone(
    client: KubeClient, gvr: GVR, key: ObjectKey, kind: str, timeout: float, out: IO[str]
) -> int:
    deadline = time.monotonic() + timeout
    said = ""
    while True:
        current = _get(client, gvr, key)
        if current is None:
            out.write(f"{kind} {key} is gone\n")
            return 0
        message = _ready_message(current)
        if message != said:
            out.write(f"  waiting for the drain: {message}\n")
            out.flush()
            said = message
        if time.monotonic() >= deadline:
            raise Failure(
                f"{kind} {key} still exists after {timeout:g}s ({message})",
                "is the konnector running? It drains a binding before letting it go. If the "
                f"provider is gone for good, remove the finalizer {keys.FINALIZER_CLEANUP} by "
                "hand (its provider copies are then left behind)",
            )
        time.sleep(POLL_SECONDS)


# -- main --------------------------------------------------------------------------------------

COMMANDS: dict[str, Callable[[argparse.Namespace, IO[str]], int]] = {
    "status": cmd_status,
    "plan": cmd_plan,
    "rbac": cmd_rbac,
    "unbind": cmd_unbind,
}
BIND_ONLY = {
    "provider_kubeconfig": "--provider-kubeconfig",
    "provider_context": "--provider-context",
    "bind_apis": "--api",
    "bind_all": "--all",
    "list_exports": "--list",
    "bind_namespace": "-n/--namespace",
    "connection": "--connection",
    "binding": "--binding",
    "dry_run": "--dry-run",
}
"""Flags of the bind command itself; given before a subcommand they would be ignored."""


def _usage(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)


def cli() -> int:
    """The `kubectl-bind` console script: `main`, and a reader that stops early
    (`kubectl bind ... -o yaml | head`) ends it quietly, with the status a shell gives a command
    killed by SIGPIPE, instead of a traceback."""
    try:
        try:
            return main()
        finally:
            sys.stdout.flush()  # inside the try: a closed pipe shows here, not at exit
    except BrokenPipeError:
        # Python would report the failed flush of stdout at exit once more: point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


SERVICE_COMMANDS = ("login", "catalog")
"""The gateway's commands (kbshell.bind.service); any other first word that is not one of
COMMANDS is a provider URL or an Export name."""


def first_word(argv: Sequence[str], parsers: Sequence[argparse.ArgumentParser]) -> str | None:
    """The first positional argument of `argv`: skips options and the values of those that
    take one (as any of `parsers` defines them), so `--kubeconfig FILE widgets` finds widgets."""
    takes_value = {
        option
        for parser in parsers
        for action in parser._actions
        if action.nargs != 0
        for option in action.option_strings
    }
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if word.startswith("-") and word != "-":
            if "=" not in word and word in takes_value:
                next(words, None)
            continue
        return word
    return None


def _run(call: Callable[[], int]) -> int:
    try:
        return call()
    except Failure as f:
        sys.stderr.write(f"{PROG}: error: {f.problem}\n")
        if f.fix:
            sys.stderr.write(f"  fix: {f.fix}\n")
        return f.code
    except KeyboardInterrupt:
        return 1


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    from kbshell.bind import service

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    service_parsers = service.build_parsers()
    word = first_word(argv, [parser, *service_parsers.values()])
    if word is not None and word not in COMMANDS:
        form = word if word in SERVICE_COMMANDS else "bind"
        rest = list(argv)
        if form != "bind":
            rest.remove(word)
        sargs = service_parsers[form].parse_args(rest)
        run = {"bind": service.cmd_bind, "login": service.cmd_login,
               "catalog": service.cmd_catalog}[form]  # fmt: skip
        return _run(lambda: run(sargs, out))
    args = parser.parse_args(argv)
    if args.command is not None:
        misplaced = [flag for dest, flag in BIND_ONLY.items() if getattr(args, dest, None)]
        if misplaced:
            _usage(
                parser,
                f"{', '.join(misplaced)}: not an option of `{args.command}` (pass the "
                "command's own options after it)",
            )
    else:
        if not args.provider_kubeconfig:
            _usage(parser, "--provider-kubeconfig FILE is required (or give a command)")
        if args.bind_apis and args.bind_all:
            _usage(parser, "pass --api NAME (repeatable) or --all, not both")
        if args.list_exports and (
            args.bind_apis or args.bind_all or args.dry_run or args.output or args.bind_namespace
        ):
            _usage(parser, "--list only lists what the provider exports: pass it alone")
    if args.command is None:
        return _run(lambda: cmd_bind(args, out))
    return _run(lambda: COMMANDS[args.command](args, out))
