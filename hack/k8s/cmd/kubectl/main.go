// Command kubectl is upstream's kubectl main (cmd/kubectl/kubectl.go), built from the same
// module graph as the API servers so client and servers match. It is here for the plugin
// tests and the README walk-through: `kubectl bind` is found as the `kubectl-bind` plugin.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
