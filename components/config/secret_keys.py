"""`python -m components.config.secret_keys Pulumi.<stack>.yaml`: the secret config keys a stack file needs.

Used by scripts/setup.sh to give the dev stack random secrets on a new machine.
"""

import sys

import yaml

from components.config.loading import PROJECT, parse_platform_config


def main(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    prefix = f"{PROJECT}:"
    raw = {key[len(prefix):]: value for key, value in (document.get("config") or {}).items()
           if key.startswith(prefix) and not (isinstance(value, dict) and "secure" in value)}
    stack = path.removeprefix("Pulumi.").removesuffix(".yaml")
    for key in sorted(parse_platform_config(raw, stack).secret_keys()):
        print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
