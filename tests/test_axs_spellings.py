"""axs2mlperf's own spellings, understood with a note (issue 21 §4): `execution_device=gpu`, `num_gpus=N`,
`framework=onnx` and `verbosity=N`, declared in loadgen_program's recipe.json, not in the kernel.

The two classification lines of axs2mlperf that no rule matched (and their older
`classified_imagenet,framework=onnx` twins) now plan, or fail with loadgen_program's own
reason. Everything here is resolution and planning: nothing is built.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from axq.errors import ManifestError
from axq.parameters import read_parameters
from axq.query import parse
from axq.recipe import Producer, all_recipes
from axq.resolve import forget_notes, resolve, spelled_query
from axq.verbs.registry import parse as parse_line
from tests.imagenet_fixture import make_imagenet_dir

AXS2MLPERF = Path(__file__).resolve().parent / "data" / "axs2mlperf_queries.txt"
DIGITS = "loadgen_output,classified_digits"
NO_GPU = {"CUDA_VISIBLE_DEVICES": ""}  # this machine, seen as one without a CUDA device (it has none anyway)


def classification_lines() -> list[str]:
    """Return axs2mlperf's classification lines that carry `verbosity=1`: two new, two older twins."""
    lines = AXS2MLPERF.read_text().splitlines()
    return [line for line in lines if "verbosity=1" in line
            and ("task=image_classification" in line or "classified_imagenet" in line)]


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point axq at an empty work collection and the shipped recipes, on a machine without CUDA."""
    monkeypatch.setenv("AXQ_WORK_COLLECTION", str(tmp_path / "wc"))
    monkeypatch.delenv("AXQ_ENTRIES", raising=False)
    for name, value in NO_GPU.items():
        monkeypatch.setenv(name, value)
    forget_notes()
    return tmp_path / "wc"


def loadgen_rule() -> Producer:
    """Return loadgen_program's digits rule that takes any framework."""
    recipe = next(r for r in all_recipes() if r.name == "loadgen_program")
    return next(p for p in recipe.producers if "classified_digits" in p.tags and "framework" in p.required)


@pytest.mark.parametrize(("written", "meant"), [
    ("execution_device=gpu", "device=cuda"),
    ("execution_device=cpu", "device=cpu"),
    ("execution_device=cuda:1", "device=cuda:1"),
    ("num_gpus=1", "device=cuda"),
    ("num_gpus=2", "device=cuda"),
    ("num_gpus=0", "device=cpu"),
    ("framework=onnx", "framework=onnxruntime"),
])
def test_each_axs_spelling_is_axqs_parameter(shipped: Path, written: str, meant: str) -> None:
    query, notes = spelled_query(loadgen_rule(), parse(f"{DIGITS},{written}"))
    assert query == parse(f"{DIGITS},{meant}")
    assert notes == (f"{written} is axq's {meant}",)


def test_axqs_own_spellings_get_no_note(shipped: Path) -> None:
    query = parse(f"{DIGITS},device=cuda,framework=onnxruntime")
    assert spelled_query(loadgen_rule(), query) == (query, ())


@pytest.mark.parametrize(("written", "meant"), [
    ("num_gpus=0", "device=cpu"), ("execution_device=cpu", "device=cpu"),
    ("framework=onnx", "framework=onnxruntime")])
def test_a_spelling_means_the_entry_axqs_name_means(shipped: Path, written: str, meant: str) -> None:
    assert resolve(f"{DIGITS},{written}").identity == resolve(f"{DIGITS},{meant}").identity


def test_the_note_is_one_line_on_stderr_naming_axqs_parameter(shipped: Path, axq_cli) -> None:
    code, out, err = axq_cli("plan", f"{DIGITS},num_gpus=0,framework=onnx")
    assert code == 0 and "loadgen_program_classified_digits" in out
    assert err.splitlines() == ["axq: num_gpus=0 is axq's device=cpu",
                                "axq: framework=onnx is axq's framework=onnxruntime"]
    assert (code, out) == axq_cli("plan", f"{DIGITS},device=cpu,framework=onnxruntime")[:2]


@pytest.mark.parametrize("query", [DIGITS, "loadgen_output,classified_digits,loadgen_mode=FindPeakPerformance"],
                         ids=["run", "peak"])
@pytest.mark.parametrize("spelling", ["execution_device=gpu", "num_gpus=1", "device=cuda"])
def test_cuda_on_a_machine_without_it_is_one_line_and_exit_1(shipped: Path, axq_cli, spelling: str,
                                                             query: str) -> None:
    code, out, err = axq_cli("plan", f"{query},{spelling}")
    errors = [line for line in err.splitlines() if "is axq's" not in line]
    assert (code, out) == (1, "")
    assert len(errors) == 1 and errors[0].startswith("axq: no CUDA device here: device=cuda needs an NVIDIA GPU")
    assert not shipped.exists() or not any(shipped.glob("*_*-*"))


def test_cuda_where_the_driver_shows_a_gpu_is_planned(shipped: Path, tmp_path: Path, axq_cli,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from axq_mlperf import system

    (tmp_path / "gpus" / "0000:01:00.0").mkdir(parents=True)
    (tmp_path / "gpus" / "0000:01:00.0" / "information").write_text("Model: \t NVIDIA H100\n")
    monkeypatch.setattr(system, "NVIDIA_GPUS", str(tmp_path / "gpus"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    code, out, err = axq_cli("plan", f"{DIGITS},execution_device=gpu")
    assert code == 0 and "loadgen_program_classified_digits" in out, err
    assert "-1xh100-" in resolve(f"{DIGITS},num_gpus=1").params["system"]


def test_a_cuda_run_of_another_system_is_not_refused_here(shipped: Path, axq_cli) -> None:
    code, out, err = axq_cli("plan", f"{DIGITS},device=cuda,system=h100-1x-nvidia-h100-linux-0123abcd")
    assert code == 0 and "loadgen_program_classified_digits" in out, err


@pytest.mark.parametrize(("level", "quiet", "verbose"), [(0, True, False), (1, False, False), (2, False, True),
                                                         (3, False, True)])
def test_verbosity_is_axqs_verbosity(shipped: Path, level: int, quiet: bool, verbose: bool) -> None:
    call = parse_line(["byquery", f"{DIGITS},verbosity={level}", ",", "get", "accuracy"])
    assert not isinstance(call, str)
    reporter = call.reporter()
    assert (reporter.mode == "quiet", reporter.verbose) == (quiet, verbose)


def test_verbosity_adds_to_the_flags(shipped: Path) -> None:
    quiet = parse_line(["byquery", f"{DIGITS},verbosity=2", "--quiet"])
    assert not isinstance(quiet, str) and quiet.reporter().mode == "quiet"
    verbose = parse_line(["plan", DIGITS, "-v"])
    assert not isinstance(verbose, str) and verbose.reporter().verbose


def test_verbosity_is_no_part_of_the_entry(shipped: Path, axq_cli, capsys: pytest.CaptureFixture) -> None:
    plain = resolve(DIGITS)
    for level in (0, 1, 2):
        node = resolve(f"{DIGITS},verbosity={level}")
        assert node.identity == plain.identity and "verbosity" not in node.params
    capsys.readouterr()
    forget_notes()
    code, out, err = axq_cli("plan", f"{DIGITS},verbosity=2")
    assert code == 0 and err == "axq: verbosity=2 is axq's --verbose\n"
    assert out == axq_cli("plan", DIGITS)[1]


def test_a_bad_verbosity_is_refused_as_a_parameter(shipped: Path, axq_cli) -> None:
    code, _, err = axq_cli("plan", f"{DIGITS},verbosity=-1")
    assert code == 2 and "`verbosity=-1`" in err and "must be at least 0" in err and "Traceback" not in err


def test_the_two_classification_lines_name_loadgen_programs_reason(shipped: Path, axq_cli) -> None:
    lines = classification_lines()
    assert len(lines) == 4
    for line in lines:
        code, _, err = axq_cli("plan", line)
        refusal = err.splitlines()[-1].split("`: the closest, ")[-1]
        assert code == 2, err
        assert refusal == "loadgen_program (loadgen_output,classified_imagenet), needs `imagenet_dir=...`"


def test_the_two_classification_lines_plan_given_imagenet(shipped: Path, tmp_path: Path, axq_cli) -> None:
    folder = make_imagenet_dir(tmp_path, 20, small=True)
    new_gpu, new_cpu, old_gpu, old_cpu = classification_lines()
    for line in (new_cpu, old_cpu):
        forget_notes()
        code, out, err = axq_cli("plan", f"{line},imagenet_dir={folder}")
        assert code == 0, err
        assert out.startswith("[build ] loadgen_program_classified_imagenet_imagenet_Offline_PerformanceOnly_onnx")
        assert "axq: verbosity=1 is axq's default verbosity" in err
    for line in (new_gpu, old_gpu):
        forget_notes()
        code, out, err = axq_cli("plan", f"{line},imagenet_dir={folder}")
        assert (code, out) == (1, ""), err
        assert "axq: execution_device=gpu is axq's device=cuda\naxq: num_gpus=1 is axq's device=cuda\n" in err
        assert err.splitlines()[-1].startswith("axq: no CUDA device here")


@pytest.mark.parametrize(("spec", "problem"), [
    ({"spellings": {"num_gpu": {"1": "cuda"}}}, "neither the parameter's name nor one of its aliases"),
    ({"spellings": {"execution_device": []}}, "expected an object mapping a name"),
    ({"spellings": {"execution_device": {"gpu": {"a": 1}}}}, "expected a number, string, bool or null"),
    ({"kernel": "colour"}, "expected one of verbosity"),
])
def test_a_bad_spelling_declaration_names_the_field(spec: dict, problem: str) -> None:
    declared = {"type": "str", "default": "cpu", "description": "where", "aliases": ["execution_device"], **spec}
    with pytest.raises(ManifestError, match=problem):
        read_parameters("toy", {"device": declared})
