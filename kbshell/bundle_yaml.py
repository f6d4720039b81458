"""The bundle as YAML: one function for `kubectl bind -o yaml` and the gateway's pickup, so the
two are byte-identical for the same objects (a multi-document stream, keys in the order the
objects were built, ready for `kubectl apply -f -`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml


def bundle_yaml(objects: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)
