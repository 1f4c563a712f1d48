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
