"""kbcore: the pure functional kernel of kube-bind.

Everything that *decides* lives here: reconcile decisions, which keys an event enqueues,
requeue policy, field ownership, CRD schema generation. Nothing here performs I/O, reads a clock,
draws randomness, starts threads or logs: time comes in as a value, decisions go out as frozen
action values. The shells (`kbshell` for real clusters, `kbsim` for simulated ones) move bytes and
time and nothing else. Pure library functions are not effects (`datetime` parsing,
`yaml.safe_load`): an import-linter contract in pyproject.toml bans the effectful modules, and
tests/unit/test_purity.py the effectful functions of the others (`datetime.now`, `open`, ...).
"""
