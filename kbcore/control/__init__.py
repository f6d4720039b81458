"""The control plane: Connections, bindings and what they make the konnector do.

Decided here: when a provider kubeconfig is usable (`kubeconfig`), when a Connection is Ready
and what it installs (`connection`), what a ClusterBinding or Binding binds and how unbind drains
(`binding`), which related Secrets and ConfigMaps may be copied in which direction (`related`),
and which Connections and APIs the syncers run for (`engagement`).
"""
