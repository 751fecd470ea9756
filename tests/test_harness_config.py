"""The LoadGen run's typed configuration follows loadgen_program's parameter declarations.

Each parameter is declared once, in entries/loadgen_program/recipe.json; `"to": "harness"`
makes it a field of HarnessConfig, `"to": "backend"` one of backends.Options. These tests
fail when a declaration and its field disagree (a name, a type, a default), so adding a
parameter to the run is its declaration plus the code that uses it (docs/recipes.md).
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest

from axq.entry import use_libraries
from axq.parameters import Parameter
from axq.recipe import all_recipes
from axq.resolve import resolve

use_libraries()  # axq_mlperf, as recipe code imports it

from axq_mlperf.backends import Options  # noqa: E402
from axq_mlperf.config import HarnessConfig, parameter_fields  # noqa: E402

PYTHON = {"int": "int", "float": "float", "bool": "bool", "str": "str"}
CONFIGS = {"harness": HarnessConfig, "backend": Options}


def declared() -> dict[str, Parameter]:
    return next(r for r in all_recipes() if r.name == "loadgen_program").parameters


@pytest.mark.parametrize("target", sorted(CONFIGS))
def test_the_parameters_declared_for_a_configuration_are_its_fields(target: str) -> None:
    marked = {name for name, p in declared().items() if p.to == target}
    assert marked and set(parameter_fields(CONFIGS[target])) == marked


@pytest.mark.parametrize("target", sorted(CONFIGS))
def test_each_field_has_its_declared_type_and_default(target: str) -> None:
    parameters = declared()
    for field in fields(CONFIGS[target]):
        if field.name not in parameter_fields(CONFIGS[target]):
            continue
        parameter = parameters[field.name]
        assert field.type == PYTHON[parameter.type] + (" | None" if parameter.nullable else ""), field.name
        if field.default is not MISSING:  # a default here, if any, is the declared one
            default = parameter.check(parameter.default)  # as a run holds it: a float parameter's 1 is 1.0
            assert parameter.has_default and field.default == default, field.name
            assert type(field.default) is type(default), field.name


def test_a_run_s_configuration_is_its_resolved_parameters(tmp_path: Path) -> None:
    query = ("loadgen_output,classified_digits,framework=openvino,ov_streams=2,loadgen_mode=PerformanceOnly,"
             "loadgen_scenario=Server,threads_per_instance=2,warmup_batches=0")
    params: dict[str, Any] = resolve(query).params
    computed = {"user_conf": {"target_qps": 10.0}, "calibrate": ("target_latency",), "buffer_size": 450,
                "min_queries": 1, "preprocessed": "p", "model": "m"}
    config = HarnessConfig.of(params, **computed)
    assert (config.loadgen_scenario, config.loadgen_mode, config.warmup_batches) == ("Server", "PerformanceOnly", 0)
    backend = config.backend
    assert (backend.framework, backend.ov_streams, backend.num_threads, backend.batch_size) == ("openvino", 2, 2, 32)
    assert config.backend_options().batch_sizes == (1, 2, 4, 8, 16, 32)  # Server: powers of two up to batch_size
    assert HarnessConfig.read(config.write(tmp_path)) == config
