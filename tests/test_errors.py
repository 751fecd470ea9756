"""User errors: the closest rule when none matches, exit codes, and faults of the machine a build meets.

The environment faults are real: a tiny tmpfs that fills (mounted in a private mount
namespace, so it vanishes with the test's shell), a read-only bind mount, and permission
bits that the process cannot override (root's override is dropped with setpriv).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

import axq
from axq.build import environment_fault
from axq.errors import NoProducerError, ParameterError
from tests.conftest import REPO, TOY_RECIPES, run_axq

IMAGENET_WITHOUT_FOLDER = "loadgen_output,task=image_classification,framework=onnxrt,model_name=resnet50"
DIGITS_ACCURACY = "loadgen_output,classified_digits,framework=pytorch,loadgen_mode=AccuracyOnly"


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point axq at an empty work collection and the shipped recipes only."""
    monkeypatch.setenv("AXQ_WORK_COLLECTION", str(tmp_path / "wc"))
    monkeypatch.delenv("AXQ_ENTRIES", raising=False)
    return tmp_path / "wc"


# ------------------------------------------------------------------------------- the rule a user means


def test_no_match_names_the_rule_the_user_means_and_what_it_needs(shipped: Path, axq_cli) -> None:
    code, _, err = axq_cli("plan", IMAGENET_WITHOUT_FOLDER)
    assert code == 2 and len(err.strip().splitlines()) == 1
    message = err.strip()
    assert message.startswith(f"axq: nothing matches `{IMAGENET_WITHOUT_FOLDER}`: the closest, "
                              "loadgen_program (loadgen_output,classified_imagenet), needs `imagenet_dir=...`")
    assert "loadgen_peak" not in message and "[" not in message, "no peak rule, no internal rule ids"


def test_a_mistyped_parameter_is_said_once(shipped: Path, axq_cli) -> None:
    code, _, err = axq_cli("plan", f"{DIGITS_ACCURACY},loadgen_scenaro=Offline")
    assert code == 2
    assert err.strip() == "axq: unknown parameter `loadgen_scenaro`; did you mean `loadgen_scenario`?"


def test_a_bad_value_blames_the_rule_the_user_means(shipped: Path) -> None:
    with pytest.raises(ParameterError) as caught:
        axq.plan(f"{DIGITS_ACCURACY},loadgen_scenario=Offline,batch_size=abc")
    assert str(caught.value) == ("bad parameter `batch_size=abc` for loadgen_program "
                                 "(loadgen_output,classified_digits, framework=pytorch): must be an integer")


def test_a_missing_tag_ranks_below_a_missing_value(shipped: Path) -> None:
    with pytest.raises(NoProducerError, match=r"the closest, loadgen_program \(loadgen_output,classified_imagenet, "
                                              r"framework=pytorch\), needs `imagenet_dir=\.\.\.`$"):
        axq.plan("loadgen_output,classified_imagenet,framework=pytorch")


def test_rules_names_each_rule_in_the_users_words(shipped: Path, axq_cli) -> None:
    code, out, _ = axq_cli("rules", "loadgen_output,classified_digits")
    lines = [line for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0 and "[" not in "".join(line.split(":")[0] for line in lines)
    assert lines[0].startswith("CHOSEN loadgen_program (loadgen_output,classified_digits, framework=pytorch) ")
    assert "no     loadgen_program (loadgen_output,classified_digits): needs `framework=...`" in lines


# ------------------------------------------------------------------------------- exit codes and hints


def test_a_getter_typo_is_a_query_error(work: Path, axq_cli) -> None:
    axq.byquery("number,value=2")
    for _ in range(2):  # built, then answered from the memo: the same code both ways
        code, _, err = axq_cli("byquery", "number,value=2", ",", "get", "dubled")
        assert code == 2 and "did you mean `doubled`?" in err


def test_what_is_not_there_is_exit_2_for_show_and_import_alike(work: Path, tmp_path: Path, axq_cli) -> None:
    shown = axq_cli("show", "no-such-entry")
    imported = axq_cli("import", str(tmp_path / "no-such.tgz"))
    assert shown[0] == imported[0] == 2
    assert "no entry `no-such-entry`" in shown[2] and f"no archive at {tmp_path / 'no-such.tgz'}" in imported[2]


def test_a_comma_glued_to_the_query_gets_the_hint(work: Path, axq_cli) -> None:
    code, out, err = axq_cli("byquery", "number,value=2,", "get", "doubled")
    assert code == 2 and out == ""
    assert "to end the query before `get`, write ` , ` with a space on each side" in err
    assert axq_cli("byquery", "number,value=2", ",", "get", "doubled")[:2] == (0, "4\n")


@pytest.mark.parametrize("stage", ["show", "get_path", "remove"])
def test_a_comma_glued_before_a_one_word_stage_gets_the_hint(work: Path, axq_cli, stage: str) -> None:
    code, out, err = axq_cli("byquery", "number,value=2,", stage)
    assert (code, out) == (2, "") and len(err.splitlines()) == 1
    assert err == (f"axq: no recipe produces tag `{stage}` (to end the query before `{stage}`, "
                   "write ` , ` with a space on each side)\n")
    assert not work.exists() or not any(work.glob("toy_number_*"))


# ------------------------------------------------------------------------------- the machine: recognising faults


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda: OSError(errno.ENOSPC, "No space left on device"), "no space left on the disk holding /wc"),
    (lambda: _chained(RuntimeError("saving failed"), OSError(errno.EDQUOT, "Disk quota exceeded")),
     "disk quota exceeded holding /wc"),
    (lambda: PermissionError(errno.EACCES, "Permission denied", "/data/x"), "permission denied: /data/x"),
    (lambda: OSError(errno.EROFS, "Read-only file system", "/wc/.tmp/e.1/model.pt"), "read-only file system: "),
    (lambda: PermissionError(errno.EPERM, "Operation not permitted"), None),  # os.kill: no path, not the disk
    (lambda: RuntimeError("a bug in the recipe"), None),
    # torch's writer failing on a disk with room left: not a full disk (a bug, with its traceback)
    (lambda: RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"), None),
])
def test_environment_faults_are_recognised_through_the_error_chain(tmp_path: Path, make, fragment) -> None:
    found = environment_fault(make(), str(tmp_path), "/wc")
    assert found == fragment if fragment is None else fragment in (found or "")


def _chained(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


# ------------------------------------------------------------------------------- the machine: real faults


def private_mounts(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace: its mounts are gone when it ends.

    As root, `unshare --mount`; as another user, inside a user namespace where it is root.
    """
    flags = ["--mount"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--mount"]
    return subprocess.run(["unshare", *flags, "--propagation", "private", "sh", "-ec", script, "sh", *args],
                          cwd=REPO, text=True, capture_output=True, timeout=600, check=False)


AXQ_IN_SHELL = """
run() {{ name=$1; shift; {prefix} "$PYTHON" -m axq --quiet --work-collection "$WC" "$@" \\
    >"$OUT/$name.out" 2>"$OUT/$name.err" && echo 0 >"$OUT/$name.rc" || echo $? >"$OUT/$name.rc"; }}
"""


class Results:
    """What each named axq run of a shell script left in OUT: exit code, stdout, stderr."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def __call__(self, name: str) -> tuple[int, str, str]:
        return (int((self.out / f"{name}.rc").read_text()), (self.out / f"{name}.out").read_text(),
                (self.out / f"{name}.err").read_text())

    def one_line(self, name: str, *fragments: str) -> None:
        """Check that run `name` failed (exit 1) with one line holding every fragment."""
        code, _, err = self(name)
        assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert all(f in err for f in fragments), (fragments, err)


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Results:
    """Set up the variables AXQ_IN_SHELL's `run` uses; return the reader of its results."""
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("OUT", str(out))
    monkeypatch.setenv("PYTHON", sys.executable)
    monkeypatch.setenv("AXQ_ENTRIES", str(TOY_RECIPES))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return Results(out)


def test_a_disk_that_fills_is_one_line_and_keeps_what_was_built(tmp_path: Path, shell: Results,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    wc = disk / "wc"
    monkeypatch.setenv("WC", str(wc))
    script = AXQ_IN_SHELL.format(prefix="") + """
mount -t tmpfs -o size=4m tmpfs "$1"
run kept byquery number,value=1 , get stored
run torch byquery written,megabytes=16 , get megabytes
run python byquery written,writer=python,megabytes=16 , get megabytes
head -c 16m /dev/zero >"$1/filler" 2>/dev/null || true
run full_build byquery number,value=5 , get stored
run full_set set offset=1
rm "$1/filler"
run after byquery value=1,number , get stored
ls -A "$WC" >"$OUT/entries"; ls -A "$WC/.tmp" >"$OUT/tmp"; ls -A "$WC/.index/ids" >"$OUT/ids"
"""
    done = private_mounts(script, str(disk))
    assert done.returncode == 0, done.stderr
    assert shell("kept")[:2] == (0, "1\n")
    shell.one_line("torch", "building toy_write_written", f"failed: no space left on the disk holding {wc}",
                   "nothing was kept; log: ")  # torch.save raised RuntimeError, without an errno
    shell.one_line("python", "building toy_write_written", f"failed: no space left on the disk holding {wc}")
    shell.one_line("full_build", "toy_number_number_5", f"no space left on the disk holding {wc}")
    shell.one_line("full_set", f"work collection {wc} cannot be used: no space left on its disk")
    assert shell("after")[:2] == (0, "1\n"), "what was built before is still there"
    entries = (shell.out / "entries").read_text().split()
    assert [e.split("-")[0] for e in entries if not e.startswith(".")] == ["toy_number_number_1"]
    assert (shell.out / "tmp").read_text() == "", "no partial build is left"
    assert len((shell.out / "ids").read_text().split()) == 1


def test_a_read_only_work_collection_answers_and_refuses_builds_in_one_line(tmp_path: Path, shell: Results,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    wc = tmp_path / "wc"
    monkeypatch.setenv("WC", str(wc))
    assert run_axq("--work-collection", str(wc), "byquery", "number,value=1", ",", "get", "stored").returncode == 0
    before = sorted(p.name for p in wc.iterdir())
    script = AXQ_IN_SHELL.format(prefix="") + """
mount --bind "$WC" "$WC" && mount -o remount,bind,ro "$WC"
run cached byquery value=1,number , get stored
run build byquery number,value=2 , get stored
"""
    done = private_mounts(script)
    assert done.returncode == 0, done.stderr
    assert shell("cached")[:2] == (0, "1\n"), "reads still work: the memo is only skipped"
    shell.one_line("build", "cannot build toy_number_number_2-",
                   f"work collection {wc} cannot be used: it is on a read-only file system")
    assert sorted(p.name for p in wc.iterdir()) == before


NO_OVERRIDE = "setpriv --bounding-set=-dac_override,-dac_read_search" if os.geteuid() == 0 else ""


def test_permission_denied_is_one_line_naming_the_entry_and_the_path(tmp_path: Path, shell: Results,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    wc, secret = tmp_path / "wc", tmp_path / "secret.txt"
    secret.write_text("not yours")
    monkeypatch.setenv("WC", str(wc))
    assert run_axq("--work-collection", str(wc), "byquery", "number,value=1", ",", "get", "stored").returncode == 0
    script = AXQ_IN_SHELL.format(prefix=NO_OVERRIDE) + f"""
chmod 000 "{secret}"
run input byquery written,writer=python,megabytes=0,input_path={secret} , get megabytes
chmod -R a-w "$WC"
run cached byquery value=1,number , get stored
run build byquery number,value=2 , get stored
chmod -R u+w "$WC"; chmod 644 "{secret}"
"""
    done = subprocess.run(["sh", "-ec", script], cwd=REPO, text=True, capture_output=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    shell.one_line("input", "building toy_write_written", f"failed: permission denied: {secret}; nothing was kept")
    assert shell("cached")[:2] == (0, "1\n")
    shell.one_line("build", "cannot build toy_number_number_2-",
                   f"work collection {wc} cannot be used: not writable (permission denied)")
    assert not list((wc / ".tmp").iterdir()) and not (wc / "toy_number_number_2").exists()


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda tmp: "/proc/1/axq-wc", "cannot be created"),
    (lambda tmp: (tmp / "file").write_text("x") and str(tmp / "file"), "a file is in the way"),
    (lambda tmp: (tmp / "file2").write_text("x") and str(tmp / "file2" / "wc"), "a file is in the way"),
])
def test_an_unusable_work_collection_names_the_entry_the_path_and_the_cause(tmp_path: Path, monkeypatch, make,
                                                                           fragment: str) -> None:
    monkeypatch.setenv("AXQ_ENTRIES", str(TOY_RECIPES))
    path = make(tmp_path)
    result = run_axq("--work-collection", path, "byquery", "number,value=3", ",", "get", "stored")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot build toy_number_number_3-" in result.stderr and f"work collection {path} " in result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("verb", ["gc", "reindex"])
@pytest.mark.parametrize(("make", "fragment"), [
    (lambda tmp: "/proc/1/axq-wc", "cannot be created"),
    (lambda tmp: (tmp / "file").write_text("x") and str(tmp / "file" / "wc"), "a file is in the way"),
])
def test_gc_of_a_collection_that_cannot_be_made_is_one_line(tmp_path: Path, axq_cli, monkeypatch, verb: str, make,
                                                            fragment: str) -> None:
    """From $AXQ_WORK_COLLECTION (`--work-collection` of a missing folder is refused before): exit 1, one line."""
    path = make(tmp_path)
    monkeypatch.setenv("AXQ_WORK_COLLECTION", path)
    code, out, err = axq_cli(verb)
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert err.startswith(f"axq: work collection {path} cannot be used: {fragment}")


def test_a_missing_work_collection_is_created_for_a_build(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AXQ_ENTRIES", str(TOY_RECIPES))
    wc = tmp_path / "not" / "yet" / "wc"
    result = run_axq("--work-collection", str(wc), "byquery", "number,value=3", ",", "get", "stored")
    assert (result.returncode, result.stdout) == (0, "3\n") and len(list(wc.glob("toy_number_number_3-*"))) == 1
