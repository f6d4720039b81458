"""The ID tokens `kubectl bind` logged in with, one file per provider, and the last provider.

Rules:

1. The cache lives in ``$XDG_CONFIG_HOME/kube-bind/`` (else ``~/.config/kube-bind/``): the
   directory is made (and kept) mode 0700, every file is written mode 0600, atomically (a
   temporary file in the same directory, renamed), so a reader never sees half a token and no
   other user can read one.
2. A provider's file is named after a SHA-256 of its gateway URL (``tokens/<hex>.json``): the URL
   is not a file name, and two providers never share a file.
3. A cached ID token is usable while its ``exp`` is more than :data:`SKEW` seconds away; after
   that a refresh token (if the identity provider gave one) is tried, then a new login.
4. ``last.json`` names the last provider logged in to: ``kubectl bind catalog`` and
   ``kubectl bind EXPORT`` use it when no ``--provider`` is given.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SKEW = 60.0


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "kube-bind"


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is masked by the umask, and an old directory may be wider
    return path


def _write(path: Path, doc: dict[str, Any]) -> None:
    """Rule 1."""
    _private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def token_path(provider: str, root: Path | None = None) -> Path:
    """Rule 2."""
    digest = hashlib.sha256(provider.encode()).hexdigest()[:32]
    return (root or config_dir()) / "tokens" / f"{digest}.json"


def load(provider: str, root: Path | None = None) -> dict[str, Any] | None:
    doc = _read(token_path(provider, root))
    return doc if doc is not None and doc.get("provider") == provider else None


def store(provider: str, entry: dict[str, Any], root: Path | None = None) -> None:
    _write(token_path(provider, root), {**entry, "provider": provider})
    _write((root or config_dir()) / "last.json", {"provider": provider})


def forget(provider: str, root: Path | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        token_path(provider, root).unlink()


def last_provider(root: Path | None = None) -> str | None:
    doc = _read((root or config_dir()) / "last.json")
    value = doc.get("provider") if doc else None
    return value if isinstance(value, str) and value else None


def claims(id_token: str) -> dict[str, Any]:
    """The JWT's payload, unverified: the gateway verifies the token; the CLI only needs to know
    when it expires (and, right after a login, that it carries the login's nonce). {} when it is
    not a JWT."""
    parts = id_token.split(".")
    if len(parts) != 3:
        return {}
    try:
        doc = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def usable(entry: dict[str, Any] | None, now: float) -> bool:
    """Rule 3: the cached ID token has more than SKEW seconds left."""
    if not entry or not isinstance(entry.get("idToken"), str):
        return False
    exp = claims(entry["idToken"]).get("exp")
    return isinstance(exp, int | float) and exp - SKEW > now
