// Command genschema reproduces the provider's own `go generate` step: it stamps
// the version into schema.json and minifies both JSON files for embedding.
package main

import (
	"encoding/json"
	"log"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: genschema VERSION SRC_DIR OUT_DIR")
	}
	version, src, out := os.Args[1], os.Args[2], os.Args[3]

	var spec schema.PackageSpec
	readJSON(filepath.Join(src, "schema.json"), &spec)
	spec.Version = version
	writeJSON(filepath.Join(out, "schema-embed.json"), spec)

	var mapping interface{}
	readJSON(filepath.Join(src, "terraform-mapping.json"), &mapping)
	writeJSON(filepath.Join(out, "terraform-mapping-embed.json"), mapping)
}

func readJSON(path string, into interface{}) {
	raw, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		log.Fatalf("%s: %v", path, err)
	}
}

func writeJSON(path string, value interface{}) {
	raw, err := json.Marshal(value)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		log.Fatal(err)
	}
}
