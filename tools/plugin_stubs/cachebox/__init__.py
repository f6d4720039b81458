"""A pure-Python stand-in for cachebox in the kubectl-bind zipapp (tools/plugin_stubs/README.md):
the LRUCache API deepdiff.lfucache calls (get, insert, `in`)."""

from collections import OrderedDict


class LRUCache:
    def __init__(self, maxsize):
        self._max = maxsize
        self._data = OrderedDict()

    def get(self, key, default=None):
        if key not in self._data:
            return default
        self._data.move_to_end(key)
        return self._data[key]

    def insert(self, key, value):
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def __contains__(self, key):
        return key in self._data

    def __len__(self):
        return len(self._data)
