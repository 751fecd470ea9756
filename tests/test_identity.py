"""Identity: a digest of exactly the inputs, stable under reordering."""

from __future__ import annotations

import pytest

from axq.identity import directory_name, identity

BASE = ("r", 1, ["a", "b"], {"x": 1, "y": "s"}, {"d": "0" * 64})


def test_identity_ignores_order():
    assert identity(*BASE) == identity("r", 1, ["b", "a"], {"y": "s", "x": 1}, {"d": "0" * 64})


@pytest.mark.parametrize(
    "changed",
    [
        ("q", 1, ["a", "b"], {"x": 1, "y": "s"}, {"d": "0" * 64}),
        ("r", 2, ["a", "b"], {"x": 1, "y": "s"}, {"d": "0" * 64}),
        ("r", 1, ["a"], {"x": 1, "y": "s"}, {"d": "0" * 64}),
        ("r", 1, ["a", "b"], {"x": 1.0, "y": "s"}, {"d": "0" * 64}),
        ("r", 1, ["a", "b"], {"x": True, "y": "s"}, {"d": "0" * 64}),
        ("r", 1, ["a", "b"], {"x": "1", "y": "s"}, {"d": "0" * 64}),
        ("r", 1, ["a", "b"], {"x": 1, "y": "s"}, {"d": "1" * 64}),
    ],
)
def test_every_input_changes_identity(changed):
    assert identity(*changed) != identity(*BASE)


def test_directory_name_is_readable_and_safe():
    name = directory_name("loadgen_program", ["classified_digits", "Offline", "/etc/passwd"], "ab" * 32)
    assert name.startswith("loadgen_program_classified_digits_Offline_")
    assert "/" not in name and "." not in name and name.endswith("-" + "ab" * 8)
