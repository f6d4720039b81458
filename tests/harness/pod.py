"""The konnector as the chart's Pod runs it, on clusters that have no nodes (no Pod ever starts).

`install_chart` puts the konnector chart on the consumer cluster with `helm install` (its
ServiceAccount, RBAC, CRDs, Deployment and Service; the Deployment never gets a Pod). A
`Replica` is then one Pod of that Deployment, played by the real `konnector` process:

 - its command and environment are the container's: the image's ENTRYPOINT and ENV (read from
   the Dockerfile, `/venv` being this checkout's virtualenv), the Deployment's args, and what
   the kubelet adds (HOSTNAME, KUBERNETES_SERVICE_HOST=127.0.0.1, KUBERNETES_SERVICE_PORT, HOME
   of the image's user). No kubeconfig anywhere: no KUBECONFIG, no --kubeconfig, and HOME (the
   working directory too) an empty read-only directory;
 - its credentials are the Pod's: a TokenRequest for the chart's ServiceAccount, bound to a
   Pod object made from the Deployment's template (Pending forever), written with the
   cluster's ca.crt and the namespace to a directory kept as the kubelet keeps a projected
   volume (files are symlinks into `..data`, which is swapped atomically to rotate), and bound
   read-only at /var/run/secrets/kubernetes.io/serviceaccount in the process's own mount
   namespace (pod_init.py; the host's /var/run is never touched);
 - its securityContext is applied: runAsUser/runAsGroup, every capability dropped,
   no_new_privs, a read-only root filesystem, and the emptyDir at /tmp as a tmpfs of its
   sizeLimit. Its hostname (own UTS namespace) is the Pod's name.

What differs from a Pod, on purpose: the network namespace is the host's (the API servers
listen on 127.0.0.1), so the metrics and probe addresses are free loopback ports instead of the
chart's `:8085`/`:8081`; there is no seccomp profile, cgroup limit or image filesystem (the
host's files, read-only, stand in for the image's).

`Replica.rotate(revoke=True)` does what the kubelet does when it refreshes the token, with a
token bound to a new Pod object, and then deletes the previous object, which revokes the old
token at once (the kubelet's old token would stay valid until it expires: this is harder).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.harness.clusters import Cluster
from tests.harness.helm import CHART, REPO, Helm
from tests.harness.konnector import Konnector, eventually

Obj = dict[str, Any]
DOCKERFILE = REPO / "Dockerfile"
POD_INIT = Path(__file__).with_name("pod_init.py")
IMAGE_VENV = "/venv"
"""Where the image's virtualenv is; this checkout's (sys.prefix) stands in for it."""
IMAGE_HOME = "/home/nonroot"
"""The distroless `nonroot` user's home, the container's working directory."""
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of the distroless base image (it sets no other variables the konnector reads)."""
RELEASE = "kb"
TOKEN_SECONDS = 3607
"""What the kubelet asks for (an hour and a bit, so it can tell its own tokens apart)."""
SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi)?$")


def image_config(dockerfile: Path = DOCKERFILE) -> tuple[list[str], dict[str, str]]:
    """ENTRYPOINT and ENV of the Dockerfile's last stage, as the runtime starts the image."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stage = re.split(r"(?m)^FROM\s", text)[-1]
    entrypoint: list[str] = []
    env: dict[str, str] = {}
    for line in stage.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    assert entrypoint, f"{dockerfile}: no ENTRYPOINT in the last stage"
    return entrypoint, env


def _local(value: str) -> str:
    """An image path with the image's virtualenv replaced by this checkout's."""
    if value == IMAGE_VENV or value.startswith(IMAGE_VENV + "/"):
        return sys.prefix + value[len(IMAGE_VENV) :]
    return value


def _bytes(quantity: str) -> int:
    match = _QUANTITY.match(quantity)
    assert match, f"unsupported quantity {quantity!r}"
    scale = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[match.group(2)]
    return int(match.group(1)) * scale


def install_chart(
    helm: Helm, cluster: Cluster, values: Mapping[str, Any], namespace: str
) -> list[Obj]:
    """`helm install` of the konnector chart on `cluster`; the objects it rendered."""
    files = helm.value_args(values)
    helm.run(
        "install", RELEASE, str(CHART), "-n", namespace, "--create-namespace", *files,
        "--kubeconfig", str(cluster.kubeconfig),
    )  # fmt: skip
    return helm.template(values, release=RELEASE, namespace=namespace)


def deployment(objs: Sequence[Obj]) -> Obj:
    (found,) = [o for o in objs if o.get("kind") == "Deployment"]
    return found


class Replica(Konnector):
    """One Pod of the chart's Deployment, run as the `konnector` process (module docstring)."""

    def __init__(self, cluster: Cluster, objs: Sequence[Obj], name: str, tmp: Path) -> None:
        self.deployment = deployment(objs)
        meta = self.deployment["metadata"]
        super().__init__(None, tmp / f"{name}.log", namespace=meta["namespace"])
        self.cluster = cluster
        self.name = name
        self.template = self.deployment["spec"]["template"]
        self.service_account = self.template["spec"]["serviceAccountName"]
        self.dir = tmp / name
        self.volume = self.dir / "volume"
        self.workdir = self.dir / "workdir"
        self.pod_objects: list[str] = []
        self.tokens: list[str] = []
        (container,) = [c for c in self.template["spec"]["containers"] if c["name"] == "konnector"]
        self.container = container
        security = {**(self.template["spec"].get("securityContext") or {}),
                    **(container.get("securityContext") or {})}  # fmt: skip
        self.uid, self.gid = int(security["runAsUser"]), int(security["runAsGroup"])
        self.security = security

    # --- the container

    def _argv_env(self) -> tuple[list[str], dict[str, str]]:
        entrypoint, image_env = image_config()
        command = self.container.get("command") or entrypoint
        args = []
        for arg in self.container.get("args") or []:
            flag = arg.partition("=")[0]
            if flag == "--metrics-bind-address":
                arg = f"{flag}=127.0.0.1:{self.metrics_port}"
            elif flag == "--health-probe-bind-address":
                arg = f"{flag}=127.0.0.1:{self.health_port}"
            args.append(arg)
        assert not any(a.startswith("--kubeconfig") for a in args), args
        host, port = "127.0.0.1", str(self.cluster.port)
        env = {
            "PATH": IMAGE_PATH,
            **{k: _local(v) for k, v in image_env.items()},
            **{e["name"]: e["value"] for e in self.container.get("env") or []},
            "HOSTNAME": self.name,
            "HOME": IMAGE_HOME,
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{host}:{port}",
        }
        return [_local(c) for c in command] + args, env

    def _tmpfs(self) -> list[tuple[str, int]]:
        volumes = {v["name"]: v for v in self.template["spec"].get("volumes") or []}
        mounts = []
        for m in self.container.get("volumeMounts") or []:
            volume = volumes[m["name"]]
            assert set(volume) == {"name", "emptyDir"}, f"only emptyDir volumes: {volume}"
            size = (volume["emptyDir"] or {}).get("sizeLimit", "64Mi")
            mounts.append((m["mountPath"], _bytes(str(size))))
        return mounts

    def _spec(self) -> Obj:
        security = self.security
        assert security.get("allowPrivilegeEscalation") is False, security
        assert (security.get("capabilities") or {}).get("drop") == ["ALL"], security
        assert not (security.get("capabilities") or {}).get("add"), security
        argv, env = self._argv_env()
        return {
            "hostname": self.name,
            "volume": str(self.volume),
            "workdir": str(self.workdir),
            "home": IMAGE_HOME,
            "python_prefix": sys.base_prefix,
            # The image's contents: this checkout (its sources, installed editable) and the
            # venv; kept visible where an emptyDir (/tmp) is mounted over them.
            "image_paths": [str(REPO), sys.prefix],
            "tmpfs": self._tmpfs(),
            "read_only": bool(security.get("readOnlyRootFilesystem")),
            "uid": self.uid,
            "gid": self.gid,
            "argv": argv,
            "env": env,
        }

    def start(self) -> Replica:
        self.dir.mkdir(parents=True)
        self.volume.mkdir(mode=0o755)
        # The user may write here but for the read-only mount, as with readOnlyRootFilesystem.
        self.workdir.mkdir(mode=0o755)
        os.chown(self.workdir, self.uid, self.gid)
        self.rotate(revoke=False)
        spec_path = self.dir / "pod.json"
        spec_path.write_text(json.dumps(self._spec(), indent=1))
        argv = ["unshare", "--mount", "--uts", "--propagation", "private", "--",
                sys.executable, str(POD_INIT), str(spec_path)]  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        # unshare and setpriv exec in place: the pid is the konnector's, signals reach it.
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, cwd="/",
        )  # fmt: skip
        log.close()
        return self

    # --- the ServiceAccount token

    def _pod_object(self, name: str) -> Obj:
        meta = self.template.get("metadata") or {}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {**meta, "name": name, "namespace": self.namespace},
            "spec": self.template["spec"],
        }
        status, created = self.cluster.request(
            "POST", f"/api/v1/namespaces/{self.namespace}/pods", pod
        )
        assert status == 201, created
        return dict(created)

    def _token_request(self, pod: Obj) -> str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": TOKEN_SECONDS,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            },
        }
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{self.service_account}/token"
        status, data = self.cluster.request("POST", path, body)
        assert status == 201, data
        return str(data["status"]["token"])

    def rotate(self, *, revoke: bool) -> None:
        """A new token (bound to a new Pending Pod object) written as the kubelet writes it;
        with `revoke`, the previous object deleted and its token refused by the server."""
        name = self.name if not self.pod_objects else f"{self.name}-r{len(self.pod_objects)}"
        token = self._token_request(self._pod_object(name))
        self._write_volume(
            {
                "token": (token.encode(), 0o600),
                "ca.crt": (self.cluster.ca.cert.read_bytes(), 0o644),
                "namespace": (self.namespace.encode(), 0o644),
            }
        )
        self.pod_objects.append(name)
        self.tokens.append(token)
        if revoke and len(self.pod_objects) > 1:
            old_pod, old_token = self.pod_objects[-2], self.tokens[-2]
            status, data = self.cluster.request(
                "DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{old_pod}?gracePeriodSeconds=0"
            )
            assert status == 200, data
            eventually(lambda: whoami(self.cluster, old_token) == 401, 30, "old token refused")

    def _write_volume(self, files: Mapping[str, tuple[bytes, int]]) -> None:
        """The kubelet's atomic writer: a new timestamped directory, `..data` renamed onto a
        symlink to it (one atomic step), the per-file symlinks made once, the old data removed."""
        stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
        data = self.volume / stamp
        data.mkdir(mode=0o755)
        for name, (content, mode) in files.items():
            path = data / name
            path.write_bytes(content)
            path.chmod(mode)
            # The kubelet gives the token to runAsUser when no fsGroup is set.
            os.chown(path, self.uid if mode == 0o600 else 0, self.gid if mode == 0o600 else 0)
        link = self.volume / "..data"
        old = os.readlink(link) if link.is_symlink() else None
        staging = self.volume / "..data_tmp"
        staging.symlink_to(stamp)
        os.rename(staging, link)
        for name in files:
            if not (self.volume / name).is_symlink():
                (self.volume / name).symlink_to(f"..data/{name}")
        if old:
            shutil.rmtree(self.volume / old)

    # --- what the process sees

    def proc_status(self) -> dict[str, str]:
        """/proc/<pid>/status fields (Uid, Gid, CapEff, NoNewPrivs, ...)."""
        lines = Path(f"/proc/{self.pid()}/status").read_text().splitlines()
        return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}

    def cmdline(self) -> list[str]:
        """The argv the process runs with now (after unshare and setpriv exec'd it)."""
        raw = Path(f"/proc/{self.pid()}/cmdline").read_bytes()
        return [a.decode() for a in raw.split(b"\0") if a]

    def environ(self) -> dict[str, str]:
        raw = Path(f"/proc/{self.pid()}/environ").read_bytes()
        return dict(e.decode().partition("=")[::2] for e in raw.split(b"\0") if e)

    def mounts(self) -> dict[str, tuple[str, ...]]:
        """The process's mount points, each with its filesystem type and mount options (the
        top one where mounts are stacked)."""
        out: dict[str, tuple[str, ...]] = {}
        for line in Path(f"/proc/{self.pid()}/mountinfo").read_text().splitlines():
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            out[fields[4]] = (fstype, *fields[5].split(","))
        return out

    def sees(self, path: str) -> Path:
        """`path` as the process sees it, through its own mount namespace. An absolute symlink
        on the way (/var/run -> /run) would resolve in ours: those are resolved first (the
        root filesystem is the host's)."""
        return Path(f"/proc/{self.pid()}/root{os.path.realpath(path)}")


def whoami(cluster: Cluster, token: str) -> int | str:
    """The username `token` authenticates as, or the HTTP status when refused."""
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    req = urllib.request.Request(
        cluster.url + SELF_SUBJECT_REVIEWS, data=body.encode(), method="POST"
    )
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    context = ssl.create_default_context(cafile=str(cluster.ca.cert))
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as resp:
            return str(json.loads(resp.read())["status"]["userInfo"]["username"])
    except urllib.error.HTTPError as err:
        return err.code
