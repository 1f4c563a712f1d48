"""Fine-tune BERT on a 3-class task (Rotten Tomatoes fresh / rotten / plot): nothing in tftune is binary-only.

    python recipes/bert_three_class_text_classification.py
"""

import sys

from tftune.recipe import parse_recipe_args, run_recipe


def main(argv=None) -> None:
    config = parse_recipe_args("text", ["--dataset", "rotten_tomatoes_3class", *(argv or [])], description=__doc__.splitlines()[0])
    run_recipe(config)


if __name__ == "__main__":
    main(sys.argv[1:])
