// Command pulumi-resource-kubernetes serves the Kubernetes provider, exactly as
// upstream's cmd/pulumi-resource-kubernetes/main.go does, with the embedded
// schema files produced by scripts/toolchain.sh (never committed).
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
