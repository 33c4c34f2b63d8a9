"""ACME directories, shared by cert-manager issuers (Kubernetes) and Traefik's resolver (Docker)."""

ACME_SERVERS = {
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "production": "https://acme-v02.api.letsencrypt.org/directory",
}
