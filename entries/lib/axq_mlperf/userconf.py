"""Write and check MLPerf `user.conf` files: lines of `model.scenario.key = value`.

LoadGen's parser ignores a line without spaces around `=` and rejects a whole file over
one trailing comment, both silently enough to run the wrong test; so every file written
here is read back with a parser stricter than LoadGen's and compared with what was meant.
Shared by the recipe's build and its benchmark child process; imports nothing heavy.
"""

from __future__ import annotations

import re
from pathlib import Path

# user.conf keys this recipe writes, by scenario (LoadGen's names, not TestSettings fields).
COMMON_KEYS = ("min_duration", "max_duration", "min_query_count", "max_query_count",
               "performance_sample_count_override")
SCENARIO_KEYS = {
    "Offline": ("target_qps",),
    "Server": ("target_qps", "target_latency"),
    "SingleStream": ("target_latency",),
    "MultiStream": ("target_latency", "samples_per_query"),
}
LINE = re.compile(r"^(?P<model>[A-Za-z0-9_*-]+)\.(?P<scenario>[A-Za-z*]+)\.(?P<key>[a-z_]+)"
                  r" = (?P<value>[0-9]+(\.[0-9]+)?)$")


class UserConfError(ValueError):
    """A user.conf line that LoadGen would ignore or reject, or a value that differs."""


def format_value(value: float) -> str:
    """Return a number as user.conf wants it: an integer, or a plain decimal."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UserConfError(f"user.conf value must be a non-negative number, not {value!r}")
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def render(model: str, scenario: str, settings: dict[str, float]) -> str:
    """Return user.conf text setting each key for model and scenario, one line each."""
    allowed = COMMON_KEYS + SCENARIO_KEYS[scenario]
    lines = []
    for key, value in settings.items():
        if key not in allowed:
            raise UserConfError(f"key `{key}` is not a user.conf key for {scenario}")
        lines.append(f"{model}.{scenario}.{key} = {format_value(value)}")
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[tuple[str, str, str], float]:
    """Return {(model, scenario, key): value} of user.conf text; raise on any bad line."""
    parsed: dict[tuple[str, str, str], float] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = LINE.match(line)
        if match is None:
            raise UserConfError(f"user.conf line {number} is not `model.scenario.key = number`: {line!r}")
        parsed[(match["model"], match["scenario"], match["key"])] = float(match["value"])
    return parsed


def check(path: Path, model: str, scenario: str, settings: dict[str, float]) -> None:
    """Read user.conf back and raise unless it sets exactly these values for model, scenario."""
    parsed = parse(path.read_text(encoding="utf-8"))
    for key, value in settings.items():
        found = parsed.get((model, scenario, key))
        if found is None or abs(found - float(format_value(value))) > 1e-9:
            raise UserConfError(f"{path.name}: {model}.{scenario}.{key} reads {found}, expected {value}")
    others = [k for k in parsed if k[:2] != (model, scenario) or k[2] not in settings]
    if others:
        raise UserConfError(f"{path.name}: unexpected line for {'.'.join(others[0])}")


def append(path: Path, model: str, scenario: str, settings: dict[str, float]) -> None:
    """Add lines for settings to an existing user.conf (keys not already there)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(render(model, scenario, settings))
