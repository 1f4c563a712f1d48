import pytest

from tftune import cli


def test_info_prints_versions_devices_and_backbones(capsys):
    assert cli.main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "keras       3.15" in printed and "backend: tensorflow" in printed
    assert "/device:CPU:0" in printed
    assert "resnet50v2" in printed and "bert_base_en_uncased" in printed


def test_unknown_subcommand_is_rejected(capsys):
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_export_then_predict_like_a_client(small_resnet_preset, tmp_path, capsys):
    import numpy as np
    import tensorflow as tf

    import tftune

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
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", str(tmp_path / "missing.keras"), "--base-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "missing.keras" in capsys.readouterr().err


def test_evaluate_a_saved_model_on_a_csv_file(small_resnet_preset, bert_dir, tmp_path, capsys):
    import json

    import tftune

    model = tftune.build_text_classifier(bert_dir, 2, sequence_length=16, labels=["rotten", "fresh"])
    model_path = str(tmp_path / "reviews.keras")
    model.save(model_path)
    rows = ["text,label"] + [f"review number {index} was {'great' if index % 2 else 'awful'},{'fresh' if index % 2 else 'rotten'}" for index in range(20)]
    data_path = tmp_path / "reviews.csv"
    data_path.write_text("\n".join(rows) + "\n")
    assert cli.main(["evaluate", model_path, str(data_path), "--output-dir", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert f"accuracy {metrics['accuracy']:.4f}" in printed
    assert 0 <= metrics["accuracy"] <= 1 and metrics["examples"] == 20  # a file is evaluated whole
    assert sorted(metrics["per_class"]) == ["fresh", "rotten"]
