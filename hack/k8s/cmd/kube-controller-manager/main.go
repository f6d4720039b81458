// Command kube-controller-manager is upstream's kube-controller-manager main
// (cmd/kube-controller-manager/controller-manager.go). The tests run it with
// only the namespace and garbagecollector controllers so that namespace
// deletion and ownerReference cascades behave as on a real cluster.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() { os.Exit(cli.Run(app.NewControllerManagerCommand())) }
