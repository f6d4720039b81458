# Real Kubernetes control planes for e2e tests and manual experiments.
# Included by the main Makefile; uses its $(BIN) and $(STAMP). See hack/k8s/README.md.
#
#   make k8sbin          build etcd, kube-apiserver, kube-controller-manager (cached outside
#                        the work tree; a no-op once built; the first build takes a while)
#   make clusters        start a provider and a consumer cluster in the background
#   make clusters-down   stop them
K8S_CLUSTERS_DIR ?= $(HOME)/.cache/kube-bind/clusters
K8S_CLUSTERS ?= provider consumer

.PHONY: k8sbin clusters clusters-down

k8sbin:
	@bash hack/k8s/build.sh

clusters: $(STAMP) k8sbin
	@$(BIN)/python -m tests.harness.clusters up --background --dir "$(K8S_CLUSTERS_DIR)" \
	  --down-hint "make clusters-down K8S_CLUSTERS_DIR=$(K8S_CLUSTERS_DIR)" $(K8S_CLUSTERS)

clusters-down: $(STAMP)
	@$(BIN)/python -m tests.harness.clusters down --dir "$(K8S_CLUSTERS_DIR)"
