"""Fixtures for the launcher tests: stand-in service modules and their specs."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from oms_devstack import DEFAULT_SERVICES, ServiceSpec

HERE = Path(__file__).parent
STANDIN_MODULE = "standin_svc"


@pytest.fixture(scope="session")
def standin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for PYTHONPATH holding the stand-in as ``standin_svc`` and, for the CLI
    test, under each real service's module name (``order_svc`` ...)."""
    root = tmp_path_factory.mktemp("standin")
    source = HERE / "standin_app.py"
    shutil.copy(source, root / f"{STANDIN_MODULE}.py")
    for spec in DEFAULT_SERVICES:
        package = root / spec.module
        package.mkdir()
        shutil.copy(source, package / "__main__.py")
        (package / "__init__.py").write_text("")
    return root


@pytest.fixture(scope="session")
def standin_specs() -> list[ServiceSpec]:
    """The five real service specs, each running the stand-in module instead."""
    return [dataclasses.replace(spec, module=STANDIN_MODULE) for spec in DEFAULT_SERVICES]
