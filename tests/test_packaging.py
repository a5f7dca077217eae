"""The product is `studio` alone: the providers' emulator is a tool beside it, never part of it."""

import subprocess
import sys
import warnings
from pathlib import Path

from setuptools.config.pyprojecttoml import read_configuration

ROOT = Path(__file__).resolve().parent.parent


def test_the_emulator_is_not_inside_studio():
    ran = subprocess.run(
        [sys.executable, "-c", "import studio.emulator"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode != 0
    assert "ModuleNotFoundError: No module named 'studio.emulator'" in ran.stderr


def test_the_wheel_packages_studio_and_not_the_emulator():
    # The packages setuptools puts in the wheel, as it reads them from pyproject.toml. (Building
    # the wheel itself needs build isolation, so the network, or the `wheel` package.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "[tool.setuptools] is still beta" on older setuptools
        config = read_configuration(ROOT / "pyproject.toml")
    packages = config["tool"]["setuptools"]["packages"]
    assert (ROOT / "emulator" / "__init__.py").exists()
    assert {"studio", "studio.providers", "studio.migrations"} <= set(packages)
    assert [p for p in packages if not p.startswith("studio")] == []


def test_the_emulator_runs_without_django():
    ran = subprocess.run(
        [sys.executable, "-c", "import sys, emulator; print(sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert "django" not in ran.stdout
