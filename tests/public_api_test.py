"""The public API is deliberate: `tftune.__all__` is the README's list, group by group, and every name exists."""

import inspect
import pathlib
import re

import tftune

_README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _readme_groups() -> dict[str, list[str]]:
    text = _README.read_text(encoding="utf-8")
    section = text[text.index("## Public API") :]
    section = section[: section.index("\n## ", 1)]
    return {
        match.group(1): re.findall(r"`([^`]+)`", match.group(2))
        for match in re.finditer(r"^- \*\*(.+?):\*\* (.+)$", section, re.MULTILINE)
    }


def test_readme_lists_exactly_the_public_api_by_group():
    assert _readme_groups() == tftune.API


def test_every_public_name_exists_once_and_workarounds_are_not_top_level():
    assert len(tftune.__all__) == len(set(tftune.__all__))
    assert all(hasattr(tftune, name) for name in tftune.__all__)
    imported = {
        name for name, value in vars(tftune).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name not in ("API", "ensure_tensorflow_backend")
    }
    message = "a name imported into tftune but not in tftune.API (or the reverse)"
    assert imported == set(tftune.__all__) - {"families"}, message
    for workaround in ("AllReplicasLossScaleOptimizer", "use_all_replicas_loss_scaling", "route_group_optimizers"):
        assert workaround not in tftune.__all__ and not hasattr(tftune, workaround)
