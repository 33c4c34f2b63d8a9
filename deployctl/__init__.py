"""deployctl: the operator's CLI for the platform, on the Pulumi Automation API.

It only drives the Pulumi engine (config, preview, up, history) — never Docker or Kubernetes
directly — except to measure health (smoke checks and canary analysis over HTTP)."""
