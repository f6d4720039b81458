"""`kbsim run SCENARIO.yaml [--seed N] [--json]`: replay a scenario in simulated clusters."""

from __future__ import annotations

import argparse
import json
import sys

from kbsim import scenario
from kbsim.world import FAULT_KINDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kbsim",
        description="Run kube-bind scenarios in simulated clusters (no cluster needed).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario and check its expectations and invariants")
    run.add_argument("scenario", help="path to a scenario YAML file")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_parser("faults", help="list the fault kinds a scenario can inject")
    args = parser.parse_args(argv)

    if args.command == "faults":
        for kind, text in FAULT_KINDS.items():
            print(f"{kind}\n    {text}")
        return 0
    try:
        sc = scenario.load(args.scenario)
        result = scenario.run(sc, seed=args.seed)
    except scenario.ScenarioError as err:
        print(f"kbsim: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.summary())
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
