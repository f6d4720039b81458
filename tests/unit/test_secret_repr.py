"""No repr shows secret material: a traceback, an assertion message or a debugger prints attrs
values whole, so every field that holds credentials or may hold a Secret masks them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from typing import Any

import attrs
import pytest

import kbcore
import kbshell
import kbsim
from kbcore.actions import Apply, Create, MergePatch, Update, UpdateStatus
from kbcore.api.resources import SECRETS
from kbcore.control import connection
from kbcore.control.kubeconfig import Credentials
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.redaction import REDACTED, redacted_repr
from kbcore.runtime import reflector, trace
from kbcore.runtime.requests import Request
from kbcore.views import dryrun
from kbsim import scenario
from kbsim.apiserver import watch

TOKEN = "tok-3f9a1c"
KEY = "a2V5LWJ5dGVz-private"
PASSWORD = "hunter2-pw"
KUBECONFIG = "YXBpVmVyc2lvbjogdjEKa2luZDogQ29uZmln-kubeconfig"
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "kubeconfig-p", "namespace": "kube-bind"},
    "data": {"kubeconfig": KUBECONFIG},
    "stringData": {"token": TOKEN},
}
TARGET = ObjectRef("consumer", SECRETS, ObjectKey("kube-bind", "kubeconfig-p"))


def assert_masked(text: str) -> None:
    for secret in (TOKEN, KEY, PASSWORD, KUBECONFIG):
        assert secret not in text, text


def test_credentials_repr_shows_no_key_token_or_password() -> None:
    creds = Credentials(
        "https://p.example:6443", client_key_data=KEY, token=TOKEN, username="u", password=PASSWORD
    )
    text = repr(creds)
    assert_masked(text)
    assert "https://p.example:6443" in text  # still says which provider


@pytest.mark.parametrize(
    "value",
    [
        Create(TARGET, SECRET, "kube-bind"),
        Update(TARGET, SECRET, "kube-bind"),
        Apply(TARGET, SECRET, "kube-bind"),
        UpdateStatus(TARGET, SECRET),
        MergePatch(TARGET, {"data": SECRET["data"], "kind": "Secret"}),
        Request("create", "consumer", SECRETS, TARGET.key, body=SECRET),
        reflector.Delta(reflector.Change.ADDED, TARGET.key, None, SECRET),
        trace.Divergence("k", "read", [SECRET], [SECRET]),
    ],
    ids=lambda v: type(v).__name__,
)
def test_values_carrying_a_secret_show_its_name_not_its_data(value: Any) -> None:
    text = repr(value)
    assert_masked(text)
    assert REDACTED in text


@pytest.mark.parametrize(
    ("cls", "field"),
    [
        (connection.ConnectionView, "secret"),
        (dryrun.Snapshot, "control"),
        (watch.Event, "obj"),
        (watch.Event, "prev"),
        (scenario.Step, "body"),
        (scenario.Scenario, "setup"),
    ],
)
def test_fields_that_hold_secrets_mask_them_in_the_repr(cls: type, field: str) -> None:
    shown = attrs.fields_dict(cls)[field].repr
    assert shown is redacted_repr
    assert_masked(redacted_repr({"x": [(1, "create", SECRET)]}))


def _attrs_classes() -> list[type]:
    found = []
    for pkg in (kbcore, kbshell, kbsim):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            module = importlib.import_module(info.name)
            found += [
                c
                for c in vars(module).values()
                if inspect.isclass(c) and attrs.has(c) and c.__module__ == module.__name__
            ]
    return found


SECRET_NAME = re.compile(r"token|password|key_data|secret|kubeconfig|private")
# Fields whose names look like a secret but that hold none, each with the reason.
NOT_SECRET = {
    "kbcore.api.iam.GrantStatus.token_secret_name": (
        "the name of the Secret holding the token, never the token: the Grant is readable by "
        "whoever may list Grants, so it must not carry credentials, and it names the Secret so "
        "an operator can find it"
    ),
}


def test_every_field_named_like_a_secret_is_kept_out_of_the_repr() -> None:
    classes = _attrs_classes()
    assert len(classes) > 50  # the walk finds the packages' classes
    fields = {
        f"{c.__module__}.{c.__qualname__}.{f.name}": f for c in classes for f in attrs.fields(c)
    }
    assert set(NOT_SECRET) <= set(fields)  # an exemption for a field that is gone is stale
    shown = [
        name
        for name, f in fields.items()
        # A reference to a Secret (kubeconfig_secret_ref) names it; it holds nothing secret.
        if SECRET_NAME.search(f.name)
        and not f.name.endswith("_ref")
        and name not in NOT_SECRET
        and f.repr is True
    ]
    assert not shown, f"secret-looking fields shown by repr: {shown}"
