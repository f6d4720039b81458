"""The provider kubeconfig: from the Connection's Secret to credentials the shell may use.

A kubeconfig handed over by a service provider is untrusted input. It is reduced to a small
`Credentials` value holding inline data only; anything that would make the konnector run a
program, read its own files, or hand a secret to whoever is on the network path is refused
with a message naming the field. `kubectl bind` checks a kubeconfig file with these same
functions, so the two never disagree.

 1. The Secret must be in the konnector's namespace (a Connection must not borrow credentials
    from another namespace the consumer's users cannot see into).
 2. The key (default `kubeconfig`) must exist and hold non-empty base64 text that decodes as
    UTF-8, at most `MAX_KUBECONFIG_BYTES` (the API server's own limit on a Secret).
 3. The text must parse as YAML (`yaml.safe_load`: plain data, no Python objects) into a
    mapping that expands, YAML aliases included, to at most `MAX_KUBECONFIG_NODES` values
    nested at most `MAX_KUBECONFIG_DEPTH` deep (an alias bomb is a few lines of text).
 4. What client-go refuses is refused: `clusters`, `users` and `contexts` must be lists of
    mappings, each with a non-empty string `name`, and no name may appear twice in a list (the
    konnector would otherwise pick one silently, and `kubectl` rejects the file); a kept field
    of the wrong type (a number for `token`, a string for `insecure-skip-tls-verify`) is
    refused rather than dropped (dropping a token would make the konnector anonymous);
    `certificate-authority-data` together with `insecure-skip-tls-verify: true` is refused.
 5. There must be a usable context: `current-context`, or the only context there is, naming a
    known cluster and (if any) a known user.
 6. Refused: `exec` and `auth-provider` plugins; file paths (`tokenFile`,
    `client-certificate`, `client-key`, `certificate-authority`).
 7. The server is an absolute `https://` or `http://` URL with a host, an optional numeric
    port and an optional path; user info (`https://user:pass@host`, credentials client-go would
    send as basic auth), a query, a fragment, whitespace or control characters are refused.
    A proxy is an `http(s)://` or `socks5://` URL with a host.
 8. A secret never goes where anyone on the network path can read it:
    a. an `http://` server with a bearer token, basic auth or a client certificate or key is
       refused (a token or password would travel in clear; a client certificate is never
       presented without TLS, so the konnector would silently be anonymous). There is no
       opt-in: API servers serve TLS only, so a plain-http server is a proxy or an impostor;
    b. `insecure-skip-tls-verify: true` with a bearer token or basic auth is refused (whoever
       answers gets the secret). With a client certificate it is kept: the private key never
       leaves, and a TLS client signature cannot be replayed by a man in the middle;
    c. what remains insecure is kept with a warning (`transport_warning`, shown as
       `SecretValid=True/InsecureTransport`): an `http://` server without any credentials,
       or `insecure-skip-tls-verify` without a bearer secret. Anyone on the path can then read
       what the konnector sends (specs, FromConsumer Secrets) and answer as the provider.
 9. Kept: server, inline CA data, `insecure-skip-tls-verify`, `tls-server-name`, inline client
    certificate and key, bearer token, basic auth, proxy URL.

Laws (tests/unit/test_kubeconfig.py): `sanitize` and `credentials_for` are total (any input
gives Credentials or a SecretProblem, never an exception); accepted credentials always have an
http(s) server, and never a bearer secret without verified TLS.

`Credentials.fingerprint` changes whenever any kept field changes, so a rotated Secret is
noticed without the Connection first going not-Ready.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs
import yaml

DEFAULT_KEY = "kubeconfig"
MAX_KUBECONFIG_BYTES = 1024 * 1024
"""Rule 2: the API server refuses a Secret larger than 1 MiB, so a kubeconfig never is."""
MAX_KUBECONFIG_NODES = 100_000
"""Rule 3: values in the parsed document, every alias counted where it is used."""
MAX_KUBECONFIG_DEPTH = 64
"""Rule 3: nesting of mappings and lists (a real kubeconfig is 5 deep, extensions a few more)."""


@attrs.frozen
class Credentials:
    """What the shell needs to talk to the provider as the kubeconfig's user; inline data only."""

    server: str
    certificate_authority_data: str = ""
    insecure_skip_tls_verify: bool = False
    tls_server_name: str = ""
    client_certificate_data: str = ""
    client_key_data: str = attrs.field(default="", repr=False)
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

    @property
    def plain_http(self) -> bool:
        return self.server.split("://", 1)[0].lower() == "http"

    @property
    def bearer_secret(self) -> bool:
        """A secret sent in every request (token or basic auth): whoever reads one can reuse it."""
        return bool(self.token or self.username or self.password)

    @property
    def client_certificate(self) -> bool:
        return bool(self.client_certificate_data or self.client_key_data)


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
) -> Credentials | SecretProblem:
    """The provider credentials the Connection's Secret yields, or why it yields none."""
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
    if len(raw) > MAX_KUBECONFIG_BYTES * 4 // 3 + 4:
        return SecretProblem(
            f"Secret {namespace}/{name} key {key!r} is larger than {MAX_KUBECONFIG_BYTES} bytes"
        )
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return SecretProblem(f"Secret {namespace}/{name} key {key!r} is not valid base64 UTF-8")
    if not text.strip():
        return SecretProblem(f"Secret {namespace}/{name} key {key!r} is empty")
    try:
        doc = yaml.safe_load(text)
    except Exception as err:  # YAMLError, and RecursionError on deep nesting: a refusal too
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
_TEXT_FIELDS = {
    "user": ("client-certificate-data", "client-key-data", "token", "username", "password"),
    "cluster": ("server", "certificate-authority-data", "tls-server-name", "proxy-url"),
}
_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def sanitize(doc: Any) -> Credentials | SecretProblem:
    """Credentials from a parsed kubeconfig, or the first rule (3-8) it breaks."""
    if not isinstance(doc, Mapping):
        return SecretProblem("kubeconfig is not a mapping")
    size = _size_problem(doc)
    if size:
        return SecretProblem(size)
    sections: dict[str, dict[str, Mapping[str, Any]]] = {}
    for field, entry in _SECTIONS:
        named = _named(doc.get(field), field, entry)
        if isinstance(named, SecretProblem):
            return named
        sections[field] = named
    contexts, clusters, users = sections["contexts"], sections["clusters"], sections["users"]
    current = doc.get("current-context")
    if not (isinstance(current, str) and current) and len(contexts) == 1:
        current = next(iter(contexts))
    if not isinstance(current, str) or current not in contexts:
        return SecretProblem(f"kubeconfig has no usable current-context (got {current!r})")
    ctx = contexts[current]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not isinstance(cluster_name, str) or cluster_name not in clusters:
        return SecretProblem(f"kubeconfig context {current!r} names no known cluster")
    cluster = clusters[cluster_name]
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
    for section, name, values in (("user", user_name, user), ("cluster", cluster_name, cluster)):
        for field in _TEXT_FIELDS[section]:
            if values.get(field) is not None and not isinstance(values.get(field), str):
                return SecretProblem(
                    f"kubeconfig {section} {name!r} field {field!r} is not a string"
                )
    insecure = cluster.get("insecure-skip-tls-verify")
    if insecure is not None and not isinstance(insecure, bool):
        return SecretProblem(
            f"kubeconfig cluster {cluster_name!r} field 'insecure-skip-tls-verify' is not "
            "true or false"
        )
    server = cluster.get("server")
    why = _server_problem(server)
    if why:
        return SecretProblem(f"kubeconfig cluster {cluster_name!r} server {why}")
    proxy = cluster.get("proxy-url") or ""
    if not isinstance(proxy, str) or (proxy and not _url_ok(proxy, ("http", "https", "socks5"))):
        return SecretProblem(f"kubeconfig cluster {cluster_name!r} has an unusable proxy-url")
    creds = Credentials(
        server=str(server),
        certificate_authority_data=_text(cluster, "certificate-authority-data"),
        insecure_skip_tls_verify=insecure is True,
        tls_server_name=_text(cluster, "tls-server-name"),
        client_certificate_data=_text(user, "client-certificate-data"),
        client_key_data=_text(user, "client-key-data"),
        token=_text(user, "token"),
        username=_text(user, "username"),
        password=_text(user, "password"),
        proxy_url=proxy,
    )
    if creds.insecure_skip_tls_verify and creds.certificate_authority_data:
        # client-go refuses the pair ("specifying a root certificates file with the insecure
        # flag is not allowed"): one of the two is not what the provider meant.
        return SecretProblem(
            f"kubeconfig cluster {cluster_name!r} sets both certificate-authority-data and "
            "insecure-skip-tls-verify: true, which client-go refuses; keep the CA and drop "
            "insecure-skip-tls-verify"
        )
    exposed = _exposed_secret(creds)
    if exposed:
        return SecretProblem(
            f"kubeconfig cluster {cluster_name!r} and user {user_name!r}: {exposed}"
        )
    return creds


def _exposed_secret(creds: Credentials) -> str:
    """Rule 8a and 8b: why these credentials would reach someone they are not meant for."""
    if creds.plain_http and creds.bearer_secret:
        what = "a bearer token" if creds.token else "a username and password"
        return (
            f"the server is plain http:// and the user has {what}, which would travel in clear "
            "for anyone on the network path to read; use the provider's https:// address"
        )
    if creds.plain_http and creds.client_certificate:
        return (
            "the server is plain http:// and the user has a client certificate, which is only "
            "ever presented over TLS (the konnector would be anonymous); use the provider's "
            "https:// address"
        )
    if creds.insecure_skip_tls_verify and creds.bearer_secret:
        what = "bearer token" if creds.token else "password"
        return (
            f"insecure-skip-tls-verify: true with a {what}: without verifying the server "
            f"certificate, whoever answers on the network path receives the {what}; set "
            "certificate-authority-data to the provider's CA instead"
        )
    return ""


def transport_warning(creds: Credentials) -> str:
    """Rule 8c: why traffic with accepted credentials can still be read or forged, or ""."""
    if creds.plain_http:
        return (
            f"the provider server {creds.server} is plain http://: anyone on the network path "
            "can read what the konnector sends (specs, related Secrets) and answer as the "
            "provider; use its https:// address"
        )
    if creds.insecure_skip_tls_verify:
        return (
            "insecure-skip-tls-verify: true: the provider's certificate is not verified, so "
            "anyone on the network path can read what the konnector sends (specs, related "
            "Secrets) and answer as the provider; set certificate-authority-data instead"
        )
    return ""


def _size_problem(doc: Any) -> str:
    """Rule 3, walked without recursion; an alias is counted every time it is used."""
    count = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_KUBECONFIG_NODES:
            return (
                f"kubeconfig expands to more than {MAX_KUBECONFIG_NODES} values "
                "(YAML aliases included); a kubeconfig is a few dozen"
            )
        if isinstance(value, Mapping | list):
            if depth > MAX_KUBECONFIG_DEPTH:
                return f"kubeconfig is nested more than {MAX_KUBECONFIG_DEPTH} levels deep"
            children = value.values() if isinstance(value, Mapping) else value
            stack.extend((child, depth + 1) for child in children)
    return ""


def _named(
    entries: Any, field: str, body_field: str
) -> dict[str, Mapping[str, Any]] | SecretProblem:
    """Rule 4: the `field` list as name -> body; malformed entries and duplicates refused."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        return SecretProblem(f"kubeconfig field {field!r} is not a list")
    out: dict[str, Mapping[str, Any]] = {}
    first: dict[str, int] = {}
    for i, e in enumerate(entries):
        name = e.get("name") if isinstance(e, Mapping) else None
        if not isinstance(name, str) or not name:
            return SecretProblem(
                f"kubeconfig {field}[{i}] is not an entry with a name and a {body_field!r}"
            )
        if name in first:
            return SecretProblem(
                f"kubeconfig has two {field} named {name!r} ({field}[{first[name]}] and "
                f"{field}[{i}]); client-go refuses such a file, and which one is meant is a "
                "guess: keep one"
            )
        first[name] = i
        body = e.get(body_field)
        out[name] = body if isinstance(body, Mapping) else {}
    return out


def _text(values: Mapping[str, Any], field: str) -> str:
    v = values.get(field)
    return v if isinstance(v, str) else ""


def _server_problem(url: Any) -> str:
    """Rule 7: why `url` is not a usable server URL, or ""."""
    if not isinstance(url, str) or not url:
        return "is missing: it must be an http(s) server URL"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "contains whitespace or control characters; it must be an http(s) server URL"
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return f"{url!r} is not an http(s) server URL"
    authority = rest.partition("/")[0]  # any path is kept: kcp and proxies serve APIs under one
    if "?" in url or "#" in url:
        return f"{url!r} has a query or fragment; an http(s) server URL has neither"
    if "@" in authority:
        # client-go would send it as basic auth: credentials belong in the user entry.
        return "carries user info (user@ or user:password@); put credentials in the user entry"
    host, port = _split_host_port(authority)
    if not host:
        return f"{url!r} has no host; it must be an http(s) server URL"
    if port is not None and not (port.isdigit() and 0 < int(port) <= 65535):
        return f"{url!r} has an invalid port"
    return ""


def _split_host_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return "", None
        host, rest = authority[1:end], authority[end + 1 :]
        if not rest:
            return host, None
        return (host, rest[1:]) if rest.startswith(":") else ("", None)
    host, sep, port = authority.partition(":")
    return host, (port if sep else None)


def _url_ok(url: str, schemes: tuple[str, ...]) -> bool:
    scheme, sep, rest = url.partition("://")
    return bool(sep) and scheme.lower() in schemes and bool(rest.split("/", 1)[0])
