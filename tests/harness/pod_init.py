"""The container runtime's part, for tests/harness/pod.py: run as root by
`unshare --mount --uts --propagation private`, so every mount below is private to the konnector
(the host's /run, /home, /tmp and the rest are never touched), then exec the konnector as the
Pod's user. Standard library only; the one argument is a JSON spec written by pod.py:

    hostname     the Pod's name (the kubelet sets it as the container's hostname)
    volume       host directory kept as the kubelet keeps a projected ServiceAccount volume;
                 bound read-only at SERVICE_ACCOUNT_DIR
    workdir      host directory bound read-only at the image's home, the working directory
    home         that path (distroless nonroot: /home/nonroot)
    tmpfs        [[path, bytes], ...]: the Pod's emptyDir volumes
    read_only    readOnlyRootFilesystem: every other mount is remounted read-only
    uid, gid     runAsUser/runAsGroup; all capabilities dropped, no_new_privs
    argv, env    the container's command and environment, exactly
    image_paths  host paths standing in for the image's files (the checkout, the venv): kept
                 visible, read-only, where an emptyDir is mounted over them

Order matters: the Python the konnector runs under may live below a directory its user cannot
enter (/root): that installation is bound back into a fresh world-readable tmpfs over it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KERNEL_FILESYSTEMS = ("/proc", "/sys", "/dev")


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def tmpfs(path: str, options: str) -> None:
    mount("-t", "tmpfs", "-o", options, "tmpfs", path)


def bind(source: str, target: str, *, read_only: bool) -> None:
    mount("--bind", source, target)
    if read_only:
        # remount,bind changes this mount's flags only, never the filesystem's.
        mount("-o", "remount,bind,ro", target)


def reachable(prefix: str, staging: str) -> None:
    """Make `prefix` enterable by any user: a tmpfs over its first ancestor others cannot
    enter, with `prefix` itself bound back in."""
    parts = prefix.strip("/").split("/")
    for i in range(1, len(parts)):
        ancestor = "/" + "/".join(parts[:i])
        if os.stat(ancestor).st_mode & 0o001 == 0:
            break
    else:
        return
    os.makedirs(staging)
    bind(prefix, staging, read_only=True)
    tmpfs(ancestor, "mode=0755")
    os.makedirs(prefix)
    mount("--move", staging, prefix)
    os.rmdir(staging)


def under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        # Field 5 is the mount point, with spaces and the like octal-escaped.
        return [line.split()[4].encode().decode("unicode_escape") for line in f]


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    socket.sethostname(spec["hostname"])
    # /var/run is /run: a fresh /run, as a container has its own.
    run = os.path.realpath("/var/run")
    tmpfs(run, "mode=0755")
    reachable(os.path.realpath(spec["python_prefix"]), os.path.join(run, "kbind-staging"))
    os.makedirs(SERVICE_ACCOUNT_DIR)
    bind(spec["volume"], SERVICE_ACCOUNT_DIR, read_only=True)
    home = spec["home"]
    tmpfs(os.path.dirname(home), "mode=0755")
    os.makedirs(home)
    bind(spec["workdir"], home, read_only=True)
    writable = set()
    for path, size in spec["tmpfs"]:
        kept_paths = [os.path.realpath(p) for p in spec["image_paths"]]
        covered = [
            p
            for p in kept_paths
            if under(p, path) and not any(q != p and under(p, q) for q in kept_paths)
        ]
        staged = []
        for n, kept in enumerate(covered):
            staging = os.path.join(run, f"kbind-image-{n}")
            os.makedirs(staging)
            bind(kept, staging, read_only=True)
            staged.append((staging, kept))
        tmpfs(path, f"mode=1777,size={size}")
        for staging, kept in staged:
            # An image's files are never below an emptyDir; a checkout under /tmp (a CI clone)
            # is, on this host, so it is put back, read-only, under the Pod's fresh /tmp.
            os.makedirs(kept, exist_ok=True)
            mount("--move", staging, kept)
            os.rmdir(staging)
        writable.add(path)
    if spec["read_only"]:
        for point in mount_points():
            kernel = any(point == k or point.startswith(k + "/") for k in KERNEL_FILESYSTEMS)
            if not kernel and point not in writable:
                mount("-o", "remount,bind,ro", point)
    os.chdir(home)
    setpriv = [
        "setpriv",
        f"--reuid={spec['uid']}",
        f"--regid={spec['gid']}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
    os.execve("/usr/bin/setpriv", setpriv + spec["argv"], spec["env"])


if __name__ == "__main__":
    main(sys.argv[1])
