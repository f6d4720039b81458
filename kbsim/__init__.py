"""kbsim: the imperative shell for simulated clusters.

`kbsim.apiserver.APIServer` is an in-memory Kubernetes API server with the semantics controllers
depend on (uid, cluster-wide resourceVersion, generation, status subresource, finalizers,
namespaces, server-side apply field ownership, CRD establishment and cascade, RBAC, watches with
bookmarks and 410 after compaction). The deterministic scheduler, fault injection and scenario
replay run simulated clusters made of these servers under a virtual clock.

Like `kbshell`, it only moves bytes and time: everything that decides lives in `kbcore`. Unlike a
mock, it is measured against a real kube-apiserver by the conformance suite.
"""
