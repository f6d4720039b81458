"""What the schema kernel writes is accepted by the server, and converges there.

`kbcore.schema.policy` builds consumer CRDs (for_consumer) and replaces them (plan_install's Update).
The real server defaults fields and validates far more than our own code; these tests create
and update exactly the kernel's bodies on both backends and check the next plan is empty.
"""

from __future__ import annotations

import copy

from kbcore.actions import Create, Update
from kbcore.api import keys
from kbcore.schema import policy as schema
from tests.conformance.client import CRDS, Api, unique
from tests.conformance.conftest import widget_crd


def provider_crd(group: str) -> dict:
    crd = widget_crd(group)
    crd["metadata"]["labels"] = {keys.LABEL_EXPORTED: "true"}
    beta = copy.deepcopy(crd["spec"]["versions"][0])
    beta.update(name="v1beta1", storage=False)
    crd["spec"]["versions"].append(beta)
    return crd


def test_consumer_crd_is_created_updated_and_then_left_alone(api: Api) -> None:
    group = f"{unique('kb')}.example.org"
    desired = schema.for_consumer(provider_crd(group), "conn")
    name = desired["metadata"]["name"]
    plan = schema.plan_install(desired, None, connection="conn", create=True, update=True)
    (create,) = plan.actions
    assert isinstance(create, Create)
    try:
        api.create(CRDS, create.body)
        live = api.wait_established(name)
        assert (
            schema.plan_install(desired, live, connection="conn", create=True, update=True).actions
            == ()
        )

        # The provider adds a printer column: the kernel's PUT is accepted as it stands.
        changed = provider_crd(group)
        changed["spec"]["versions"][0]["additionalPrinterColumns"] = [
            {"name": "Color", "type": "string", "jsonPath": ".spec.color"}
        ]
        desired2 = schema.for_consumer(changed, "conn")
        plan2 = schema.plan_install(desired2, live, connection="conn", create=True, update=True)
        (update,) = plan2.actions
        assert isinstance(update, Update)
        stored = api.update(CRDS, update.body)
        assert stored["spec"]["versions"][0]["additionalPrinterColumns"][0]["name"] == "Color"
        # The hash the plan reports is the live one until the update lands and is read back.
        assert plan2.crd_hash == live["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH]
        assert stored["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH] == plan2.writes_hash
        again = schema.plan_install(desired2, stored, connection="conn", create=True, update=True)
        assert again.actions == () and again.crd_hash == plan2.writes_hash
    finally:
        api.delete(CRDS, name)
        api.wait_gone(CRDS, name)
