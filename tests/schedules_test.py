"""Tests for tftune.schedules.WarmupDecay: every decay shape, restarts, config round trip, bad arguments."""

import keras
import numpy as np
import pytest

import tftune


def _rates(schedule, steps):
    return [float(schedule(step)) for step in steps]


@pytest.mark.parametrize(
    "decay, expected",
    [
        # warm-up 0.25, 0.5, ..., peak at step 3, then 8 decay steps to 0.1 at step 12 and after.
        ("linear", [0.25, 1.0, 1.0 - 0.9 * 4 / 8, 0.1, 0.1]),
        ("cosine", [0.25, 1.0, 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 4 / 8)), 0.1, 0.1]),
        ("constant", [0.25, 1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_every_decay_shape(decay, expected):
    schedule = tftune.WarmupDecay(1.0, warmup_steps=4, total_steps=12, decay=decay, final_ratio=0.1)
    np.testing.assert_allclose(_rates(schedule, (0, 3, 8, 12, 20)), expected, rtol=1e-6)


def test_no_total_steps_stays_at_the_peak_and_no_warmup_starts_there():
    np.testing.assert_allclose(_rates(tftune.WarmupDecay(2e-3), (0, 100)), [2e-3, 2e-3])
    np.testing.assert_allclose(_rates(tftune.WarmupDecay(1.0, total_steps=10), (0, 5, 10)), [1.0, 0.5, 0.0])


def test_restart_and_step_offset_shift_the_clock():
    schedule = tftune.WarmupDecay(1.0, warmup_steps=2, total_steps=10)
    schedule.restart(6)  # a new stage at the fit's step 6: warm-up 2 steps, then 2 decay steps to 10
    schedule.step_offset = 4  # this optimizer has made 4 steps fewer than the fit
    np.testing.assert_allclose(_rates(schedule, (2, 3, 4, 5, 6)), [0.5, 1.0, 1.0, 0.5, 0.0])


def test_config_round_trip_through_keras_serialization():
    schedule = tftune.WarmupDecay(3e-4, warmup_steps=5, total_steps=50, decay="cosine", final_ratio=0.05)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, tftune.WarmupDecay)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_allclose(_rates(restored, range(0, 60, 7)), _rates(schedule, range(0, 60, 7)))


def test_bad_arguments_are_all_reported_at_once():
    with pytest.raises(ValueError) as error:
        tftune.WarmupDecay(0.0, warmup_steps=-1, decay="step", final_ratio=2)
    message = str(error.value)
    assert message.startswith("4 invalid options:")
    for part in ("learning_rate must be a number > 0; got 0.0", "warmup_steps must be an integer >= 0; got -1",
                 "decay must be one of 'linear', 'cosine', 'constant'; got 'step'", "got 2"):
        assert part in message
    with pytest.raises(ValueError, match="total_steps must be an integer >= 1; got 0"):
        tftune.WarmupDecay(1.0, total_steps=0)
    # A warm-up longer than the fit (a tiny run with the per-stage default) just never reaches the peak.
    np.testing.assert_allclose(_rates(tftune.WarmupDecay(1.0, warmup_steps=10, total_steps=4), (0, 3)), [0.1, 0.4])
