#!/usr/bin/env python3
"""git clean filter for Pulumi.<stack>.yaml: drops what is local to one machine.

With the passphrase secrets provider, `encryptionsalt` and every `secure:` value
are encrypted with this machine's passphrase (scripts/setup.sh makes one per
machine), so they mean nothing anywhere else. The working file keeps them;
git never sees them. A team that shares one passphrase and wants to commit
ciphertext removes the filter line from .gitattributes.
"""

import re
import sys

SALT = re.compile(r"^encryptionsalt:")
SECURE = re.compile(r"^\s+secure:\s")


def clean(lines: list[str]) -> list[str]:
    kept: list[str] = []
    skip_next = False
    for index, line in enumerate(lines):
        if skip_next:
            skip_next = False
            continue
        if SALT.match(line):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.rstrip().endswith(":") and SECURE.match(following):
            skip_next = True
            continue
        kept.append(line)
    return kept


if __name__ == "__main__":
    sys.stdout.write("".join(clean(sys.stdin.readlines())))
