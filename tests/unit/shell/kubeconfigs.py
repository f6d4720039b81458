"""Kubeconfig files for the command-line tests (`kubectl bind` and `konnector`): a usable one,
and a file at a path that may be missing, a directory, bytes or text."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def kubeconfig(context: str) -> dict[str, Any]:
    """A kubeconfig with one context `context` (cluster and user of that name: `u`), a bearer
    token and an https server nobody listens on."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "u"}}],
    }


def place(path: Path, content: str | bytes | None) -> Path:
    """Put `content` at `path`: nothing for None, a directory for "DIR", else the bytes or text."""
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    return path
