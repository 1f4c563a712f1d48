"""Every `tftune train` flag refuses a bad value before any training, naming the flag; config files; a quiet start."""

import argparse
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import _backend, cli

# Flags that take any text (a name or path the data loader or backbone resolver checks), or a switch.
_FREE_FLAGS = {"config", "task", "dataset", "data_dir", "text_key", "label_key", "drop_missing_labels", "verbose"}


def _bad_values(tmp_path) -> dict[str, tuple[str, list[str]]]:
    """flag -> (the task it applies to, the argv of a bad value for it)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    broken_backbone = tmp_path / "broken_bert"
    broken_backbone.mkdir()
    (broken_backbone / "config.json").write_text("{")
    return {
        "validation_fraction": ("text", ["1.5"]),
        "max_examples": ("text", ["2"]),
        "augmentation": ("image", ["blur"]),
        "encoding": ("text", ["klingon"]),
        "backbone": ("text", [str(broken_backbone)]),
        "weights": ("text", [str(a_file)]),
        "sequence_length": ("text", ["100000"]),
        "image_size": ("image", ["100000", "100000"]),
        "pooling": ("text", ["sum"]),
        "tpu": ("text", ["my-tpu", "--strategy", "cpu"]),
        "epochs": ("text", ["0"]),
        "batch_size": ("text", ["0"]),
        "learning_rate": ("text", ["5"]),
        "head_learning_rate": ("text", ["-1"]),
        "class_weight": ("text", ["inverse"]),
        "layer_decay": ("text", ["0"]),
        "schedule": ("text", ["gradual"]),
        "warmup_steps": ("text", ["-1"]),
        "strategy": ("text", ["cluster"]),
        "precision": ("text", ["float8"]),
        "seed": ("text", [str(2**40)]),
        "lora_rank": ("text", ["0"]),
        "lora_alpha": ("text", ["-1", "--lora-rank", "8"]),
        "output_dir": ("text", [str(a_file)]),
        "export_dir": ("text", [str(a_file)]),
        "model_name": ("text", ["my model/v2"]),
    }


def _train_error(capsys, argv, log: list | None = None) -> str:
    """The one error line of a `tftune train` that must fail before training (its other stderr lines into `log`).

    Without a `--dataset`, the data is a missing file: should a check let the run through, it stops at reading
    the data (and this test fails on the message) instead of training.
    """
    if "--dataset" not in argv:
        argv = [*argv, "--dataset", os.path.join("no_such_folder", "no_such_data.csv")]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *argv])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("tftune train: error: ")]
    assert len(errors) == 1 and "Traceback" not in captured.err and "Epoch " not in captured.out, captured
    if log is not None:
        log.extend(line for line in captured.err.splitlines() if line not in errors)
    return errors[0]


def test_every_flag_with_a_bad_value_fails_before_training_naming_the_flag(tmp_path, capsys):
    bad_values = _bad_values(tmp_path)
    parser = argparse.ArgumentParser()
    cli.add_recipe_arguments(parser, task_flag=True)
    every_flag = set(vars(parser.parse_args([]))) | {"verbose"}
    # A new flag needs a case here (or a place among the free ones).
    assert set(bad_values) | _FREE_FLAGS == every_flag
    run = tmp_path / "run"
    for key, (task, value) in bad_values.items():
        flag = "--" + key.replace("_", "-")
        output = [] if key == "output_dir" else ["--output-dir", str(run)]
        line = _train_error(capsys, ["--task", task, flag, *value, *output])
        assert f"error: {flag} " in line, line
        assert not re.search(rf"(?<![\w-]){key}(=| must)", line), line  # the Python keyword is not shown
        assert not run.exists()  # refused before the run wrote anything


def test_several_bad_flags_are_reported_together(capsys):
    line = _train_error(
        capsys,
        ["--task", "text", "--epochs", "0", "--sequence-length", "100000", "--encoding", "klingon",
         "--seed", str(2**40)],
    )
    assert line == (
        "tftune train: error: 4 invalid options: - --epochs must be an integer >= 1; got 0. - --sequence-length "
        "must be an integer in [1, 8192]; got 100000. - --encoding must be a Python codec name such as 'utf-8', "
        "'latin-1' or 'cp1252'; got 'klingon'. - --seed must be an integer in [0, 4294967295]; got 1099511627776."
    )


@pytest.mark.parametrize(
    "task, flags, flag, owner",
    [
        ("text", ["--image-size", "64", "64"], "--image-size", "image"),
        ("text", ["--augmentation", "flip"], "--augmentation", "image"),
        ("image", ["--pooling", "mean"], "--pooling", "text"),
        ("image", ["--sequence-length", "32"], "--sequence-length", "text"),
        ("image", ["--encoding", "latin-1"], "--encoding", "text"),
    ],
)
def test_a_flag_of_the_other_task_is_refused(capsys, task, flags, flag, owner):
    line = _train_error(capsys, ["--task", task, *flags])
    assert line == f"tftune train: error: {flag} applies to {owner} tasks only, and the task is {task!r}: remove it."


def test_config_file_key_given_twice_is_refused_naming_key_and_lines(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: text\nepochs: 1\nbatch_size: 8\nepochs: 2\n")
    with pytest.raises(ValueError) as error:
        cli.parse_recipe_args(None, ["--config", str(path)])
    assert str(error.value) == (
        f"Config file {str(path)!r} is not valid YAML: line 4, column 1 ('<here>epochs: 2'): "
        f"key 'epochs' appears twice, on lines 2 and 4: keep one."
    )


def test_config_file_reads_numbers_written_without_a_dot(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 5e-5\nhead_learning_rate: 1E-2\nlayer_decay: 0.5\nepochs: 2\n")
    config = cli.parse_recipe_args("text", ["--config", str(path)])
    assert (config.learning_rate, config.head_learning_rate, config.layer_decay) == (5e-5, 1e-2, 0.5)
    assert config.epochs == 2 and isinstance(config.epochs, int)


def test_python_keywords_in_messages_become_the_commands_flags():
    train = argparse.Namespace(command="train", label_key=None, seed=None, batch_size=None, tpu=None, strategy=None)
    assert cli.flag_names(
        "label_key='grade' is not a column of 'train.csv'; pass label_key=... or name=... (seed must be >= 0)", train
    ) == (
        "--label-key 'grade' is not a column of 'train.csv'; pass --label-key ... or --model-name ... "
        "(--seed must be >= 0)"
    )
    # Plain words stay words; quoted text (paths, file lines) is the user's own.
    assert cli.flag_names("the seed of two epochs in 'my_data/label_key.csv'", train) == (
        "the seed of two epochs in 'my_data/label_key.csv'"
    )
    export = argparse.Namespace(command="export", name=None, overwrite=False, base_dir=None)
    assert cli.flag_names("exists; pass overwrite=True to replace it, or name='other'", export) == (
        "exists; pass --overwrite to replace it, or --name 'other'"
    )


def test_a_batch_larger_than_the_training_set_is_refused_before_the_model_is_built(tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f"review {index},{('bad', 'good')[index % 2]}\n" for index in range(22)))
    log = []
    line = _train_error(
        capsys,
        ["--task", "text", "--dataset", str(data), "--batch-size", "64", "--epochs", "1",
         "--output-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "saved_models")],
        log,
    )
    assert line == (
        "tftune train: error: --schedule 'head_first' unfreezes the backbone after step 1, but 1 epoch(s) of 20 "
        "training examples at a global batch of 64 are 1 step(s): the backbone would never train. Lower "
        "--batch-size (to at most 10), raise epochs, or use --schedule 'all' or 'head_only'."
    )
    assert not (tmp_path / "run" / "checkpoints").exists()  # no fit started
    # This machine has no GPU: the run log says so in one line, before the data is read.
    assert f"No GPU or TPU found: training on the CPU ({os.cpu_count()} core(s))." in log
    assert "The global batch (64) is larger than the 20 training examples: each epoch is one step of 20." in log


def _tftune(*argv: str) -> subprocess.CompletedProcess:
    """`tftune ARGV...` in a fresh process (TensorFlow not yet loaded), without the user's logging settings."""
    environment = {
        key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", _backend.VERBOSE_ENV)
    }
    environment["PYTHONPATH"] = os.pathsep.join(sys.path)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from tftune.cli import main; sys.exit(main())", *argv],
        env=environment, capture_output=True, text=True, timeout=300,
    )


def test_tftune_help_prints_no_tensorflow_start_up_lines():
    done = _tftune("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: tftune"), done
    # Without the redirect TensorFlow 2.21 writes absl's "All log messages before absl::InitializeLog()", oneDNN,
    # "Could not find cuda drivers", cpu_feature_guard and "failed call to cuInit" lines here.
    assert done.stderr == "", done.stderr


@pytest.mark.slow
def test_verbose_prints_what_tensorflow_logged_while_loading():
    done = _tftune("info", "--verbose")
    assert done.returncode == 0, done.stderr
    assert "All log messages before absl::InitializeLog() is called" in done.stderr
    assert "failed call to cuInit" in done.stderr  # the CUDA probe of this GPU-less machine, kept for --verbose


@pytest.mark.slow
def test_evaluate_and_predict_name_a_saved_model_copied_without_its_variables(small_resnet_preset, tmp_path, capsys):
    model = tftune.build_image_classifier(small_resnet_preset, 2, image_size=(32, 32), weights=None, labels=["a", "b"])
    exported = tftune.export_saved_model(model, str(tmp_path / "saved_models"), name="pets", warmup=False, verify=False)
    shutil.rmtree(os.path.join(exported.path, "variables"))
    image = tmp_path / "cat.png"
    image.write_bytes(tf.io.encode_png(np.zeros((32, 32, 3), "uint8")).numpy())
    expected = (
        f"The SavedModel {exported.path!r} is incomplete: it lacks variables/variables.index, "
        f"variables/variables.data-* (copied without its variables/ or assets/ folder, or the copy was cut short). "
        f"Copy the whole version directory again, or re-export it with `tftune export MODEL.keras`."
    )
    for argv in (["predict", exported.path, str(image)], ["evaluate", exported.path, "mnist_digits"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert capsys.readouterr().err.splitlines()[-1] == f"tftune {argv[0]}: error: {expected}"


def test_evaluate_refuses_an_output_dir_that_is_a_file_before_loading_anything(tmp_path, capsys):
    a_file = tmp_path / "report"
    a_file.write_text("")
    with pytest.raises(SystemExit):
        cli.main(["evaluate", str(tmp_path / "missing.keras"), "mnist_digits", "--output-dir", str(a_file)])
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tftune evaluate: error: --output-dir {str(a_file)!r} is a file; pass a directory (a new or an existing one)."
    )


def test_lora_flags_reach_the_config_and_its_learning_rate():
    config = cli.parse_recipe_args("text", ["--lora-rank", "8", "--lora-alpha", "16"])
    assert (config.lora_rank, config.lora_alpha, config.resolved_learning_rate()) == (8, 16, tftune.lora.LEARNING_RATE)
    config = cli.parse_recipe_args("text", ["--lora-rank", "8", "--learning-rate", "1e-4"])
    assert config.resolved_learning_rate() == 1e-4
