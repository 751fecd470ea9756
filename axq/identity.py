"""Say, in one place, what makes a built entry what it is, and digest it.

An entry's identity is the SHA-256 of the canonical JSON of exactly these inputs:
the recipe's name and version, the producer's tags, the fully resolved parameters
(defaults filled in), the identities of its dependencies by name and the digest of the
code the recipe runs (axq.codeid: its folder's files and the library modules they
import, by content). Nothing else (no time, host or path) goes in, so the same query
with the same code always means the same entry, and edited code means another.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any


def canonical_json(data: Any) -> str:
    """Serialise data with sorted keys and no insignificant whitespace."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def identity(
    recipe: str,
    version: int,
    tags: Sequence[str],
    params: Mapping[str, Any],
    deps: Mapping[str, str],
    code: str | None = None,
) -> str:
    """Return the hex digest naming an entry built from these inputs.

    Without `code` it is the identity of entries built before axq digested recipe code.
    """
    descriptor = {
        "recipe": recipe,
        "version": version,
        "tags": sorted(tags),
        "params": dict(params),
        "deps": dict(deps),
    }
    if code is not None:
        descriptor["code"] = code
    return hashlib.sha256(canonical_json(descriptor).encode()).hexdigest()


def code_digest(files: Mapping[str, str]) -> str:
    """Digest a recipe's code: its files (keyed by path in the recipe root) and their SHA-256s."""
    return hashlib.sha256(canonical_json(dict(files)).encode()).hexdigest()


def manifest_identity(manifest: Mapping[str, Any]) -> str:
    """Recompute an entry's identity from its manifest (its `code` record, if it has one, included)."""
    deps = {key: dep["identity"] for key, dep in manifest["deps"].items()}
    files = manifest.get("code")
    if files is not None and not isinstance(files, Mapping):
        raise TypeError("`code` is not an object")
    code = code_digest(files) if files is not None else None
    return identity(manifest["recipe"], manifest["recipe_version"], manifest["tags"], manifest["params"], deps, code)


_UNSAFE = re.compile(r"[^A-Za-z0-9_+-]+")


def directory_name(recipe: str, tags: Sequence[str], digest: str) -> str:
    """Return the readable, filesystem-safe directory name `{recipe}-{tags}-{hash}`."""
    readable = _UNSAFE.sub("_", "_".join([recipe, *tags]))[:80]
    return f"{readable}-{digest[:16]}"
