// Command coredns is CoreDNS built from its published Go module, with the upstream
// plugin set (core/plugin). Same two lines as upstream's coredns.go, which is a main
// package and so cannot be imported by a wrapper module. Why: docs/cluster.md.
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // every plugin upstream links in
	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
