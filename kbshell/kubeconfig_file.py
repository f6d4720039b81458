"""Reading a kubeconfig file named on a command line, with errors that say what is wrong where.

Both commands read one: `kubectl bind --provider-kubeconfig FILE` and `konnector --kubeconfig
FILE`. A file that cannot be used (missing, a directory, binary, not UTF-8, not YAML, more than
one document, empty, not a mapping, absurdly large) is a `KubeconfigFileError` whose message
starts with the path, and `path:line:column` where the problem has a place. The commands print
it and exit with status 2 (a usage error: the file given is not a kubeconfig); whether the
kubeconfig's *content* is acceptable is the kernel's decision (`kbcore.control.kubeconfig`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Far above any real kubeconfig (one with hundreds of contexts is a few MiB), far below what
would hurt to read and parse."""


class KubeconfigFileError(ValueError):
    """The file is not a usable kubeconfig; the message names the file (and line and column)."""


def load_kubeconfig_file(path: str) -> dict[str, Any]:
    """The parsed kubeconfig at `path` (`~` expanded); raises KubeconfigFileError."""
    file = Path(path).expanduser()
    try:
        if file.is_dir():
            raise KubeconfigFileError(f"{path}: is a directory, not a kubeconfig file")
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise KubeconfigFileError(
                f"{path}: is {size} bytes, larger than any kubeconfig ({MAX_FILE_BYTES} at most)"
            )
        data = file.read_bytes()
    except OSError as err:
        raise KubeconfigFileError(f"{path}: cannot read it: {err.strerror}") from err
    if b"\0" in data:
        raise KubeconfigFileError(f"{path}: is a binary file, not a kubeconfig (YAML text)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, column = _place(data, err.start)
        raise KubeconfigFileError(
            f"{path}:{line}:{column}: is not UTF-8 text (byte 0x{data[err.start]:02x})"
        ) from err
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        what = ", ".join(str(x) for x in (err.context, err.problem) if x)
        raise KubeconfigFileError(f"{where}: is not valid YAML: {what}") from err
    except yaml.reader.ReaderError as err:
        line, column = _place(text, err.position)
        code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1])
        raise KubeconfigFileError(
            f"{path}:{line}:{column}: is not valid YAML: character U+{code:04X} is not allowed "
            "in YAML text"
        ) from err
    except yaml.YAMLError as err:
        raise KubeconfigFileError(f"{path}: is not valid YAML: {err}") from err
    except RecursionError as err:
        raise KubeconfigFileError(f"{path}: is nested too deeply to be a kubeconfig") from err
    if doc is None:
        raise KubeconfigFileError(f"{path}: is empty (no YAML document in it)")
    if not isinstance(doc, dict):
        raise KubeconfigFileError(
            f"{path}: is not a kubeconfig: its top level is {_kind(doc)}, not a mapping "
            "(apiVersion, kind: Config, clusters, users, contexts)"
        )
    return doc


def _place(data: bytes | str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of `offset` in `data`."""
    newline: Any = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1
    return line, offset - (data.rfind(newline, 0, offset) + 1) + 1


def _kind(doc: Any) -> str:
    if isinstance(doc, list):
        return "a list"
    if isinstance(doc, str):
        return "a string"
    return f"a {type(doc).__name__}"
