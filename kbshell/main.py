"""The `konnector` command.

The real-cluster shell (reflectors, work queue workers, executor, leader election, probes,
metrics) is built in its own issue; until then this command parses the documented flags and
says plainly that it cannot run yet, rather than pretending to.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="konnector",
        description="Bind APIs exported by provider clusters into this (consumer) cluster.",
    )
    p.add_argument("--kubeconfig", default=None, help="consumer kubeconfig (default: in-cluster)")
    p.add_argument("--namespace", default="kube-bind", help="the konnector's namespace")
    p.add_argument("--metrics-bind-address", default=":8085")
    p.add_argument("--health-probe-bind-address", default=":8081")
    p.add_argument("--leader-elect", action="store_true")
    p.add_argument("--leader-election-id", default="konnector.kube-bind.io")
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    return p


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print(
        "konnector: running against real clusters is not available in this build yet; "
        "the kernel can be exercised with `kbsim run SCENARIO.yaml`.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
