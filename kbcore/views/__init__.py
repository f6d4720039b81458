"""What `kubectl bind` shows and writes: presentation built on the planners, never used by them.

Decided here: the one-apply bundle and its checks (`bundle`), the provider RBAC a binding needs
(`rbac`), `kubectl bind plan`'s dry run (`dryrun`), and `kubectl bind status` and the unbind
forecast (`overview`).
"""
