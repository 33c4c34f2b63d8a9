"""Where each rule is documented: docs/policies.md, one section per rule, anchor = rule name."""

POLICIES_DOC = "docs/policies.md"


def doc_url(rule_name: str) -> str:
    return f"{POLICIES_DOC}#{rule_name}"
