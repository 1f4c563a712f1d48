"""The `tftune` command line, in-process (`cli.main`) and as a subprocess.

Train -> evaluate -> export -> predict, and errors.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

import tftune
from tftune import cli

DIGITS = [str(digit) for digit in range(10)]


def _error_line(capsys, argv) -> str:
    """Run the CLI expecting a user error; return its single stderr line (exit status 2, no traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith(f"tftune {argv[0]}: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_info_prints_versions_devices_and_backbones(capsys):
    assert cli.main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "keras       3.15" in printed and "backend: tensorflow" in printed
    assert "/device:CPU:0" in printed
    assert "resnet50v2" in printed and "bert_base_en_uncased" in printed
    for family in tftune.families.FAMILIES:  # every family, its forms, LoRA targets and limits
        assert f"  {family.title} ({family.name}, {family.modality.name})" in printed
        assert all(f"limit: {limit}" in printed for limit in family.limits)
    assert "LoRA targets: none (LoRA refused)" in printed and "TF Serving >= 2.21" in printed


def test_info_on_a_spec_prints_its_family_and_layer_groups(tiny_bert_preset, capsys):
    assert cli.main(["info", tiny_bert_preset]) == 0
    printed = capsys.readouterr().out
    assert "  BERT (bert, text)" in printed and "ResNet" not in printed
    assert "  encoder_0 " in printed and "  pooler " in printed


def test_unknown_subcommand_is_rejected(capsys):
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_config_file_and_flags_give_the_same_config(tmp_path):
    options = {"epochs": 2, "batch_size": 8, "schedule": "0:0,1:all", "layer_decay": 0.5, "image_size": [48, 40]}
    yaml_path, json_path = tmp_path / "run.yaml", tmp_path / "run.json"
    yaml_path.write_text(yaml.safe_dump({"task": "image", **options}))
    json_path.write_text(json.dumps({"task": "image", **options}))
    flags = [
        "--epochs", "2", "--batch-size", "8", "--schedule", "0:0,1:all",
        "--layer-decay", "0.5", "--image-size", "48", "40",
    ]
    from_flags = cli.parse_recipe_args("image", flags)
    assert cli.parse_recipe_args("image", ["--config", str(yaml_path)]) == from_flags
    assert cli.parse_recipe_args(None, ["--config", str(json_path)]) == from_flags
    assert from_flags.image_size == (48, 40) and from_flags.dataset == "mnist_digits"
    # Flags override the file.
    assert cli.parse_recipe_args("image", ["--config", str(yaml_path), "--epochs", "5"]).epochs == 5
    # An explicit None (flag `none`, YAML null) overrides a task default instead of being dropped.
    null_path = tmp_path / "null.yaml"
    null_path.write_text("weights: null\nmax_examples: null\n")
    from_null = cli.parse_recipe_args("text", ["--config", str(null_path)])
    assert from_null.weights is None and from_null.max_examples is None
    assert cli.parse_recipe_args("text", ["--weights", "none"]).weights is None


def test_config_file_with_an_unknown_option_is_reported_with_the_bad_values(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: text\nepoch: 3\nbatch_size: 0\n")
    with pytest.raises(
        ValueError, match=r"2 invalid options:\n  - Unknown recipe options \['epoch'\].*\n  - batch_size"
    ):
        cli.parse_recipe_args(None, ["--config", str(path)])


def test_every_bad_flag_is_reported_in_one_line(capsys):
    line = _error_line(
        capsys,
        ["train", "--task", "text", "--learning-rate", "5", "--validation-fraction", "1.5", "--sequence-length", "0",
         "--precision", "float8", "--epochs", "two"],
    )
    assert line.startswith("tftune train: error: 5 invalid options:")
    for expected in (
        "--learning-rate must be a number in (0, 1); got 5.",
        "--validation-fraction must be a number in (0, 1); got 1.5.",
        "--sequence-length must be an integer in [1, 8192]; got 0.",
        "--precision must be one of 'auto', 'float32', 'mixed_float16', 'mixed_bfloat16'; got 'float8'.",
        "--epochs must be an integer >= 1; got 'two'.",
    ):
        assert expected in line


@pytest.mark.parametrize(
    "text, problem",
    [
        # The parser stops on line 3; the list it was reading opened on line 2: both are named, each line quoted
        # with <here> where the parser points.
        (
            "task: text\nepochs: [3\nbatch_size: 8\n",
            "line 3, column 11 ('batch_size<here>: 8'): expected ',' or ']', but got ':', while parsing a flow "
            "sequence at line 2, column 9 ('epochs: <here>[3')",
        ),
        (
            "task: text\nlearning_rate 5e-5\nepochs: 2\n",
            "line 3, column 1 ('<here>epochs: 2'): could not find expected ':', while scanning a simple key at "
            "line 2, column 1 ('<here>learning_rate 5e-5')",
        ),
        ("task: text\n  epochs: 3\n", "line 2, column 9 ('epochs<here>: 3'): mapping values are not allowed here"),
        (
            "task: text\n\tepochs: 3\n",
            "line 2, column 1 ('<here>\\tepochs: 3'): found character '\\t' that cannot start any token",
        ),
    ],
)
def test_malformed_yaml_is_one_line_with_file_line_column_and_the_line(tmp_path, capsys, text, problem):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    line = _error_line(capsys, ["train", "--config", str(path)])
    assert line == f"tftune train: error: Config file {str(path)!r} is not valid YAML: {problem}."


def test_malformed_json_is_one_line_with_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text('{"task": "text",\n "epochs": 3,,\n}')
    line = _error_line(capsys, ["train", "--config", str(path)])
    assert line == (
        f"tftune train: error: Config file {str(path)!r} is not valid JSON: line 2, column 14: "
        f"Expecting property name enclosed in double quotes."
    )


def _broken_bert(bert_dir, directory, *, drop=None, corrupt_weights=False) -> str:
    """A copy of the offline MiniLM folder (symlinked files) without `drop`, or with a truncated model.safetensors."""
    os.makedirs(directory)
    for name in os.listdir(bert_dir):
        source, target = os.path.join(bert_dir, name), os.path.join(directory, name)
        if name == drop:
            continue
        if name == "model.safetensors" and corrupt_weights:
            with open(source, "rb") as weights:
                open(target, "wb").write(weights.read(4096))
        else:
            os.symlink(source, target)
    return str(directory)


@pytest.mark.parametrize(
    "breakage, expected",
    [
        ("unknown", "Unknown --backbone 'no_such_bert'"),
        ("config.json", "is not a backbone tftune can load"),
        ("vocab.txt", "lacks ['vocab.txt']"),
        ("corrupt", "model.safetensors"),
    ],
)
def test_unusable_backbones_are_one_line_errors(bert_dir, tmp_path, capsys, breakage, expected):
    if breakage == "unknown":
        backbone = "no_such_bert"
    else:
        backbone = _broken_bert(
            bert_dir, tmp_path / "bert", drop=None if breakage == "corrupt" else breakage,
            corrupt_weights=breakage == "corrupt",
        )
    line = _error_line(
        capsys,
        ["train", "--task", "text", "--backbone", backbone, "--max-examples", "20", "--sequence-length", "16",
         "--epochs", "1", "--schedule", "all", "--output-dir", str(tmp_path / "run"),
         "--export-dir", str(tmp_path / "saved_models")],
    )
    assert line.startswith("tftune train: error: ") and expected in line
    assert not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.slow
def test_export_then_predict_like_a_client(small_resnet_preset, tmp_path, capsys):
    model = tftune.build_image_classifier(small_resnet_preset, 3, image_size=(32, 32), labels=["ant", "bee", "cat"])
    model_path = str(tmp_path / "insects.keras")
    model.save(model_path)
    base_dir = str(tmp_path / "saved_models")
    assert cli.main(["export", model_path, "--base-dir", base_dir, "--name", "insects", "--no-verify"]) == 0
    printed = capsys.readouterr().out
    assert "tftune predict" in printed and "tensorflow/serving" in printed
    assert (tmp_path / "saved_models" / "insects" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "saved_models" / "models.config").is_file()

    image = np.random.RandomState(0).randint(0, 255, (40, 40, 3), dtype="uint8")
    image_path = tmp_path / "photo.png"
    image_path.write_bytes(tf.io.encode_png(image).numpy())
    assert cli.main(["predict", f"{base_dir}/insects", str(image_path)]) == 0
    label, probability, shown_input = capsys.readouterr().out.strip().split("\t")
    expected = model.predict(image[None].astype("float32"), verbose=0)[0]
    assert label == model.labels[int(expected.argmax())]
    assert abs(float(probability) - float(expected.max())) < 1e-3
    assert shown_input == str(image_path)


def test_export_of_a_missing_model_exits_with_the_reason(tmp_path, capsys):
    line = _error_line(capsys, ["export", str(tmp_path / "missing.keras"), "--base-dir", str(tmp_path)])
    assert "missing.keras" in line


def test_evaluate_of_something_that_is_no_model_names_what_it_takes(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a model")
    line = _error_line(capsys, ["evaluate", str(tmp_path / "notes.txt"), "rotten_tomatoes"])
    assert "is not a '.keras' file" in line


def _write_reviews(path, reviews) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write("text,label\n")
        for text, label in reviews:
            file.write('"{}",{}\n'.format(text.replace('"', '""'), label))


def _held_out_reviews(tmp_path, train_size=400, test_size=200):
    """Disjoint train / test CSV files of real Rotten Tomatoes snippets (fresh / rotten)."""
    demo = tftune.load_rotten_tomatoes("binary")
    order = np.random.RandomState(0).permutation(len(demo))
    rows = [(demo.texts[index], demo.label_names[demo.labels[index]]) for index in order]
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    _write_reviews(train_path, rows[:train_size])
    _write_reviews(test_path, rows[train_size:train_size + test_size])
    return str(train_path), str(test_path)


def _metrics(directory) -> dict:
    return json.loads((directory / "metrics.json").read_text())


@pytest.mark.slow
def test_text_train_then_evaluate_a_held_out_file_and_the_export(tiny_bert_dir, tmp_path, capsys):
    """Plumbing on MiniLM's 1-layer random twin: what a run prints and leaves, and the export evaluates like Keras.

    Learning through the CLI is checked by the image run below (held-out digits); transfer from the real MiniLM by
    tests/unfreeze_test.py.
    """
    train_path, test_path = _held_out_reviews(tmp_path)
    run, saved_models = tmp_path / "run", tmp_path / "saved_models"
    assert cli.main(
        ["train", "--task", "text", "--backbone", tiny_bert_dir, "--dataset", train_path, "--sequence-length", "16",
         "--epochs", "2", "--schedule", "all", "--learning-rate", "1e-3", "--batch-size", "16",
         "--output-dir", str(run), "--export-dir", str(saved_models), "--model-name", "reviews"]
    ) == 0
    trained = capsys.readouterr()
    logged = trained.err.strip().splitlines()
    # stdout is no terminal here: the fit prints one line per epoch (Keras verbose=2), no per-step progress bar.
    fit_output = trained.out[: trained.out.rindex(" - val_loss: ")]
    assert "\r" not in fit_output and "━" not in fit_output, fit_output
    assert len([line for line in trained.out.splitlines() if " - loss: " in line]) == 2, trained.out
    model_path = str(run / "model.keras")
    # The printout ends with the exact next commands.
    assert logged[-3:] == [
        f"tftune evaluate {model_path} test.csv --output-dir {run / 'evaluation'}",
        f"tftune export {model_path} --base-dir {saved_models} --name reviews",
        f"tftune predict {saved_models / 'reviews'} 'a fine film'",
    ]
    model = keras.models.load_model(model_path)
    assert isinstance(model, tftune.TextClassifier) and model.labels == ["fresh", "rotten"]

    assert cli.main(["evaluate", model_path, test_path, "--output-dir", str(tmp_path / "test")]) == 0
    printed = capsys.readouterr().out
    test_metrics = _metrics(tmp_path / "test")
    assert test_metrics["examples"] == 200 and sorted(test_metrics["per_class"]) == ["fresh", "rotten"]
    assert f"accuracy {test_metrics['accuracy']:.4f}  majority-class baseline" in printed
    for name in ("report.md", "curves.png", "confusion_matrix.png"):
        assert (tmp_path / "test" / name).stat().st_size > 0

    # The exported SavedModel evaluates the same way.
    served_dir = str(tmp_path / "served")
    assert cli.main(["evaluate", str(saved_models / "reviews"), test_path, "--output-dir", served_dir]) == 0
    served = _metrics(tmp_path / "served")
    assert served["examples"] == 200 and served["confusion_matrix"] == test_metrics["confusion_matrix"]
    assert served["loss"] == pytest.approx(test_metrics["loss"], abs=1e-4)


def _write_digit_folder(root, images, labels) -> str:
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        os.makedirs(root / DIGITS[label], exist_ok=True)
        (root / DIGITS[label] / f"{index}.png").write_bytes(tf.io.encode_png(image.astype("uint8")).numpy())
    return str(root)


def test_evaluate_warns_when_a_model_does_not_beat_the_majority_class(small_resnet_preset, tmp_path, capsys):
    model = tftune.build_image_classifier(small_resnet_preset, 2, image_size=(32, 32), labels=["common", "rare"])
    kernel, bias = model.get_layer("probabilities").get_weights()
    model.get_layer("probabilities").set_weights([np.zeros_like(kernel), np.array([0.0, 5.0], "float32")])
    model_path = str(tmp_path / "always_rare.keras")
    model.save(model_path)
    images = np.random.RandomState(0).randint(0, 255, (20, 32, 32, 3))
    folder = tmp_path / "imbalanced"
    for index, image in enumerate(images):
        label = "rare" if index < 2 else "common"
        os.makedirs(folder / label, exist_ok=True)
        (folder / label / f"{index}.png").write_bytes(tf.io.encode_png(image.astype("uint8")).numpy())
    assert cli.main(["evaluate", model_path, str(folder), "--output-dir", str(tmp_path / "report")]) == 0
    captured = capsys.readouterr()
    assert "accuracy 0.1000  majority-class baseline 0.9000 (always 'common')" in captured.out
    assert "recall  common 0.000  rare 1.000" in captured.out
    assert "not better than always answering the majority class 'common' (0.900)" in captured.err
    assert "class 'common' has recall 0.000 (below 0.2): the model finds 0 of its 18 examples" in captured.err
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert markdown.count("> **Warning:**") == 2
    assert "| majority-class baseline accuracy (always 'common') | 0.9000 |" in markdown


def _epoch_lines(output: str) -> list[str]:
    return [" ".join(line.split()[:2]) for line in output.splitlines() if line.startswith("Epoch ")]


@pytest.mark.slow
def test_image_train_killed_mid_epoch_resumes_in_its_epoch_and_stage_then_evaluates_held_out_data(
    small_resnet_preset, tmp_path, capsys
):
    digits = tftune.load_mnist_digits()
    order = np.random.RandomState(0).permutation(len(digits))
    train_dir = _write_digit_folder(tmp_path / "train", digits.images[order[:400]], digits.labels[order[:400]])
    test_dir = _write_digit_folder(tmp_path / "test", digits.images[order[400:600]], digits.labels[order[400:600]])
    config_path = tmp_path / "digits.yaml"
    config_path.write_text(
        yaml.safe_dump({"task": "image", "dataset": train_dir, "backbone": small_resnet_preset, "epochs": 3,
                        "batch_size": 16, "schedule": "0:1,1:3,2:all"})
    )
    run, saved_models = tmp_path / "run", tmp_path / "saved_models"
    command = [
        sys.executable, "-c", "import sys; from tftune.cli import main; sys.exit(main())", "train",
        "--config", str(config_path), "--output-dir", str(run), "--export-dir", str(saved_models),
        "--model-name", "digits",
    ]
    environment = {
        **os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"
    }
    first_log = tmp_path / "first_run.log"
    with open(first_log, "w") as output:
        killed = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    # Epoch 2 began (the log has one line per epoch: stdout is a file); 1 s later it is mid-epoch (of 23 steps).
    while "Epoch 2/3" not in first_log.read_text():
        assert time.time() < deadline and killed.poll() is None, "the training process never reached epoch 2"
        time.sleep(0.05)
    time.sleep(1)
    assert killed.poll() is None and "Epoch 3/3" not in first_log.read_text()
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    first_output = first_log.read_text()
    assert _epoch_lines(first_output) == ["Epoch 1/3", "Epoch 2/3"]
    assert (run / "checkpoints" / "backup").is_dir()
    assert not (run / "model.keras").exists() and not saved_models.exists()

    resumed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _epoch_lines(resumed.stdout) == ["Epoch 2/3", "Epoch 3/3"]  # not restarted from epoch 1
    # ... and it says so, in one line: the epoch and the unfreezing stage ("0:1,1:3,2:all": stage 2 of 3).
    assert f"Resuming from epoch 2 of 3, stage 2 of 3 (head, stage_4, stage_3, stage_2 trainable): restored from " \
           f"{run / 'checkpoints' / 'backup'}" in resumed.stderr.splitlines(), resumed.stderr
    assert resumed.stderr.strip().splitlines()[-1] == f"tftune predict {saved_models / 'digits'} image.jpg"
    metrics = _metrics(run)
    trainable = metrics["history"]["trainable_params"]
    # Epoch 2 ran in its own stage (3 top groups), between epoch 1's (1 group) and everything.
    assert len(trainable) == 3 and trainable[0] < trainable[1] < trainable[2]
    assert len(metrics["history"]["val_accuracy"]) == 3 and None not in metrics["history"]["val_loss"]
    assert [stage["first_epoch"] for stage in metrics["stages"]] == [0, 1, 2]
    assert not (run / "checkpoints" / "backup").exists()  # removed once the fit finished
    assert os.listdir(saved_models / "digits") == ["1"]
    assert keras.models.load_model(run / "model.keras").labels == DIGITS

    # The resumed run's model, evaluated on held-out digits, from the run directory and as the export.
    assert cli.main(["evaluate", str(run), test_dir, "--output-dir", str(tmp_path / "test_report")]) == 0
    tested = _metrics(tmp_path / "test_report")
    assert tested["examples"] == 200 and sorted(tested["per_class"]) == DIGITS
    assert tested["accuracy"] > 0.35  # ten classes: chance 0.1; measured 0.505, so a model that did not train fails
    served_dir = str(tmp_path / "served")
    assert cli.main(["evaluate", str(saved_models / "digits" / "1"), test_dir, "--output-dir", served_dir]) == 0
    served = _metrics(tmp_path / "served")
    assert served["examples"] == 200
    # Serving resizes and rounds the decoded pixels as the training pipeline does: the same predictions.
    assert served["confusion_matrix"] == tested["confusion_matrix"]
    assert served["loss"] == pytest.approx(tested["loss"], abs=1e-4)


def test_transfer_options_from_flags_and_config_file(tmp_path):
    flags = ["--pooling", "max", "--head-learning-rate", "3e-3", "--class-weight", "balanced",
             "--encoding", "latin-1", "--drop-missing-labels"]
    config = cli.parse_recipe_args("text", flags)
    assert (config.pooling, config.head_learning_rate, config.class_weight, config.encoding,
            config.drop_missing_labels) == ("max", 3e-3, "balanced", "latin-1", True)
    path = tmp_path / "run.yaml"
    path.write_text("pooling: max\nhead_learning_rate: 3.0e-3\nclass_weight: balanced\nencoding: latin-1\n"
                    "drop_missing_labels: true\n")
    assert cli.parse_recipe_args("text", ["--config", str(path)]) == config
    # Defaults: the checkpoint's pooling, a head-sized rate while the backbone is frozen, no class weights.
    default = cli.parse_recipe_args("text", [])
    assert (default.pooling, default.head_learning_rate, default.class_weight) == (None, 1e-2, None)
    assert cli.parse_recipe_args("text", ["--head-learning-rate", "none"]).head_learning_rate is None
    # BatchNorm stays in inference mode for pretrained image weights only.
    assert cli.parse_recipe_args("image", []).resolved_keep_batchnorm_frozen() is False
    assert cli.parse_recipe_args("image", ["--weights", "pretrained"]).resolved_keep_batchnorm_frozen() is True


def test_bad_transfer_options_are_one_line(capsys):
    line = _error_line(capsys, ["train", "--task", "text", "--pooling", "sum", "--class-weight", "inverse",
                                "--head-learning-rate", "-1"])
    assert "3 invalid options" in line
    assert "--pooling must be one of None, 'cls', 'mean', 'max'; got 'sum'" in line
    assert "--class-weight must be 'balanced', a dict {class index or label name: weight} or None; got 'inverse'" in (
        line
    )
    assert "--head-learning-rate must be a number in (0, 1); got -1" in line


@pytest.mark.slow
def test_lr_find_sweeps_the_head_and_leaves_a_plot_and_a_suggestion(small_resnet_preset, tmp_path, capsys):
    digits = tftune.load_mnist_digits()
    every_class = np.arange(0, 5000, 80)  # the file is sorted by digit
    folder = _write_digit_folder(tmp_path / "digits", digits.images[every_class], digits.labels[every_class])
    output = tmp_path / "sweep"
    assert cli.main(["lr-find", "--task", "image", "--dataset", folder, "--backbone", small_resnet_preset,
                     "--weights", "none", "--output-dir", str(output), "--steps", "12", "--batch-size", "8"]) == 0
    printed = capsys.readouterr().out
    suggestion = re.search(r"Train with: --head-learning-rate (\S+)", printed)
    assert suggestion and 1e-7 <= float(suggestion.group(1)) <= 1.0, printed
    assert (output / "lr_find_head.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
