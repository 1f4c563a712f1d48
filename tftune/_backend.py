"""Makes sure Keras runs on TensorFlow before anything imports keras, and keeps TensorFlow's start-up quiet.

TensorFlow's C++ libraries write their start-up lines (absl's "All log
messages before absl::InitializeLog()", oneDNN, "Could not find cuda
drivers", cpu_feature_guard, "failed call to cuInit") straight to file
descriptor 2, before `TF_CPP_MIN_LOG_LEVEL` is read by the logger they
use, so only redirecting the descriptor while TensorFlow loads silences
them. tftune does that on import and keeps the text in `STARTUP_LOG`
(`tftune --verbose` prints it); `TFTUNE_VERBOSE=1` leaves stderr alone.
"""

import contextlib
import os
import sys
import tempfile

_REQUIRED_BACKEND = "tensorflow"
# Set TFTUNE_VERBOSE=1 (any value but "" / "0") to see TensorFlow's native start-up logging as it happens.
VERBOSE_ENV = "TFTUNE_VERBOSE"
# What TensorFlow's native libraries wrote to stderr while tftune imported them (empty when verbose).
STARTUP_LOG: list[str] = []


def verbose_startup() -> bool:
    """Whether TensorFlow's native start-up logging goes to stderr as it happens (`TFTUNE_VERBOSE` is set)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def ensure_tensorflow_backend() -> None:
    """Select the TensorFlow backend for Keras, or fail clearly; import TensorFlow quietly.

    An unset `KERAS_BACKEND` is set to "tensorflow". A user's explicit choice
    is never overwritten: if it names another backend, or if keras was already
    imported with another backend, a `RuntimeError` explains how to fix it.
    """
    requested = os.environ.setdefault("KERAS_BACKEND", _REQUIRED_BACKEND)
    if requested != _REQUIRED_BACKEND:
        raise RuntimeError(
            f"tftune needs the TensorFlow backend of Keras (tf.distribute, "
            f"SavedModel export), but KERAS_BACKEND={requested!r}. Unset it or "
            f"run with KERAS_BACKEND=tensorflow."
        )
    if not verbose_startup():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # native INFO / WARNING lines after start-up
    with _native_stderr_kept(STARTUP_LOG, enabled=not verbose_startup()):
        import keras
        import keras_hub  # noqa: F401  (loads TF Text's native ops: a second round of start-up lines)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # the CUDA probe ("failed call to cuInit" without a GPU)

    active = keras.backend.backend()
    if active != _REQUIRED_BACKEND:
        raise RuntimeError(
            f"keras was imported with the {active!r} backend before tftune "
            f"(from ~/.keras/keras.json or an earlier import). tftune needs "
            f"'tensorflow': set KERAS_BACKEND=tensorflow before importing keras."
        )


@contextlib.contextmanager
def _native_stderr_kept(log: list, *, enabled: bool):
    """Redirect file descriptor 2 to a temporary file while the block runs; append what was written to `log`.

    If the block raises, the text is written back to stderr first, so nothing
    that explains a failed import is lost.
    """
    try:
        saved = os.dup(2) if enabled else None
    except OSError:  # no stderr descriptor to redirect
        saved = None
    if saved is None:
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            log.append(text)
            if failed:
                sys.stderr.write(text)
