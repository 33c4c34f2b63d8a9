//go:build tools

// Package tools pins the main package this wrapper builds (devenv/cluster/build.sh traefik).
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
