"""Precision on CPU: bfloat16 detection from /proc/cpuinfo, what "auto" picks here, and a bfloat16 model end to end."""

import logging

import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import distribute, precision
from tftune.families import IMAGE, TEXT

AMX_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
vmx flags\t: vnmi preemption_timer

processor\t: 1
vendor_id\t: GenuineIntel
flags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
vmx flags\t: vnmi preemption_timer
"""


def test_bfloat16_flags_come_from_every_processors_flags_line():
    assert precision.cpu_bfloat16_flags(AMX_CPUINFO) == ("amx_bf16", "avx512_bf16")
    # A flag only one processor reports does not count: the threads of one model run on every core.
    one_without_amx = AMX_CPUINFO.replace("amx_bf16 amx_tile", "amx_tile", 1)
    assert precision.cpu_bfloat16_flags(one_without_amx) == ("avx512_bf16",)
    # Only the "flags" line counts, not "vmx flags"; a flag's name must match whole.
    no_bfloat16 = "flags\t\t: fpu avx512f avx512_bf16x\nvmx flags\t: amx_bf16 avx512_bf16\n"
    assert precision.cpu_bfloat16_flags(no_bfloat16) == ()
    assert precision.cpu_bfloat16_flags("") == ()  # no /proc/cpuinfo: not Linux


def test_auto_precision_is_bfloat16_for_text_models_on_a_bfloat16_cpu_and_logs_why(caplog):
    flags = precision.cpu_bfloat16_flags(precision.read_cpuinfo())
    cpu = distribute.get_strategy("cpu")
    with caplog.at_level(logging.INFO, logger="tftune.precision"):
        policies = {modality: precision.precision_policy("auto", cpu, modality) for modality in (TEXT, IMAGE, None)}
    # On the AMX machine the benchmarks ran on, flags == ("amx_bf16", "avx512_bf16"): text is mixed_bfloat16.
    assert policies == {TEXT: "mixed_bfloat16" if flags else "float32", IMAGE: "float32", None: "float32"}
    logged = [record.getMessage() for record in caplog.records if record.getMessage().startswith("tftune precision")]
    assert logged == [
        f"tftune precision: {precision.describe_precision(policies[modality], 'auto', modality)}"
        for modality in (TEXT, IMAGE, None)
    ]
    if flags:
        assert logged[0].startswith(f"tftune precision: mixed_bfloat16 (auto: a text model on a CPU that reports "
                                    f"{', '.join(flags)}: MiniLM trained 1.6x faster")
        assert "an image model (ResNet50V2 measured no faster in bfloat16)" in logged[1]
    else:
        assert "(auto: a CPU without AMX-BF16 / AVX512-BF16" in logged[0]
    assert precision.describe_precision("mixed_bfloat16", "mixed_bfloat16") == (
        "mixed_bfloat16 (precision='mixed_bfloat16')"
    )


@pytest.fixture(scope="module")
def bfloat16_run(tiny_bert_preset, rotten_tomatoes):
    splits = tftune.load_text_splits(rotten_tomatoes, max_examples=48, validation_fraction=0.25, seed=0)
    spec = tftune.ModelSpec("text", tiny_bert_preset, 2, {"sequence_length": 16, "labels": splits.label_names})
    result = tftune.fit(
        spec,
        lambda model: tftune.text_pipelines(splits, model.preprocessor, 8).train,
        lambda model: tftune.text_pipelines(splits, model.preprocessor, 8).validation,
        epochs=1,
        distribution=tftune.DistributionOptions(precision="mixed_bfloat16"),
        optimization=tftune.OptimizerOptions(learning_rate=1e-3),
        tensorboard=False,
        verbose=0,
    )
    return result, splits


@pytest.mark.slow  # a fit, ~10 s on an idle 2-core machine (the fixture, shared)
def test_bfloat16_fit_predicts_float32_probabilities(bfloat16_run):
    result, splits = bfloat16_run
    model = result.model
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert model.backbone.dtype_policy.compute_dtype == "bfloat16"
    assert {weight.dtype for weight in model.weights} == {"float32"}
    probabilities = model.predict(tftune.text_pipelines(splits, model.preprocessor, 8).validation, verbose=0)
    assert probabilities.dtype == np.float32 and probabilities.shape == (12, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_bfloat16_model_saved_model_serves_float32_probabilities(bfloat16_run, tmp_path):
    result, splits = bfloat16_run
    texts = [text.decode("utf-8") for text, _ in splits.validation.take(4).as_numpy_iterator()]
    exported = tftune.export_saved_model(result.model, str(tmp_path), name="reviews", warmup=False, verify=True)
    outputs = exported.signatures["serving_default"]["outputs"]
    assert outputs["probabilities"] == {"dtype": "float32", "shape": [None, 2]}
    served = tftune.load_serving_model(exported.path).predict_probabilities(texts)
    assert served.dtype == np.float32
    # The export computes in float32: the trained weights in a float32 copy of the model.
    in_float32 = tftune.saving.float32_copy(result.model)
    np.testing.assert_allclose(served, in_float32.predict(in_float32.preprocessor(tf.constant(texts)), verbose=0),
                               atol=1e-6)


@pytest.mark.slow
def test_report_states_the_precision_and_why(bfloat16_run, tmp_path):
    result, splits = bfloat16_run
    model = result.model
    validation = tftune.text_pipelines(splits, model.preprocessor, 8).validation
    written = tftune.write_report(tmp_path, model, validation, config={"precision": "mixed_bfloat16"})
    assert written.metrics["precision"] == "mixed_bfloat16 (precision='mixed_bfloat16')"
    with open(written.paths["report_md"], encoding="utf-8") as report_md:
        assert "| precision | mixed_bfloat16 (precision='mixed_bfloat16') |" in report_md.read().splitlines()
    without_config = tftune.write_report(tmp_path, model, validation)
    assert without_config.metrics["precision"] == "mixed_bfloat16 (the model's dtype policy)"
    # The report evaluates the model as it is saved and exported: in float32.
    in_float32 = tftune.evaluate_classifier(tftune.saving.float32_copy(model), validation)
    assert written.metrics["loss"] == in_float32["loss"] != tftune.evaluate_classifier(model, validation)["loss"]
