"""The provider kubeconfig: from the Connection's Secret to credentials the shell may use.

A kubeconfig handed over by a service provider is untrusted input. It is reduced to a small
`Credentials` value holding inline data only; anything that would make the konnector run a
program or read its own files is refused with a message naming the field (DESIGN.md,
Decisions):

 1. The Secret must be in the konnector's namespace (a Connection must not borrow credentials
    from another namespace the consumer's users cannot see into).
 2. The key (default `kubeconfig`) must exist and hold non-empty base64 text.
 3. The text must parse (the shell injects the YAML parser, which kbcore may not import) into a
    kubeconfig with a usable context: `current-context`, or the only context there is.
 4. Refused: `exec` and `auth-provider` plugins; file paths (`tokenFile`,
    `client-certificate`, `client-key`, `certificate-authority`); a server that is not an
    http(s) URL with a host; a proxy that is not http(s) or socks5.
 5. Kept: server, inline CA data, `insecure-skip-tls-verify`, `tls-server-name`, inline client
    certificate and key, bearer token, basic auth, proxy URL.

`Credentials.fingerprint` changes whenever any kept field changes, so a rotated Secret is
noticed without the Connection first going not-Ready.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

DEFAULT_KEY = "kubeconfig"


@attrs.frozen
class Credentials:
    """What the shell needs to talk to the provider as the kubeconfig's user; inline data only."""

    server: str
    certificate_authority_data: str = ""
    insecure_skip_tls_verify: bool = False
    tls_server_name: str = ""
    client_certificate_data: str = ""
    client_key_data: str = ""
    token: str = attrs.field(default="", repr=False)
    username: str = ""
    password: str = attrs.field(default="", repr=False)
    proxy_url: str = ""

    @property
    def fingerprint(self) -> str:
        """A digest of every field: equal fingerprints mean the same provider access."""
        doc = json.dumps(attrs.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(doc).hexdigest()[:16]

    @property
    def host(self) -> str:
        """The server's host name (no scheme, port or path)."""
        rest = self.server.split("://", 1)[-1]
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        if host.startswith("["):
            return host[1 : host.find("]")]
        return host.split(":", 1)[0]


@attrs.frozen
class SecretProblem:
    """Why the Secret does not yield usable credentials; `message` is shown in SecretValid."""

    message: str


def secret_ref(connection: Mapping[str, Any]) -> tuple[str, str, str]:
    """(namespace, name, key) of the Connection's kubeconfigSecretRef; key defaulted."""
    spec = connection.get("spec")
    ref = spec.get("kubeconfigSecretRef") if isinstance(spec, Mapping) else None
    ref = ref if isinstance(ref, Mapping) else {}

    def text(field: str) -> str:
        v = ref.get(field)
        return v if isinstance(v, str) else ""

    return text("namespace"), text("name"), text("key") or DEFAULT_KEY


def credentials_for(
    connection: Mapping[str, Any],
    secret: Mapping[str, Any] | None,
    konnector_namespace: str,
    parse_yaml: Callable[[str], Any],
) -> Credentials | SecretProblem:
    """The provider credentials the Connection's Secret yields, or why it yields none.

    `parse_yaml` is the shell's YAML loader (it may raise any exception on bad input)."""
    namespace, name, key = secret_ref(connection)
    if not name:
        return SecretProblem("spec.kubeconfigSecretRef.name is empty")
    if namespace != konnector_namespace:
        return SecretProblem(
            f"Secret {namespace}/{name} is not in the konnector's namespace "
            f"{konnector_namespace!r}; kubeconfig Secrets must live there"
        )
    if secret is None:
        return SecretProblem(f"Secret {namespace}/{name} not found")
    data = _data(secret)
    if key not in data:
        return SecretProblem(f"Secret {namespace}/{name} has no key {key!r}")
    raw = data.get(key)
    if not isinstance(raw, str) or not raw:
        return SecretProblem(f"Secret {namespace}/{name} key {key!r} is empty")
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return SecretProblem(f"Secret {namespace}/{name} key {key!r} is not valid base64 UTF-8")
    if not text.strip():
        return SecretProblem(f"Secret {namespace}/{name} key {key!r} is empty")
    try:
        doc = parse_yaml(text)
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return SecretProblem(f"Secret {namespace}/{name} key {key!r} is not YAML: {first}")
    return sanitize(doc)


def _data(secret: Mapping[str, Any]) -> Mapping[str, Any]:
    data = secret.get("data")
    return data if isinstance(data, Mapping) else {}


_PATH_FIELDS = {
    "user": ("tokenFile", "client-certificate", "client-key"),
    "cluster": ("certificate-authority",),
}
_PLUGIN_FIELDS = ("exec", "auth-provider")


def sanitize(doc: Any) -> Credentials | SecretProblem:
    """Credentials from a parsed kubeconfig, refusing plugins and file paths (rules 3-5)."""
    if not isinstance(doc, Mapping):
        return SecretProblem("kubeconfig is not a mapping")
    contexts = _named(doc.get("contexts"), "context")
    current = doc.get("current-context")
    if not (isinstance(current, str) and current) and len(contexts) == 1:
        current = next(iter(contexts))
    if not isinstance(current, str) or current not in contexts:
        return SecretProblem(f"kubeconfig has no usable current-context (got {current!r})")
    ctx = contexts[current]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    clusters = _named(doc.get("clusters"), "cluster")
    if not isinstance(cluster_name, str) or cluster_name not in clusters:
        return SecretProblem(f"kubeconfig context {current!r} names no known cluster")
    cluster = clusters[cluster_name]
    users = _named(doc.get("users"), "user")
    user: Mapping[str, Any] = {}
    if isinstance(user_name, str) and user_name:
        if user_name not in users:
            return SecretProblem(f"kubeconfig context {current!r} names unknown user {user_name!r}")
        user = users[user_name]
    for field in _PLUGIN_FIELDS:
        if user.get(field) is not None:
            return SecretProblem(
                f"kubeconfig user {user_name!r} uses {field!r}, which would run a program inside "
                "the konnector; use an inline token or client certificate"
            )
    for section, values in (("user", user), ("cluster", cluster)):
        for field in _PATH_FIELDS[section]:
            if values.get(field):
                return SecretProblem(
                    f"kubeconfig {section} field {field!r} is a file path, which would make the "
                    f"konnector read its own files; use {field}-data inline instead"
                    if field != "tokenFile"
                    else "kubeconfig user field 'tokenFile' is a file path, which would make the "
                    "konnector read its own files; use an inline 'token' instead"
                )
    server = cluster.get("server")
    if not isinstance(server, str) or not _url_ok(server, ("http", "https")):
        return SecretProblem(f"kubeconfig cluster {cluster_name!r} has no http(s) server URL")
    proxy = cluster.get("proxy-url") or ""
    if not isinstance(proxy, str) or (proxy and not _url_ok(proxy, ("http", "https", "socks5"))):
        return SecretProblem(f"kubeconfig cluster {cluster_name!r} has an unusable proxy-url")
    return Credentials(
        server=server,
        certificate_authority_data=_text(cluster, "certificate-authority-data"),
        insecure_skip_tls_verify=cluster.get("insecure-skip-tls-verify") is True,
        tls_server_name=_text(cluster, "tls-server-name"),
        client_certificate_data=_text(user, "client-certificate-data"),
        client_key_data=_text(user, "client-key-data"),
        token=_text(user, "token"),
        username=_text(user, "username"),
        password=_text(user, "password"),
        proxy_url=proxy,
    )


def _named(entries: Any, field: str) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, Mapping) and isinstance(e.get("name"), str):
            body = e.get(field)
            out[e["name"]] = body if isinstance(body, Mapping) else {}
    return out


def _text(values: Mapping[str, Any], field: str) -> str:
    v = values.get(field)
    return v if isinstance(v, str) else ""


def _url_ok(url: str, schemes: tuple[str, ...]) -> bool:
    scheme, sep, rest = url.partition("://")
    return bool(sep) and scheme.lower() in schemes and bool(rest.split("/", 1)[0])
