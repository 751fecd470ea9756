"""Say, in one place, what makes a built entry what it is, and digest it.

An entry's identity is the SHA-256 of the canonical JSON of exactly these inputs:
the recipe's name and version, the producer's tags, the fully resolved parameters
(defaults filled in) and the identities of its dependencies by name. Nothing else (no
time, host or path) goes in, so the same query always means the same entry.
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
) -> str:
    """Return the hex digest naming an entry built from these inputs."""
    descriptor = {
        "recipe": recipe,
        "version": version,
        "tags": sorted(tags),
        "params": dict(params),
        "deps": dict(deps),
    }
    return hashlib.sha256(canonical_json(descriptor).encode()).hexdigest()


_UNSAFE = re.compile(r"[^A-Za-z0-9_+-]+")


def directory_name(recipe: str, tags: Sequence[str], digest: str) -> str:
    """Return the readable, filesystem-safe directory name `{recipe}-{tags}-{hash}`."""
    readable = _UNSAFE.sub("_", "_".join([recipe, *tags]))[:80]
    return f"{readable}-{digest[:16]}"
