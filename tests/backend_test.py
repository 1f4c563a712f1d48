import os
import subprocess
import sys

import pytest


def _import_tftune(environment_overrides: dict) -> subprocess.CompletedProcess:
    environment = {**os.environ, **environment_overrides}
    return subprocess.run(
        [sys.executable, "-c", "import tftune, keras; print('backend', keras.backend.backend())"],
        env=environment, capture_output=True, text=True, timeout=120,
    )


def test_another_explicit_backend_is_not_overwritten_and_fails_clearly():
    result = _import_tftune({"KERAS_BACKEND": "jax"})
    assert result.returncode != 0
    assert "KERAS_BACKEND='jax'" in result.stderr and "KERAS_BACKEND=tensorflow" in result.stderr


@pytest.mark.slow
def test_unset_backend_becomes_tensorflow():
    environment = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", "import tftune, keras, os; print(keras.backend.backend(), os.environ['KERAS_BACKEND'])"],
        env=environment, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["tensorflow", "tensorflow"]
