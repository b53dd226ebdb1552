"""Every benchmark module imports: a renamed library name breaks the benchmark here, not months later."""

import importlib
import pkgutil

import pytest

import benchmarks

BENCHMARK_MODULES = sorted(module.name for module in pkgutil.walk_packages(benchmarks.__path__, "benchmarks."))


@pytest.mark.parametrize("name", BENCHMARK_MODULES)
def test_benchmark_module_imports(name):
    importlib.import_module(name)
