"""The `tftune` command line (`tftune.cli.main` is the `tftune` console script), one module per job.

- `entry_point`: the parser of every command, `main`, and one-line errors that
  name the flags (`flag_names`).
- `arguments`: the recipe flags of `tftune train` / `tftune lr-find`, merged
  with their `--config` file into a `RecipeConfig` (`parse_recipe_args`).
- `config_file`: reading that YAML or JSON file.
- `commands`: what each command runs (info, train, lr-find, evaluate, export, predict).
"""

from tftune.cli.arguments import add_recipe_arguments, config_from_arguments, parse_recipe_args
from tftune.cli.entry_point import flag_names, main

__all__ = [
    "add_recipe_arguments",
    "config_from_arguments",
    "flag_names",
    "main",
    "parse_recipe_args",
]
