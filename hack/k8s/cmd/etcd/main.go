// Command etcd is etcd's server main (go.etcd.io/etcd/server/v3/main.go).
// Building it from this module graph gives exactly the etcd version that
// k8s.io/apiserver requires, so client and server match by construction.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
