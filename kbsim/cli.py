"""The `kbsim` command.

kbsim run SCENARIO.yaml [--seed N] [--json]   run a scenario in simulated clusters
kbsim replay TRACE.jsonl                      replay a konnector trace through the kernel
kbsim faults                                  list the fault kinds a scenario can inject

`kbsim run` without --json explains itself around the step table: which file ran, that its
clusters are simulated, what the scenario shows (the comment at the top of its file, which every
scenario starts with) and what to try next. --json prints only the result object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from kbcore import objects as o
from kbcore.runtime import trace
from kbcore.sync.instance import plan_instance
from kbsim import scenario
from kbsim.world import FAULT_KINDS, FAULT_PARAMS

CRASH_SCENARIO = "crash-mid-sync"


def main(argv: list[str] | None = None) -> int:
    """`kbsim`; a reader that stops early (`kbsim run ... | head`) ends it quietly, with the
    status a shell gives a command killed by SIGPIPE, instead of a traceback."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # Python would report the failed flush of stdout at exit once more: point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kbsim",
        description="Run kube-bind scenarios in simulated clusters (no cluster needed).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario and check its expectations and invariants")
    run.add_argument("scenario", help="path to a scenario YAML file")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    rp = sub.add_parser(
        "replay",
        help="replay a trace written by `konnector --record` (or kbsim) through the kernel "
        "and report the first divergence",
    )
    rp.add_argument("trace", help="path to a JSON-lines trace")
    sub.add_parser("faults", help="list the fault kinds a scenario can inject")
    args = parser.parse_args(argv)

    if args.command == "replay":
        return replay_trace(args.trace)

    if args.command == "faults":
        for kind, text in FAULT_KINDS.items():
            print(f"{kind}\n    {text}")
            params = {} if kind == "crash-konnector" else {"cluster": ("a cluster name", None)}
            for name, (what, _) in {**params, **FAULT_PARAMS[kind]}.items():
                print(f"    {name}: {what}")
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
        print(introduction(sc))
        print(result.summary())
        print(conclusion(sc))
    return 0 if result.passed else 1


def introduction(sc: scenario.Scenario) -> str:
    """What runs, and that nothing real is touched."""
    text = (
        f"clusters {', '.join(sc.clusters)}: simulated in memory, on a virtual clock (no real "
        f"cluster is started or touched); the konnector runs in {sc.konnector_cluster} with the "
        "same kernel as on real clusters."
    )
    return f"kbsim: running {sc.path}\n{textwrap.indent(_fill(text), '  ')}\n"


def about(path: Path) -> list[str]:
    """The comment that opens a scenario file: what the scenario shows."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return lines


def conclusion(sc: scenario.Scenario) -> str:
    """What the run showed, how to read the table, and what to try next."""
    shows = about(sc.path) or ["(the file has no opening comment)"]
    reading = (
        f'"line N" is the line of a step in {sc.path}. The invariants are safety rules, checked '
        "against the whole simulated world on every write the konnector makes."
    )
    nexts = [(f"kbsim run {sc.path} --json", "the same result as one JSON object")]
    crash = sc.path.parent.parent / CRASH_SCENARIO / "scenario.yaml"
    if sc.path.parent.name != CRASH_SCENARIO and crash.is_file():
        nexts.append((f"kbsim run {crash}", "with faults: the konnector crashes mid-plan"))
    nexts += [
        ("kbsim faults", "the faults a scenario can inject"),
        ('README.md, "The konnector on real clusters"', "the same on real API servers"),
    ]
    out = ["", "what it shows (the comment at the top of the file):"]
    out += [f"  {line}" for line in shows]
    out += [_fill(reading), "try next:"]
    out += [f"  {what}\n      {why}" for what, why in nexts]
    return "\n".join(out)


def _fill(text: str) -> str:
    return textwrap.fill(text, 96, break_long_words=False, break_on_hyphens=False)


def replay_trace(path: str) -> int:
    """Replay every record; 0 when the kernel agrees with all of them, 1 at the first
    divergence, 2 when the trace cannot be read."""
    try:
        f = open(path)  # noqa: SIM115 - closed below, after the loop
    except OSError as err:
        print(f"kbsim: cannot read {path}: {err.strerror}", file=sys.stderr)
        return 2
    count = 0
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = o.parse_json(line)  # as deep as the objects it holds
                if record.get("format") != trace.FORMAT:
                    raise ValueError(f"unknown trace format {record.get('format')!r}")
                divergence = trace.replay(record, planner=plan_instance)
            except (ValueError, KeyError, TypeError) as err:
                print(f"kbsim: {path}:{lineno}: not a trace record: {err}", file=sys.stderr)
                return 2
            count += 1
            if divergence is not None:
                print(f"divergence at {path}:{lineno} (record {count}): {divergence.describe()}")
                return 1
            if count % 1000 == 0:
                print(f"  {count} records replayed", file=sys.stderr)
    print(f"{count} records replayed from {path}: no divergence")
    return 0


if __name__ == "__main__":
    sys.exit(main())
