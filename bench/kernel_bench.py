"""Steady-state cost of the instance kernel: plan_instance over in-sync objects.

Prints microseconds per object (median of several rounds) for objects that are already in sync
(the resync case: the plan must be empty) and for objects whose provider copy drifted (the plan
re-applies). Run: .venv/bin/python bench/kernel_bench.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time

from kbcore.api import keys
from kbcore.objects import GVR
from kbcore.sync.coverage import Coverage
from kbcore.sync.instance import InstanceView, plan_instance

WIDGETS = GVR("example.org", "v1", "widgets")
LOCAL_UID = "11111111-2222-3333-4444-555555555555"


def pair(i: int, drift: bool) -> InstanceView:
    uid = f"00000000-0000-0000-0000-{i:012d}"
    spec = {"size": "large", "replicas": i % 7, "tags": ["a", "b"], "nested": {"x": {"y": i}}}
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    consumer = {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {
            "namespace": "default",
            "name": f"w{i}",
            "uid": uid,
            "resourceVersion": str(1000 + i),
            "finalizers": [keys.FINALIZER_SYNCER],
        },
        "spec": spec,
        "status": status,
    }
    fields = {
        "f:metadata": {
            "f:labels": {".": {}, f"f:{keys.LABEL_MANAGED}": {}},
            "f:annotations": {
                ".": {},
                f"f:{keys.ANNOTATION_CONSUMER_CLUSTER_UID}": {},
                f"f:{keys.ANNOTATION_CONSUMER_OBJECT_UID}": {},
            },
        },
        "f:spec": {
            ".": {},
            "f:size": {},
            "f:replicas": {},
            "f:tags": {},
            "f:nested": {".": {}, "f:x": {".": {}, "f:y": {}}},
        },
    }
    provider = {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {
            "namespace": "default",
            "name": f"w{i}",
            "uid": f"p-{uid}",
            "labels": {keys.LABEL_MANAGED: "true"},
            "annotations": {
                keys.ANNOTATION_CONSUMER_CLUSTER_UID: LOCAL_UID,
                keys.ANNOTATION_CONSUMER_OBJECT_UID: uid,
            },
            "managedFields": [
                {
                    "manager": keys.FIELD_MANAGER,
                    "operation": "Apply",
                    "apiVersion": "example.org/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields,
                }
            ],
        },
        "spec": dict(spec, size="small") if drift else spec,
        "status": status,
    }
    return InstanceView(WIDGETS, True, consumer, Coverage(True), provider, LOCAL_UID)


def measure(views: list[InstanceView], rounds: int = 7) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for v in views:
            plan_instance(v)
        samples.append((time.perf_counter() - t0) / len(views) * 1e6)
    return statistics.median(samples)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    in_sync = [pair(i, drift=False) for i in range(n)]
    drifted = [pair(i, drift=True) for i in range(n)]
    assert all(plan_instance(v).writes == () for v in in_sync), "in-sync views must plan nothing"
    assert all(plan_instance(v).writes for v in drifted), "drifted views must re-apply"
    print(f"objects: {n}")
    print(f"in sync (resync, no writes): {measure(in_sync):8.1f} us/object")
    print(f"drifted (plans an apply):    {measure(drifted):8.1f} us/object")


if __name__ == "__main__":
    main()
