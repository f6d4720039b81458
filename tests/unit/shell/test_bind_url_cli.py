"""The gateway side of `kubectl bind` where no server is needed: which form argv is, provider
URLs, the token cache's files, PKCE, choosing an Export. (On real servers:
tests/e2e/test_bind_url.py.)"""

from __future__ import annotations

import base64
import io
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbshell.bind import build_parser, first_word, token_cache
from kbshell.bind.errors import Failure
from kbshell.bind.gateway_client import base_url
from kbshell.bind.login import challenge
from kbshell.bind.service import build_parsers, catalog_lines, choose_export

PARSERS = [build_parser(), *build_parsers().values()]


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["https://x/exports"], "https://x/exports"),
        (["--kubeconfig", "status", "widgets"], "widgets"),  # a value is not a command
        (["--kubeconfig=FILE", "status"], "status"),
        (["-o", "yaml", "widgets"], "widgets"),
        (["--dry-run", "widgets"], "widgets"),
        (["--provider-kubeconfig", "p", "--api", "a.b"], None),  # the kubeconfig flow
        (["--", "login"], "login"),
        ([], None),
    ],
)
def test_the_first_word_skips_options_and_their_values(argv: list[str], word: str | None) -> None:
    assert first_word(argv, PARSERS) == word


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://bind.example.com/exports", "https://bind.example.com"),
        ("https://bind.example.com/", "https://bind.example.com"),
        ("http://127.0.0.1:8080/p/exports/", "http://127.0.0.1:8080/p"),
    ],
)
def test_a_provider_url_is_the_gateways_base(url: str, base: str) -> None:
    assert base_url(url) == base


@pytest.mark.parametrize("url", ["ftp://x", "bind.example.com", "https://u:p@x/", "https://x/?a"])
def test_what_is_not_a_provider_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(Failure) as err:
        base_url(url)
    assert err.value.code == 2


@given(st.sampled_from(["http", "https"]), st.from_regex(r"[a-z0-9]{1,10}(:[0-9]{2,5})?", fullmatch=True),
       st.from_regex(r"(/[a-z]{1,5}){0,2}", fullmatch=True))  # fmt: skip
def test_base_url_is_idempotent_and_ignores_exports(scheme: str, host: str, path: str) -> None:
    base = base_url(f"{scheme}://{host}{path}")
    assert base_url(base) == base
    assert base_url(base + "/exports") == base


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    assert challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")  # fmt: skip


def jwt(claims: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.sig"


def test_the_cache_is_private_per_provider_and_remembers_the_last(tmp_path: Path) -> None:
    root = tmp_path / "kube-bind"
    token_cache.store("https://a", {"idToken": jwt({"exp": 2000})}, root)
    token_cache.store("https://b", {"idToken": jwt({"exp": 3000})}, root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    files = sorted((root / "tokens").iterdir())
    assert len(files) == 2
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in [*files, root / "last.json"])
    assert token_cache.last_provider(root) == "https://b"
    a = token_cache.load("https://a", root)
    assert a is not None and token_cache.claims(a["idToken"]) == {"exp": 2000}
    assert "https" not in "".join(f.name for f in files)  # the URL is not a file name
    token_cache.forget("https://a", root)
    assert token_cache.load("https://a", root) is None


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_a_token_is_usable_while_more_than_the_skew_is_left(exp: int, now: int) -> None:
    assert token_cache.usable({"idToken": jwt({"exp": exp})}, now) == (exp - now > token_cache.SKEW)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.!!!.c", jwt({"no": "exp"})])
def test_a_token_without_an_expiry_is_not_usable(token: str) -> None:
    assert not token_cache.usable({"idToken": token}, 0)


EXPORTS = [{"name": "widgets", "title": "Widgets", "apis": ["widgets.example.org"]},
           {"name": "gadgets", "title": "Gadgets", "apis": []}]  # fmt: skip


def test_an_export_is_chosen_by_name_or_as_the_only_one() -> None:
    assert choose_export(EXPORTS, "gadgets", "https://x", False)["name"] == "gadgets"
    assert choose_export(EXPORTS[:1], None, "https://x", False)["name"] == "widgets"


def test_without_a_terminal_several_exports_are_a_usage_error_listing_them() -> None:
    with pytest.raises(Failure) as err:
        choose_export(EXPORTS, None, "https://x", False)
    assert err.value.code == 2 and "widgets, gadgets" in err.value.problem
    assert "--export" in err.value.fix
    with pytest.raises(Failure) as unknown:
        choose_export(EXPORTS, "nothing", "https://x", False)
    assert "it offers: widgets, gadgets" in unknown.value.problem


def test_the_catalog_table() -> None:
    lines = catalog_lines({"exports": EXPORTS, "collections": [{"name": "all", "apis": []}]})
    assert [line.split() for line in lines] == [
        ["KIND", "NAME", "TITLE", "APIS"], ["Export", "widgets", "Widgets", "widgets.example.org"],
        ["Export", "gadgets", "Gadgets", "-"], ["Collection", "all", "-"]]  # fmt: skip


def test_on_a_terminal_the_user_chooses_by_number_or_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("2\ngadgets\nnone\n"))
    assert choose_export(EXPORTS, None, "https://x", True)["name"] == "gadgets"
    assert choose_export(EXPORTS, None, "https://x", True)["name"] == "gadgets"
    with pytest.raises(Failure):
        choose_export(EXPORTS, None, "https://x", True)
    seen = capsys.readouterr()
    assert seen.out == ""  # the listing and prompt go to stderr: stdout may be the bundle
    assert "1) widgets: Widgets" in seen.err and "Export to bind [1-2]: " in seen.err
