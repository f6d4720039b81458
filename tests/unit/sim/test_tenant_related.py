"""A tenant's related resources end to end in kbsim: the Export's `relatedResources` reach the
binding through `issued_bundle`, the issuer's Role in each granted namespace allows exactly
what the konnector then does (kbcore/views/rbac.py `related_rules`), and the copies land in the
tenant's mapped namespace (kbcore/control/related.py rule 10)."""

from __future__ import annotations

from kbcore.api.resources import NAMESPACES, SECRETS
from kbcore.objects import ObjectKey
from tests.unit import bindworld as bw
from tests.unit.sim.test_issued_tenant import Tenant

RELATED = [
    {"resource": "secrets", "direction": "FromProvider",
     "selector": {"labelSelector": {"matchLabels": {"app": "widget"}}}},
    {"resource": "secrets", "direction": "FromConsumer",
     "selector": {"labelSelector": {"matchLabels": {"upload": "yes"}}}},
]  # fmt: skip


def secret(namespace: str, name: str, labels: dict[str, str], value: str) -> dict[str, object]:
    meta = {"namespace": namespace, "name": name, "labels": labels}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
            "stringData": {"value": value}}  # fmt: skip


def test_a_tenant_syncs_related_secrets_both_ways_with_no_request_denied() -> None:
    t = Tenant(relatedResources=RELATED)
    w = t.world
    t.bind()
    assert w.settle(120)
    mapped = f"{t.home}-team-x"
    w.user_call(lambda: t.consumer.create(bw.WIDGETS, bw.widget("a", "team-x")))
    assert w.settle(120)
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey(mapped, "a")) is not None
    t.provider.create(SECRETS, secret(mapped, "creds", {"app": "widget"}, "from-provider"))
    t.provider.create(NAMESPACES, bw.namespace("team-x"))
    t.provider.create(SECRETS, secret("team-x", "creds", {"app": "widget"}, "not the tenant's"))
    w.user_call(
        lambda: t.consumer.create(SECRETS, secret("team-x", "up", {"upload": "yes"}, "mine"))
    )
    w.advance(60)
    assert w.settle(120)
    down = bw.get(w, "consumer", SECRETS, ObjectKey("team-x", "creds"))
    assert down is not None and down["data"]["value"] == "ZnJvbS1wcm92aWRlcg=="  # from-provider
    up = bw.get(w, "provider", SECRETS, ObjectKey(mapped, "up"))
    assert up is not None and up["data"]["value"] == "bWluZQ=="  # mine
    assert bw.get(w, "provider", SECRETS, ObjectKey("team-x", "up")) is None
    assert t.denied() == []
