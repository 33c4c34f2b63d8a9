"""One module per rule; `_`-prefixed modules are shared helpers."""
