//go:build tools

// Package tools pins the main packages this wrapper builds.
package tools

import _ "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"
