"""The worker runtime both shells run: from events and work-queue keys to API requests.

Decided here: which keys an event wakes (`events`), what a worker does with a key and how the
queue treats it next (`worker`, `workqueue`), how actions become requests and failures become
requeues (`requests`), what a request or read means on an API server (`cluster`), the state a
worker reads from the shell's caches (`state`), cache bookkeeping of lists and watches
(`reflector`), leader election (`leader`), and record and replay of what a konnector did
(`trace`). The planners of `sync`, `control` and `schema` decide; this package only calls them.
"""
