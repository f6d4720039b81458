"""Build `kubectl-bind` as one file that needs only `python3` (>= 3.11): a zipapp holding the
CLI's code (kbcore, kbshell) and its dependencies, pure Python only, and the krew archive and
manifest around it.

    python tools/build_plugin.py            # dist/kubectl-bind, dist/kubectl-bind.tar.gz,
                                            # dist/krew/bind.yaml (`make plugin`)

Rules:
 1. One list of dependencies: `[project].dependencies` plus the `cli` extra of pyproject.toml,
    followed through their own requirements (markers evaluated for the build interpreter, extras
    followed where named). What a dependency's code only tries to import is not followed.
 2. The dependencies come from the build environment's installed distributions (their RECORD
    files), so the build needs no network and the versions are the ones the tests ran against;
    they are listed, with their licences, in the zipapp's `_vendor/VENDORED.txt`.
 3. Pure Python only: compiled extension modules (.so, .pyd), bytecode, console scripts and
    `.pth` files are dropped. A distribution with compiled modules is vendored only if it is in
    PURE_FALLBACK (its Python code is complete and falls back when the extension is missing);
    one in NO_PURE_FORM is left out, and tools/plugin_stubs/ holds a stand-in for what the CLI's
    imports need of it. Any other distribution with compiled modules fails the build, so a new
    dependency (say cryptography for a login) is decided on, never shipped half-working. The
    build prints what it left out; the packaging tests prove the CLI runs without it.
 4. Deterministic: entries sorted, every timestamp 1980-01-01 (zip) or 0 (tar, gzip), fixed
    permissions, no user or group names, no file name in the gzip header. The same sources, the
    same installed versions and the same zlib give the same bytes, so the manifest's sha256 is
    reproducible.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import stat
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
STUBS = Path(__file__).resolve().parent / "plugin_stubs"
# The project's own packages the CLI imports; kbsim (the simulator) is not part of it.
OWN_PACKAGES = ("kbcore", "kbshell")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
SHEBANG = b"#!/usr/bin/env python3\n"

# Distributions that have no pure-Python form, with what the CLI does without them (rule 3).
NO_PURE_FORM = {
    # pydantic's validation core is Rust. The kubernetes client's api_client.py imports
    # pydantic (SecretStr, and api_response.py's BaseModel); its generated models and API
    # classes use much more, but kubectl-bind never imports them: it uses only
    # ApiClient.param_serialize/call_api and raw responses. The stand-in
    # (tools/plugin_stubs/pydantic) gives api_client.py's import path its names, inert.
    "pydantic-core": "Rust extension; kubernetes' imports of pydantic are met by a stand-in",
    "pydantic": "needs pydantic-core; replaced by tools/plugin_stubs/pydantic",
    # cachebox is Rust. deepdiff imports it with deepdiff itself (deepdiff.lfucache) but builds
    # its LRUCache only for DeepDiff(cache_size=N), which kbcore.diff never asks for; the
    # stand-in (tools/plugin_stubs/cachebox) is a plain, correct LRU cache all the same.
    "cachebox": "Rust extension; deepdiff uses it only for its optional cache; a stand-in",
}

# Distributions whose compiled modules are optional speedups: without them they import their
# pure-Python twins (tests/packaging imports each from the zipapp on `python3 -I -S`).
PURE_FALLBACK = {
    "pyyaml": "yaml/_yaml is libyaml; yaml falls back to its pure loader and dumper",
    "charset-normalizer": "md and cd are mypyc builds of md.py and cd.py",
    # Required by the kubernetes client (its asyncio half), never imported by kubectl-bind.
    "aiohttp": "its C parsers and websocket mask have Python twins",
    "frozenlist": "frozenlist/__init__.py falls back to its Python FrozenList",
    "multidict": "multidict/_multidict_py.py",
    "propcache": "propcache/_helpers_py.py",
    "yarl": "yarl/_quoting_py.py",
}

MAIN = '''\
"""kubectl-bind, as a zipapp (tools/build_plugin.py)."""
import sys

if sys.version_info < (3, 11):
    sys.exit("kubectl-bind needs Python 3.11 or later; this is " + sys.version.split()[0])

from kbshell.bind import cli

sys.exit(cli())
'''


def project() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    proj: dict[str, object] = data["project"]
    return proj


def requirements(proj: dict[str, object]) -> list[Requirement]:
    """Rule 1: the runtime dependencies and the `cli` extra."""
    names: list[str] = list(proj.get("dependencies", []))  # type: ignore[call-overload]
    extras = proj.get("optional-dependencies", {})
    names += extras.get("cli", [])  # type: ignore[union-attr]
    return [Requirement(n) for n in names]


def closure(roots: list[Requirement]) -> list[metadata.Distribution]:
    """The installed distributions the roots need, followed transitively (rules 1 and 2)."""
    seen: dict[str, metadata.Distribution] = {}
    todo: list[tuple[Requirement, frozenset[str]]] = [(r, frozenset()) for r in roots]
    followed: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, from_extras = todo.pop()
        env = default_environment()
        if req.marker is not None and not any(
            req.marker.evaluate({**env, "extra": e}) for e in (from_extras or {""})
        ):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in followed:
            continue
        followed.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"build_plugin: {req.name} is not installed; run `make venv` first")
        if not req.specifier.contains(dist.version, prereleases=True):
            sys.exit(f"build_plugin: {req.name} {dist.version} does not satisfy {req}")
        seen[name] = dist
        for sub in dist.requires or []:
            todo.append((Requirement(sub), frozenset(req.extras)))
    return [seen[n] for n in sorted(seen)]


def is_dropped(rel: str) -> bool:
    """Rule 3: what a pure-Python zipapp cannot or need not hold."""
    parts = rel.split("/")
    return (
        rel.startswith("../")
        or "__pycache__" in parts
        or rel.endswith((".so", ".pyd", ".dylib", ".dll", ".pyc", ".pth", ".exe"))
        or parts[0].endswith(".dist-info")
        or parts[0].endswith(".data")
        or parts[0] in ("_distutils_hack",)
    )


def license_files(dist: metadata.Distribution) -> list[tuple[str, bytes]]:
    out = []
    for f in dist.files or []:
        rel = f.as_posix()
        head = rel.split("/")[0]
        base = rel.rsplit("/", 1)[-1].upper()
        if head.endswith(".dist-info") and (
            "/licenses/" in rel or base.startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE"))
        ):
            out.append((rel.split("/", 1)[1], Path(str(dist.locate_file(f))).read_bytes()))
    return out


def vendored(dists: list[metadata.Distribution]) -> Iterator[tuple[str, bytes]]:
    """(archive path, bytes) of every dependency file kept, plus the VENDORED.txt listing."""
    listing = []
    for dist in dists:
        name = canonicalize_name(dist.metadata["Name"])
        kept = []
        for f in dist.files or []:
            rel = f.as_posix()
            if not is_dropped(rel):
                kept.append(rel)
        if name in NO_PURE_FORM:
            listing.append(f"{name}=={dist.version}  LEFT OUT: {NO_PURE_FORM[name]}")
            continue
        compiled = [f.as_posix() for f in dist.files or [] if f.suffix in (".so", ".pyd")]
        if compiled and name not in PURE_FALLBACK:
            sys.exit(
                f"build_plugin: {name} has compiled modules ({compiled[0]}, ...) and no known "
                "pure-Python fallback; the zipapp is pure Python. Check that it falls back and "
                "list it in PURE_FALLBACK, or give it a stand-in (tools/plugin_stubs/) and list "
                "it in NO_PURE_FORM, or keep it out of the CLI's dependencies."
            )
        for rel in kept:
            yield rel, Path(str(dist.locate_file(rel))).read_bytes()
        for rel, data in license_files(dist):
            yield f"_vendor/licenses/{name}/{rel}", data
        lic = dist.metadata.get("License-Expression") or dist.metadata.get("License") or ""
        listing.append(f"{name}=={dist.version}  {lic.splitlines()[0] if lic else ''}".rstrip())
    for stub in sorted(p for p in STUBS.rglob("*.py")):
        yield stub.relative_to(STUBS).as_posix(), stub.read_bytes()
    yield "_vendor/VENDORED.txt", ("\n".join(listing) + "\n").encode()


def own_files() -> Iterator[tuple[str, bytes]]:
    for pkg in OWN_PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and not is_dropped(rel):
                yield rel, path.read_bytes()


def zipapp_bytes(files: Iterable[tuple[str, bytes]]) -> bytes:
    """Rule 4: sorted entries, fixed timestamps and modes; the shebang in front."""
    entries: dict[str, bytes] = {}
    for rel, data in files:
        if rel in entries and entries[rel] != data:
            sys.exit(f"build_plugin: two different files for {rel}")
        entries[rel] = data
    buf = io.BytesIO()
    buf.write(SHEBANG)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in sorted(entries):
            info = zipfile.ZipInfo(rel, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            zf.writestr(info, entries[rel])
    return buf.getvalue()


def tar_gz_bytes(members: list[tuple[str, bytes, int]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def manifest(template: str, version: str, sha256: str, uri: str, homepage: str) -> str:
    """The krew manifest: the template with its {{...}} placeholders filled in."""
    fill = {"VERSION": version, "SHA256": sha256, "URI": uri, "HOMEPAGE": homepage}
    text = re.sub(r"\{\{([A-Z0-9]+)\}\}", lambda m: fill[m.group(1)], template)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory (dist/)")
    p.add_argument(
        "--uri",
        help="where the archive is published, for the krew manifest (default: the release "
        "asset of this version under pyproject.toml's Source URL)",
    )
    args = p.parse_args(argv)
    proj = project()
    version = str(proj["version"])
    source = proj["urls"]["Source"]  # type: ignore[index]
    uri = args.uri or f"{source}/releases/download/v{version}/kubectl-bind.tar.gz"
    dists = closure(requirements(proj))
    files = [*own_files(), ("__main__.py", MAIN.encode())]
    app = zipapp_bytes([*files, *vendored(dists)])
    out: Path = args.out
    (out / "krew").mkdir(parents=True, exist_ok=True)
    (out / "kubectl-bind").write_bytes(app)
    (out / "kubectl-bind").chmod(0o755)
    members = [("kubectl-bind", app, 0o755)]
    if (ROOT / "LICENSE").is_file():
        members.append(("LICENSE", (ROOT / "LICENSE").read_bytes(), 0o644))
    archive = tar_gz_bytes(members)
    (out / "kubectl-bind.tar.gz").write_bytes(archive)
    sha = hashlib.sha256(archive).hexdigest()
    template = (ROOT / "plugins" / "krew" / "bind.yaml").read_text()
    (out / "krew" / "bind.yaml").write_text(manifest(template, version, sha, uri, source))
    names = [str(d.metadata["Name"]) for d in dists]
    dropped = [n for n in names if canonicalize_name(n) in NO_PURE_FORM]
    print(f"{out}/kubectl-bind: {len(app)} bytes, sha256 {hashlib.sha256(app).hexdigest()}")
    print(f"{out}/kubectl-bind.tar.gz: {len(archive)} bytes, sha256 {sha}")
    print(
        f"vendored {len(names) - len(dropped)} distributions; no pure-Python form, left out: "
        f"{', '.join(dropped) or 'none'} (tools/plugin_stubs/README.md)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
