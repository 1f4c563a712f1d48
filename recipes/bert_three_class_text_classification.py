"""Fine-tune BERT on 3 classes (Rotten Tomatoes fresh / rotten / plot): nothing in tftune is binary-only.

This is `bert_text_classification.py --variant three_class`: every step (data, build, gradual
unfreezing, fit, report, save, export) is written out in that script beside this one, and every
flag of it works here too.

    python recipes/bert_three_class_text_classification.py --epochs 4 --output-dir runs/3class
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the recipes folder, also when imported from a file
import bert_text_classification  # noqa: E402


def main(argv=None) -> None:
    bert_text_classification.main(["--variant", "three_class", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
