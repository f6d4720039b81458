"""Instance sync: the decisions about one consumer object and its provider copy.

Decided here: which binding covers an object (`coverage`), where its copy lives on the provider
(`mapper`), when the copy is created, updated, adopted or deleted and when status comes back
(`instance`: "when is the provider copy deleted?" is `instance`'s rules), and which provider
namespaces the konnector creates and may remove (`namespaces`).
"""
