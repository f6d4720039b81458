"""The provider kubeconfig (kbcore/control/kubeconfig.py; docs/design.md, "Differences from upstream"): inline data only.

A kubeconfig a provider hands over is untrusted: plugins and file paths are refused with a
message that names the field, so the user knows what to fix.
"""

from __future__ import annotations

import base64
from typing import Any

import attrs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore.control import kubeconfig as kubeconfig_module
from kbcore.control.kubeconfig import (
    MAX_KUBECONFIG_BYTES,
    MAX_KUBECONFIG_DEPTH,
    MAX_KUBECONFIG_NODES,
    Credentials,
    SecretProblem,
    credentials_for,
    sanitize,
    transport_warning,
)

NS = "kube-bind"
CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----ca").decode()
CERT = base64.b64encode(b"-----BEGIN CERTIFICATE-----client").decode()
KEY = base64.b64encode(b"-----BEGIN PRIVATE KEY-----client").decode()
TOKEN = "s3cr3t-t0ken-value"


def kubeconfig(
    *, cluster: dict[str, Any] | None = None, user: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A good kubeconfig: token, inline client certificate and CA; fields overridable."""
    c = {"server": "https://provider.example.com:6443", "certificate-authority-data": CA}
    u = {"token": TOKEN, "client-certificate-data": CERT, "client-key-data": KEY}
    c.update(cluster or {})
    u.update(user or {})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "prov",
        "clusters": [{"name": "prov-cluster", "cluster": c}],
        "users": [{"name": "prov-user", "user": u}],
        "contexts": [{"name": "prov", "context": {"cluster": "prov-cluster", "user": "prov-user"}}],
    }


def connection(namespace: str = NS, name: str = "kc", key: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"namespace": namespace, "name": name}
    if key is not None:
        ref["key"] = key
    return {"metadata": {"name": "p"}, "spec": {"kubeconfigSecretRef": ref}}


def secret(doc: Any = None, *, key: str = "kubeconfig", raw: Any = None) -> dict[str, Any]:
    text = yaml.safe_dump(kubeconfig() if doc is None else doc)
    value = base64.b64encode(text.encode()).decode() if raw is None else raw
    return {"metadata": {"namespace": NS, "name": "kc"}, "data": {key: value}}


def problem(result: Credentials | SecretProblem) -> str:
    assert isinstance(result, SecretProblem), f"expected a refusal, got {result!r}"
    return result.message


# -- the good case ------------------------------------------------------------------------------


def test_good_kubeconfig_yields_exactly_its_credentials() -> None:
    creds = credentials_for(connection(), secret(), NS)
    assert creds == Credentials(
        server="https://provider.example.com:6443",
        certificate_authority_data=CA,
        client_certificate_data=CERT,
        client_key_data=KEY,
        token=TOKEN,
    )


def test_kept_fields_are_carried_over() -> None:
    doc = kubeconfig(
        cluster={"tls-server-name": "api.internal", "proxy-url": "socks5://proxy:1080"},
        user={"username": "bob", "password": "pw"},
    )
    creds = sanitize(doc)
    assert isinstance(creds, Credentials)
    assert creds.tls_server_name == "api.internal"
    assert creds.proxy_url == "socks5://proxy:1080"
    assert (creds.username, creds.password) == ("bob", "pw")
    assert transport_warning(creds) == ""


def test_custom_key_is_read_instead_of_kubeconfig() -> None:
    conn = connection(key="provider.yaml")
    assert isinstance(credentials_for(conn, secret(key="provider.yaml"), NS), Credentials)
    msg = problem(credentials_for(conn, secret(), NS))
    assert "provider.yaml" in msg


def test_empty_key_in_ref_defaults_to_kubeconfig() -> None:
    assert isinstance(credentials_for(connection(key=""), secret(), NS), Credentials)


# -- the Secret ---------------------------------------------------------------------------------


def test_secret_outside_konnector_namespace_is_refused() -> None:
    msg = problem(credentials_for(connection(namespace="team-a"), secret(), NS))
    assert "team-a/kc" in msg and "konnector's namespace" in msg and NS in msg


def test_missing_secret_is_refused() -> None:
    msg = problem(credentials_for(connection(), None, NS))
    assert "kube-bind/kc" in msg and "not found" in msg


def test_empty_secret_name_is_refused() -> None:
    msg = problem(credentials_for(connection(name=""), secret(), NS))
    assert "kubeconfigSecretRef.name" in msg


def test_missing_key_is_refused_naming_the_key() -> None:
    msg = problem(credentials_for(connection(), secret(key="other"), NS))
    assert "'kubeconfig'" in msg and "no key" in msg


def test_empty_value_is_refused_saying_it_is_empty() -> None:
    # The key is there but holds nothing: the user needs "empty", not "no key".
    msg = problem(credentials_for(connection(), secret(raw=""), NS))
    assert "'kubeconfig'" in msg
    assert "empty" in msg, f"message claims the key is missing although it is empty: {msg!r}"


def test_blank_decoded_value_is_refused_as_empty() -> None:
    raw = base64.b64encode(b"  \n").decode()
    msg = problem(credentials_for(connection(), secret(raw=raw), NS))
    assert "'kubeconfig'" in msg and "empty" in msg


@pytest.mark.parametrize("raw", ["not base64!!", "YWJ", base64.b64encode(b"\xff\xfe").decode()])
def test_bad_base64_or_utf8_is_refused(raw: str) -> None:
    msg = problem(credentials_for(connection(), secret(raw=raw), NS))
    assert "base64" in msg and "'kubeconfig'" in msg


def test_yaml_parse_error_is_refused_with_the_first_line_of_the_error() -> None:
    # PyYAML's message goes on with the position and a caret under the offending text.
    raw = base64.b64encode(b"a: b: c\n  - [").decode()
    msg = problem(credentials_for(connection(), secret(raw=raw), NS))
    assert "not YAML" in msg and "mapping values are not allowed here" in msg
    assert "line 1" not in msg and "^" not in msg


def test_yaml_nested_deeper_than_the_parser_recurses_is_refused() -> None:
    # A few kilobytes of brackets make PyYAML's recursive composer give up (RecursionError):
    # a refusal like any other, not a crashed worker.
    raw = base64.b64encode(b"[" * 5000 + b"]" * 5000).decode()
    assert "not YAML" in problem(credentials_for(connection(), secret(raw=raw), NS))


def test_yaml_error_without_text_names_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_text: str) -> Any:
        raise RuntimeError()

    monkeypatch.setattr(kubeconfig_module.yaml, "safe_load", broken)
    assert "RuntimeError" in problem(credentials_for(connection(), secret(), NS))


@pytest.mark.parametrize("doc", [["a", "b"], "just text", 42, None])
def test_not_a_mapping_is_refused(doc: Any) -> None:
    assert "not a mapping" in problem(sanitize(doc))


# -- contexts, clusters, users ------------------------------------------------------------------


def test_no_current_context_with_a_single_context_uses_it() -> None:
    doc = kubeconfig()
    del doc["current-context"]
    creds = sanitize(doc)
    assert isinstance(creds, Credentials) and creds.token == TOKEN


def test_no_current_context_with_two_contexts_is_refused() -> None:
    doc = kubeconfig()
    del doc["current-context"]
    doc["contexts"].append({"name": "other", "context": {"cluster": "prov-cluster"}})
    assert "current-context" in problem(sanitize(doc))


def test_current_context_naming_no_context_is_refused() -> None:
    doc = kubeconfig()
    doc["current-context"] = "nope"
    msg = problem(sanitize(doc))
    assert "current-context" in msg and "nope" in msg


def test_unknown_cluster_is_refused() -> None:
    doc = kubeconfig()
    doc["contexts"][0]["context"]["cluster"] = "ghost"
    msg = problem(sanitize(doc))
    assert "cluster" in msg and "'prov'" in msg


def test_unknown_user_is_refused_naming_it() -> None:
    doc = kubeconfig()
    doc["contexts"][0]["context"]["user"] = "ghost"
    msg = problem(sanitize(doc))
    assert "user" in msg and "'ghost'" in msg


def test_context_without_user_means_no_client_credentials() -> None:
    doc = kubeconfig()
    del doc["contexts"][0]["context"]["user"]
    creds = sanitize(doc)
    assert isinstance(creds, Credentials)
    assert (creds.token, creds.client_certificate_data) == ("", "")


# -- refused fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "exec",
        "auth-provider",
    ],
)
def test_plugins_are_refused(field: str) -> None:
    plugin = {"command": "/bin/sh", "args": ["-c", "id"]} if field == "exec" else {"name": "gcp"}
    msg = problem(sanitize(kubeconfig(user={field: plugin})))
    assert f"'{field}'" in msg and "run a program" in msg
    assert "token" in msg  # says what to use instead


@pytest.mark.parametrize(
    ("section", "field", "instead"),
    [
        ("user", "tokenFile", "'token'"),
        ("user", "client-certificate", "client-certificate-data"),
        ("user", "client-key", "client-key-data"),
        ("cluster", "certificate-authority", "certificate-authority-data"),
    ],
)
def test_file_paths_are_refused(section: str, field: str, instead: str) -> None:
    doc = kubeconfig(**{section: {field: "/etc/kubernetes/pki/secret"}})
    msg = problem(sanitize(doc))
    assert f"'{field}'" in msg and "file path" in msg and section in msg
    assert instead in msg


@pytest.mark.parametrize(
    "server",
    [
        "ftp://provider.example.com",
        "file:///etc/passwd",
        "provider.example.com:6443",
        "https://",
        "unix:///var/run/k8s.sock",
        "",
    ],
)
def test_non_http_server_is_refused(server: str) -> None:
    msg = problem(sanitize(kubeconfig(cluster={"server": server})))
    assert "server" in msg and "http(s)" in msg and "'prov-cluster'" in msg


def test_missing_server_is_refused() -> None:
    doc = kubeconfig()
    del doc["clusters"][0]["cluster"]["server"]
    assert "server" in problem(sanitize(doc))


@pytest.mark.parametrize("proxy", ["ftp://proxy:21", "file:///tmp/p", "proxy:3128", "http://", 7])
def test_bad_proxy_url_is_refused(proxy: Any) -> None:
    msg = problem(sanitize(kubeconfig(cluster={"proxy-url": proxy})))
    assert "proxy-url" in msg and "'prov-cluster'" in msg


@pytest.mark.parametrize("proxy", ["http://proxy:3128", "https://proxy", "socks5://proxy:1080"])
def test_good_proxy_url_is_kept(proxy: str) -> None:
    creds = sanitize(kubeconfig(cluster={"proxy-url": proxy}))
    assert isinstance(creds, Credentials) and creds.proxy_url == proxy


def test_refusal_messages_never_contain_the_token() -> None:
    for doc in (
        kubeconfig(user={"exec": {"command": "x"}}),
        kubeconfig(user={"tokenFile": "/t"}),
        kubeconfig(cluster={"server": "ftp://x"}),
        kubeconfig(cluster={"proxy-url": "ftp://x"}),
        kubeconfig(cluster={"server": "http://provider.example.com"}),
        kubeconfig(cluster={"insecure-skip-tls-verify": True, "certificate-authority-data": ""}),
        kubeconfig(cluster={"server": f"https://u:{TOKEN}@provider.example.com"}),
    ):
        assert TOKEN not in problem(sanitize(doc))


# -- rule 4: what client-go refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "body"), [("clusters", "cluster"), ("users", "user"), ("contexts", "context")]
)
def test_duplicate_names_are_refused_naming_the_duplicate(field: str, body: str) -> None:
    doc = kubeconfig()
    twin = {"name": doc[field][0]["name"], body: dict(doc[field][0][body])}
    doc[field].append(twin)
    msg = problem(sanitize(doc))
    name = doc[field][0]["name"]
    assert f"two {field} named {name!r}" in msg and f"{field}[0] and {field}[1]" in msg
    assert "client-go refuses" in msg


def test_a_duplicate_the_context_does_not_use_is_refused_too() -> None:
    # kubectl rejects the whole file, so the konnector does not get to pick one either.
    doc = kubeconfig()
    doc["users"] += [{"name": "spare", "user": {"token": "a"}}, {"name": "spare", "user": {}}]
    assert "two users named 'spare'" in problem(sanitize(doc))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"name": "x"}, "is not a list"),
        ([["prov-cluster"]], "clusters[0] is not an entry with a name"),
        ([{"cluster": {"server": "https://a"}}], "clusters[0] is not an entry with a name"),
        ([{"name": 7, "cluster": {"server": "https://a"}}], "clusters[0] is not an entry"),
        ([{"name": "", "cluster": {"server": "https://a"}}], "clusters[0] is not an entry"),
    ],
)
def test_malformed_entry_lists_are_refused(value: Any, says: str) -> None:
    doc = kubeconfig()
    doc["clusters"] = value
    assert says in problem(sanitize(doc))


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("user", "token", 12345),
        ("user", "password", ["pw"]),
        ("user", "client-key-data", {"k": "v"}),
        ("cluster", "certificate-authority-data", 1),
        ("cluster", "tls-server-name", True),
    ],
)
def test_a_kept_field_of_the_wrong_type_is_refused_not_dropped(
    section: str, field: str, value: Any
) -> None:
    msg = problem(sanitize(kubeconfig(**{section: {field: value}})))
    assert f"field {field!r} is not a string" in msg and section in msg


@pytest.mark.parametrize("value", ["true", 1, "yes"])
def test_insecure_skip_tls_verify_must_be_a_boolean(value: Any) -> None:
    doc = kubeconfig(cluster={"insecure-skip-tls-verify": value})
    assert "'insecure-skip-tls-verify' is not true or false" in problem(sanitize(doc))


def test_a_ca_together_with_insecure_skip_tls_verify_is_refused_as_client_go_does() -> None:
    doc = kubeconfig(cluster={"insecure-skip-tls-verify": True}, user={"token": ""})
    msg = problem(sanitize(doc))
    assert "certificate-authority-data and insecure-skip-tls-verify" in msg
    assert "client-go refuses" in msg


# -- rule 7: the server URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ("https://admin:hunter2@provider.example.com", "user info"),
        ("https://admin@provider.example.com", "user info"),
        ("https://provider.example.com/?x=1", "query or fragment"),
        ("https://provider.example.com#frag", "query or fragment"),
        ("https://provider.example.com\r\nX-Injected: 1", "control characters"),
        ("https://provider.example.com /api", "whitespace"),
        ("https://provider.example.com:notaport", "invalid port"),
        ("https://provider.example.com:0", "invalid port"),
        ("https://provider.example.com:65536", "invalid port"),
        ("https://:6443", "no host"),
        ("https://[::1", "no host"),
        ("https://[::1]x", "no host"),
    ],
)
def test_bad_server_urls_are_refused_saying_why(server: str, says: str) -> None:
    msg = problem(sanitize(kubeconfig(cluster={"server": server})))
    assert "server" in msg and says in msg and "'prov-cluster'" in msg
    assert "hunter2" not in msg


@pytest.mark.parametrize(
    "server",
    [
        "https://provider.example.com",
        "HTTPS://provider.example.com:443",
        "https://[fd00::1]:6443",
        "https://kcp.example.com/clusters/root:org:ws",  # kcp serves a workspace under a path
        "https://rancher.example.com/k8s/clusters/c-m-abc/",
    ],
)
def test_good_server_urls_are_kept_with_their_path(server: str) -> None:
    creds = sanitize(kubeconfig(cluster={"server": server}))
    assert isinstance(creds, Credentials) and creds.server == server


# -- rule 8: secrets never travel where anyone on the path can read them ------------------------

HTTP = {"server": "http://provider.example.com:8080", "certificate-authority-data": ""}
NO_CREDS = {"token": "", "client-certificate-data": "", "client-key-data": ""}


@pytest.mark.parametrize(
    ("user", "says"),
    [
        ({**NO_CREDS, "token": TOKEN}, "bearer token, which would travel in clear"),
        ({**NO_CREDS, "username": "bob", "password": "pw"}, "username and password"),
        (
            {**NO_CREDS, "client-certificate-data": CERT, "client-key-data": KEY},
            "client certificate, which is only ever presented over TLS",
        ),
        ({**NO_CREDS, "client-key-data": KEY}, "client certificate"),
    ],
)
def test_plain_http_with_any_credential_is_refused(user: dict[str, Any], says: str) -> None:
    msg = problem(sanitize(kubeconfig(cluster=HTTP, user=user)))
    assert "plain http://" in msg and says in msg and "https://" in msg
    assert "'prov-cluster'" in msg and "'prov-user'" in msg


def test_plain_http_without_any_credential_is_kept_with_a_warning() -> None:
    creds = sanitize(kubeconfig(cluster=HTTP, user=NO_CREDS))
    assert isinstance(creds, Credentials) and creds.server == HTTP["server"]
    warning = transport_warning(creds)
    assert "plain http://" in warning and "answer as the provider" in warning


INSECURE = {"insecure-skip-tls-verify": True, "certificate-authority-data": ""}


@pytest.mark.parametrize(
    ("user", "says"),
    [
        ({**NO_CREDS, "token": TOKEN}, "receives the bearer token"),
        ({**NO_CREDS, "username": "bob", "password": "pw"}, "receives the password"),
        (
            {**NO_CREDS, "client-certificate-data": CERT, "client-key-data": KEY, "token": TOKEN},
            "receives the bearer token",
        ),
    ],
)
def test_insecure_skip_tls_verify_with_a_bearer_secret_is_refused(
    user: dict[str, Any], says: str
) -> None:
    msg = problem(sanitize(kubeconfig(cluster=INSECURE, user=user)))
    assert "insecure-skip-tls-verify: true" in msg and says in msg
    assert "certificate-authority-data" in msg  # what to use instead


@pytest.mark.parametrize(
    "user",
    [
        {**NO_CREDS, "client-certificate-data": CERT, "client-key-data": KEY},
        NO_CREDS,
    ],
)
def test_insecure_skip_tls_verify_without_a_bearer_secret_is_kept_with_a_warning(
    user: dict[str, Any],
) -> None:
    creds = sanitize(kubeconfig(cluster=INSECURE, user=user))
    assert isinstance(creds, Credentials) and creds.insecure_skip_tls_verify
    assert "certificate is not verified" in transport_warning(creds)


def test_verified_https_has_no_warning() -> None:
    creds = sanitize(kubeconfig())
    assert isinstance(creds, Credentials) and transport_warning(creds) == ""


# -- rules 2 and 3: size -------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "\n".join(lines) + "\n" + yaml.safe_dump(kubeconfig())
    raw = base64.b64encode(text.encode()).decode()
    msg = problem(credentials_for(connection(), secret(raw=raw), NS))
    assert f"more than {MAX_KUBECONFIG_NODES} values" in msg and "aliases" in msg


def test_a_deeply_nested_kubeconfig_is_refused_without_recursion() -> None:
    doc = kubeconfig()
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]
    doc["preferences"] = deep
    assert f"nested more than {MAX_KUBECONFIG_DEPTH} levels" in problem(sanitize(doc))


def test_secret_data_larger_than_a_secret_can_be_is_refused() -> None:
    raw = base64.b64encode(b"#" * (MAX_KUBECONFIG_BYTES + 10)).decode()
    msg = problem(credentials_for(connection(), secret(raw=raw), NS))
    assert f"larger than {MAX_KUBECONFIG_BYTES} bytes" in msg


def test_a_kubeconfig_at_the_size_limit_is_accepted() -> None:
    text = yaml.safe_dump(kubeconfig())
    text += "#" * (MAX_KUBECONFIG_BYTES - len(text))
    raw = base64.b64encode(text.encode()).decode()
    assert isinstance(credentials_for(connection(), secret(raw=raw), NS), Credentials)


# -- Credentials --------------------------------------------------------------------------------


BASE = Credentials(
    server="https://a.example:6443",
    certificate_authority_data=CA,
    tls_server_name="a",
    client_certificate_data=CERT,
    client_key_data=KEY,
    token=TOKEN,
    username="u",
    password="p",
    proxy_url="http://proxy",
)


def test_fingerprint_is_stable() -> None:
    again = attrs.evolve(BASE)
    assert again is not BASE
    assert again.fingerprint == BASE.fingerprint
    assert len(BASE.fingerprint) == 16


@pytest.mark.parametrize("field", [f.name for f in attrs.fields(Credentials)])
def test_fingerprint_changes_with_every_field(field: str) -> None:
    value = getattr(BASE, field)
    other = (not value) if isinstance(value, bool) else value + "-rotated"
    assert attrs.evolve(BASE, **{field: other}).fingerprint != BASE.fingerprint


def test_secrets_never_appear_in_repr() -> None:
    creds = attrs.evolve(BASE, password="hunter2-password")
    assert TOKEN not in repr(creds) and TOKEN not in str(creds)
    assert "hunter2-password" not in repr(creds)
    assert KEY not in repr(creds)  # the client's private key is as secret as a token


@pytest.mark.parametrize(
    ("server", "host"),
    [
        ("https://provider.kbsim", "provider.kbsim"),
        ("https://provider.kbsim:6443/prefix", "provider.kbsim"),
        ("https://user@host.example:443", "host.example"),
        ("https://[::1]:6443", "::1"),
        ("http://10.0.0.1", "10.0.0.1"),
    ],
)
def test_host_is_the_bare_host_name(server: str, host: str) -> None:
    assert Credentials(server=server).host == host


# -- totality laws ------------------------------------------------------------------------------

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_ish = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "server",
    "token",
    "exec",
    "auth-provider",
    "tokenFile",
    "client-certificate",
    "client-key",
    "certificate-authority",
    "proxy-url",
    "insecure-skip-tls-verify",
    "certificate-authority-data",
    "name",
    "cluster",
    "user",
]
section = st.dictionaries(st.sampled_from(FIELDS), json_ish, max_size=5)
named = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["a", "b"]) | json_ish,
            "cluster": section | json_ish,
            "user": section | json_ish,
            "context": st.fixed_dictionaries(
                {
                    "cluster": st.sampled_from(["a", "b"]) | json_ish,
                    "user": st.sampled_from(["a", "b"]) | json_ish,
                }
            ),
        }
    ),
    max_size=3,
)
kubeconfig_ish = st.fixed_dictionaries(
    {},
    optional={
        "current-context": st.sampled_from(["a", "b"]) | json_ish,
        "clusters": named,
        "users": named,
        "contexts": named,
    },
)


@settings(max_examples=300, deadline=None)
@given(doc=json_ish | kubeconfig_ish)
def test_sanitize_is_total(doc: Any) -> None:
    result = sanitize(doc)
    assert isinstance(result, Credentials | SecretProblem)
    if isinstance(result, Credentials):
        assert result.server.split("://", 1)[0].lower() in ("http", "https")
        assert_never_exposed(result)


def assert_never_exposed(creds: Credentials) -> None:
    """The rule 8 law: no credential ever goes over plain http, no bearer secret without a
    verified certificate."""
    assert not (creds.plain_http and (creds.bearer_secret or creds.client_certificate)), creds
    assert not (creds.insecure_skip_tls_verify and creds.bearer_secret), creds


optional_text = st.none() | st.just("") | st.sampled_from(["v", TOKEN])
transport = st.fixed_dictionaries(
    {
        "server": st.sampled_from(["http://p.example", "https://p.example", "HTTP://p:80/x"]),
        "insecure-skip-tls-verify": st.none() | st.booleans(),
        "certificate-authority-data": st.none() | st.just(CA),
    }
)
credentials_st = st.fixed_dictionaries(
    {},
    optional={
        f: optional_text
        for f in ("token", "username", "password", "client-certificate-data", "client-key-data")
    },
)


@settings(max_examples=300, deadline=None)
@given(cluster=transport, user=credentials_st)
def test_law_accepted_credentials_never_expose_a_secret(
    cluster: dict[str, Any], user: dict[str, Any]
) -> None:
    doc = kubeconfig()
    doc["clusters"][0]["cluster"] = cluster
    doc["users"][0]["user"] = user
    result = sanitize(doc)
    if isinstance(result, Credentials):
        assert_never_exposed(result)
        insecure = result.plain_http or result.insecure_skip_tls_verify
        assert bool(transport_warning(result)) == insecure
    else:
        # Refused only for a rule-8 exposure or the client-go CA/insecure conflict.
        m = result.message
        assert "plain http://" in m or "insecure-skip-tls-verify" in m, m


@settings(max_examples=300, deadline=None)
@given(
    data=json_ish | st.dictionaries(st.sampled_from(["kubeconfig", "x"]), json_ish, max_size=2),
    text=st.text(max_size=200) | st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
    encode=st.booleans(),
)
def test_credentials_for_is_total_on_any_secret_data(data: Any, text: str, encode: bool) -> None:
    if encode:
        data = {"kubeconfig": base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()}
    sec = {"metadata": {"namespace": NS, "name": "kc"}, "data": data}
    result = credentials_for(connection(), sec, NS)
    assert isinstance(result, Credentials | SecretProblem)
