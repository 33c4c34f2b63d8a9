"""Pulumi components of the deployment platform (see docs/conventions.md)."""
