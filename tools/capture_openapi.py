"""Capture real OpenAPI v3 and discovery documents as test fixtures.

    .venv/bin/python tools/capture_openapi.py [--out tests/data/openapi]

Starts one real cluster (tests/harness/clusters.py; builds the binaries first if needed),
installs the sample CRDs below, waits until the apiserver publishes them, and writes what
a client would read into ``--out``, one file per URL path:

    discovery/api.json, discovery/apis.json, discovery/apis/<group>/<version>.json
    openapi/v3.json                           the /openapi/v3 index
    openapi/v3/apis/<group>/<version>.json    one OpenAPI v3 document per group-version
    crds.yaml                                 the CRDs as installed (the input)
    MANIFEST.json                             server version and URL -> file

Only the CRD group-versions and one built-in (apps/v1, for filtering tests) are kept, not
every document the server has. The apiserver's random port in ``/api`` is replaced by 6443
so that re-running the script changes nothing unless the server's output really changed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# Runs as a plain script (tools/ is not a package); the harness lives in tests/.
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests import crds  # noqa: E402
from tests.crds import obj  # noqa: E402
from tests.harness.clusters import Cluster, start_clusters  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "openapi"
BUILTIN_GVS = [("apps", "v1")]
WAIT_SECONDS = 90.0


def _crd(
    group: str, plural: str, kind: str, scope: str, versions: list[dict[str, Any]], **names: Any
) -> dict[str, Any]:
    return crds.crd(
        plural,
        kind,
        group=group,
        scope=scope,
        versions=versions,
        singular=kind.lower(),
        list_kind=f"{kind}List",
        **names,
    )


_CONDITIONS = crds.list_map(
    "type",
    {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
    },
    required=["type", "status"],
)

# The samples cover what schema delivery and discovery filtering must handle: a namespaced
# CRD with status subresource, enums, defaults and printer columns; a multi-version CRD
# whose storage version is not the first listed and whose old version is deprecated; a
# cluster-scoped CRD with a preserve-unknown-fields subtree and the scale subresource.
SAMPLE_CRDS: list[dict[str, Any]] = [
    _crd(
        "example.org",
        "widgets",
        "Widget",
        "Namespaced",
        [
            crds.version(
                columns=[
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                ],
                schema=obj(
                    {
                        "spec": obj(
                            {
                                "size": {"type": "integer", "minimum": 1, "default": 1},
                                "color": {"type": "string", "enum": ["red", "green", "blue"]},
                                "tags": {"type": "array", "items": {"type": "string"}},
                                "secretRef": obj({"name": {"type": "string"}}),
                            },
                            required=["size"],
                        ),
                        "status": obj({"phase": {"type": "string"}, "conditions": _CONDITIONS}),
                    },
                    description="A Widget is a namespaced sample resource.",
                ),
            )
        ],
        shortNames=["wdg"],
        categories=["all", "samples"],
    ),
    _crd(
        "gadget.io",
        "gadgets",
        "Gadget",
        "Namespaced",
        [
            crds.version(
                "v1alpha1",
                obj({"spec": obj({"model": {"type": "string"}})}),
                storage=False,
                status=False,
                deprecated=True,
                deprecationWarning="gadget.io/v1alpha1 Gadget is deprecated; use gadget.io/v1",
            ),
            crds.version(
                schema=obj(
                    {
                        "spec": obj(
                            {
                                "model": {"type": "string"},
                                "replicas": {"type": "integer", "format": "int32"},
                            }
                        ),
                        "status": obj({"ready": {"type": "boolean"}}),
                    }
                )
            ),
        ],
    ),
    _crd(
        "things.io",
        "clusterthings",
        "ClusterThing",
        "Cluster",
        [
            crds.version(
                status=False,
                subresources={
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                    },
                },
                schema=obj(
                    {
                        "spec": obj({"replicas": {"type": "integer"}, "config": crds.preserved()}),
                        "status": obj({"replicas": {"type": "integer"}}),
                    }
                ),
            )
        ],
    ),
]


def _crd_gvs() -> list[tuple[str, str]]:
    return [(c["spec"]["group"], v["name"]) for c in SAMPLE_CRDS for v in c["spec"]["versions"]]


def _get(cluster: Cluster, path: str) -> Any:
    status, body = cluster.request("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {body}")
    return body


def _wait(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _install_crds(cluster: Cluster) -> None:
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for crd in SAMPLE_CRDS:
        status, body = cluster.request("POST", crd_path, crd)
        if status != 201:
            raise RuntimeError(f"creating CRD {crd['metadata']['name']}: HTTP {status}: {body}")
    for crd in SAMPLE_CRDS:
        name = crd["metadata"]["name"]

        def established(name: str = name) -> bool:
            conds = _get(cluster, f"{crd_path}/{name}").get("status", {}).get("conditions", [])
            return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

        _wait(f"CRD {name} Established", established)
    # Discovery and the OpenAPI v3 index are updated asynchronously after Established.
    for group, version in _crd_gvs():
        _wait(
            f"{group}/{version} in discovery",
            lambda g=group, v=version: cluster.request("GET", f"/apis/{g}/{v}")[0] == 200,
        )
        _wait(
            f"{group}/{version} in /openapi/v3",
            lambda g=group, v=version: f"apis/{g}/{v}" in _get(cluster, "/openapi/v3")["paths"],
        )


def _normalize(doc: Any) -> Any:
    """Replace the random apiserver port so re-captures are byte-identical."""
    text = json.dumps(doc)
    return json.loads(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:6443", text))


def capture(cluster: Cluster, out: Path) -> dict[str, str]:
    gvs = _crd_gvs() + BUILTIN_GVS
    index = _get(cluster, "/openapi/v3")
    # Keep the index to what is captured: the full list names ~100 group-versions whose
    # hashes change with every release, which would only add churn to the fixtures.
    wanted = {f"apis/{g}/{v}" for g, v in gvs}
    index["paths"] = {k: v for k, v in index["paths"].items() if k in wanted}
    documents: dict[str, Any] = {"/openapi/v3": index}
    for group, version in gvs:
        documents[f"/openapi/v3/apis/{group}/{version}"] = _get(
            cluster, index["paths"][f"apis/{group}/{version}"]["serverRelativeURL"]
        )
    documents["/api"] = _get(cluster, "/api")
    documents["/apis"] = _get(cluster, "/apis")
    for group, version in gvs:
        documents[f"/apis/{group}/{version}"] = _get(cluster, f"/apis/{group}/{version}")

    written: dict[str, str] = {}
    for url, doc in documents.items():
        if url.startswith("/openapi/"):
            rel = Path("openapi") / f"{url.removeprefix('/openapi/')}.json"
        else:
            rel = Path("discovery") / f"{url.lstrip('/')}.json"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # Keys sorted so re-captures are stable. Small documents are indented for readable
        # diffs; the OpenAPI documents are compact (indenting apps/v1 alone makes 800 KiB).
        compact = url.startswith("/openapi/v3/")
        text = json.dumps(
            _normalize(doc),
            sort_keys=True,
            indent=None if compact else 1,
            separators=(",", ":") if compact else None,
        )
        path.write_text(text + "\n")
        written[url] = rel.as_posix()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    out: Path = args.out

    with start_clusters(["capture"]) as clusters:
        cluster = clusters["capture"]
        print(f"cluster up in {clusters.startup_seconds:.1f}s; installing sample CRDs", flush=True)
        _install_crds(cluster)
        version = _get(cluster, "/version")
        for stale in ("openapi", "discovery"):
            if (out / stale).exists():
                for f in sorted((out / stale).rglob("*.json")):
                    f.unlink()
        out.mkdir(parents=True, exist_ok=True)
        written = capture(cluster, out)
    (out / "crds.yaml").write_text(yaml.safe_dump_all(SAMPLE_CRDS, sort_keys=False))
    manifest = {
        "capturedBy": "tools/capture_openapi.py",
        "serverVersion": version["gitVersion"],
        "crds": "crds.yaml",
        "files": written,
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum((out / f).stat().st_size for f in written.values())
    print(f"wrote {len(written)} documents ({total // 1024} KiB) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
