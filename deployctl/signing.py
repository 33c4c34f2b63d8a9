"""Signed evidence: Ed25519 (through `cryptography`) over the evidence's canonical JSON.

The key lives outside the repository: $DEPLOYCTL_SIGNING_DIR, else ~/.config/deployplatform/,
as `evidence-ed25519.key` (PKCS#8 PEM, mode 0600) and `evidence-ed25519.pub`, created on first
use. An evidence file is its record plus a `signature` object; the file's bytes must be exactly
the canonical rendering (sorted keys, two-space indent), so any changed byte, whitespace
included, fails verification: either the rendering or the signature no longer matches.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_NAME = "evidence-ed25519"
ALGORITHM = "Ed25519"


class SignatureError(Exception):
    """The evidence is not what was signed, or not signed by the trusted key."""


def key_directory() -> Path:
    configured = os.environ.get("DEPLOYCTL_SIGNING_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "deployplatform"


def canonical(payload: dict[str, Any]) -> bytes:
    """What is signed: the record without its signature, keys sorted, no whitespace."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def render(document: dict[str, Any]) -> str:
    """The one way an evidence file is written (verify refuses any other rendering)."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_key(directory: Path | None = None) -> Ed25519PrivateKey:
    directory = directory or key_directory()
    private_path = directory / f"{KEY_NAME}.key"
    if private_path.exists():
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError(f"{private_path} is not an Ed25519 private key")
        return key
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # O_EXCL: two first uses at once must not leave two different keys behind.
    try:
        handle = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_key(directory)
    with os.fdopen(handle, "wb") as file:
        file.write(pem)
    (directory / f"{KEY_NAME}.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def trusted_public_key(path: Path | None = None) -> Ed25519PublicKey:
    path = path or key_directory() / f"{KEY_NAME}.pub"
    if not path.exists():
        raise SignatureError(f"no public key at {path}: pass --public-key, or sign evidence on this machine first")
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path} is not an Ed25519 public key")
    return key


def sign(payload: dict[str, Any], key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """The payload with its `signature` object."""
    key = key or load_or_create_key()
    body = {k: v for k, v in payload.items() if k != "signature"}
    signature = key.sign(canonical(body))
    return {**body, "signature": {"algorithm": ALGORITHM, "keyId": key_id(key.public_key()),
                                  "value": base64.b64encode(signature).decode()}}


def verify_text(text: str, public: Ed25519PublicKey) -> dict[str, Any]:
    """The evidence record when `text` is exactly what was signed by `public`; SignatureError otherwise."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise SignatureError(f"not JSON any more ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("signature"), dict):
        raise SignatureError("no signature: the file was not written by deployctl or its signature was removed")
    signature = document["signature"]
    if signature.get("algorithm") != ALGORITHM:
        raise SignatureError(f"signed with {signature.get('algorithm')!r}, expected {ALGORITHM}")
    if signature.get("keyId") != key_id(public):
        raise SignatureError(f"signed by key {signature.get('keyId')}, not the trusted key {key_id(public)}")
    if render(document) != text:
        raise SignatureError("the file's bytes differ from what deployctl wrote (whitespace or layout changed)")
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        public.verify(base64.b64decode(signature.get("value", "")), canonical(body))
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not match the content: the evidence was changed after signing") from None
    return body
