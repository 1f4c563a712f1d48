"""The `tftune` command line: `tftune info` and the stages of the flow.

Example:

```shell
tftune info
```
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _info(arguments: argparse.Namespace) -> int:
    import keras
    import keras_hub
    import tensorflow as tf

    import tftune

    print(f"tftune      {tftune.__version__}")
    print(f"tensorflow  {tf.__version__}")
    print(f"keras       {keras.__version__} (backend: {keras.backend.backend()})")
    print(f"keras-hub   {keras_hub.__version__}")
    print("devices:")
    for device in tf.config.list_logical_devices():
        print(f"  {device.device_type:4s} {device.name}")
    print("known backbones (or pass a local keras-hub preset / Hugging Face BERT directory):")
    for source, names in tftune.known_backbones().items():
        print(f"  {source}: {', '.join(names)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tftune", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = subcommands.add_parser("info", help="versions, visible devices and known backbones")
    info.set_defaults(run=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tftune` console script."""
    arguments = _parser().parse_args(argv)
    return arguments.run(arguments)


if __name__ == "__main__":
    sys.exit(main())
