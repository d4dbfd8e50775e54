"""Subjects: scan and subject ids become keyed-hash pseudonyms; the key and the mapping stay outside the output.

A pseudonym is ``HMAC-SHA256(key, kind + ":" + id)``, cut to ``digest_chars`` hex digits: the same id gives the same
pseudonym in every run with the same key (datasets de-identified in batches still join by subject), and without the key
nobody can test a guessed id against it. The key is 32 random bytes in a file made on first use (mode 0600).

Example:
    >>> p = Pseudonymizer(b"k" * 32)
    >>> p.subject("patient-7") == p.subject("patient-7"), p.subject("patient-7").startswith("anon-s")
    (True, True)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sonotell.config import Section, setting
from sonotell.errors import InputError, OutputError
from sonotell.files import atomic_path

KEY_BYTES = 32


@dataclass
class SubjectsConfig(Section):
    SECTION = "subjects"
    prefix: str = setting("deid", "default", "subjects", "prefix")
    digest_chars: int = setting("deid", "default", "subjects", "digest_chars", ge=8, le=64)


@dataclass
class Pseudonymizer:
    """Keyed-hash pseudonyms for subject and scan ids; remembers every pair it made (for the mapping file)."""

    key: bytes
    config: SubjectsConfig = field(default_factory=SubjectsConfig)
    pairs: dict[tuple[str, str], str] = field(default_factory=dict)

    def _make(self, kind: str, original: str) -> str:
        digest = hmac.new(self.key, f"{kind}:{original}".encode(), hashlib.sha256).hexdigest()
        made = f"{self.config.prefix}-{kind[0]}{digest[: self.config.digest_chars]}"
        self.pairs[(kind, original)] = made
        return made

    def subject(self, subject_id: str) -> str:
        return self._make("subject", subject_id)

    def scan(self, scan_id: str) -> str:
        return self._make("scan", scan_id)

    def mapping(self) -> pd.DataFrame:
        rows = [{"kind": k, "original": o, "pseudonym": p} for (k, o), p in sorted(self.pairs.items())]
        return pd.DataFrame(rows, columns=["kind", "original", "pseudonym"])


def inside(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or lies under it (after resolving links)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def load_or_make_key(path: str | Path, out_dir: str | Path) -> bytes:
    """Read the key file, or make one (32 random bytes, mode 0600); refused inside the output folder."""
    path = Path(path)
    if inside(path, Path(out_dir)):
        raise OutputError(path, "the pseudonym key must stay outside the shared output folder")
    if path.exists():
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise InputError(path, f"not a sonotell deid key ({len(key)} bytes, expected {KEY_BYTES})")
        return key
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(key)
    os.chmod(path, 0o600)  # after the atomic rename, which applies the umask
    return key


def write_mapping(path: str | Path, pseudonymizer: Pseudonymizer, out_dir: str | Path) -> Path:
    """Write (merging with an existing file) the original -> pseudonym table; refused inside the output folder."""
    path = Path(path)
    if inside(path, Path(out_dir)):
        raise OutputError(path, "the pseudonym mapping must stay outside the shared output folder")
    table = pseudonymizer.mapping()
    if path.exists():
        old = pd.read_csv(path, dtype=str, keep_default_na=False)
        table = pd.concat([old, table]).drop_duplicates(["kind", "original"], keep="last")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        table.sort_values(["kind", "original"]).to_csv(tmp, index=False)
    os.chmod(path, 0o600)
    return path
