"""Collection settings: `axq set`, `axq unset`, and their effect on what a query means."""

from __future__ import annotations

import json


def test_set_list_unset_through_the_cli(work, axq_cli):
    assert axq_cli("set", "offset=3", "label='7'") == (0, "label='7'\noffset=3\n", "")
    code, out, _ = axq_cli("--json", "set")
    assert code == 0 and json.loads(out) == {"label": "7", "offset": 3}
    code, out, _ = axq_cli("byquery", "sum,value=2", ",", "get", "total")
    assert (code, out) == (0, "5\n")
    code, out, _ = axq_cli("byquery", "sum,value=2,offset=0", ",", "get", "total")
    assert (code, out) == (0, "2\n"), "a query's own k=v wins over a setting"
    assert axq_cli("unset", "offset")[:2] == (0, "label='7'\n")
    code, out, _ = axq_cli("byquery", "sum,value=2", ",", "get", "total")
    assert (code, out) == (0, "2\n")


def test_bad_settings_exit_2_and_change_nothing(work, axq_cli):
    for args, fragment in [(("set", "ofset=1"), "did you mean `offset`?"), (("set", "offset"), "expected KEY=VALUE"),
                           (("set", "offset=x"), "must be an integer"), (("unset", "offset"), "`offset` is not set")]:
        code, _, err = axq_cli(*args)
        assert code == 2 and fragment in err, (args, err)
    assert axq_cli("set")[1] == "no settings\n"
