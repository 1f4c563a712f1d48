"""tftune's log messages on the console: what the CLI shows, and what a script turns on with `show_logs`.

Example:

```python
tftune.show_logs()
```
"""

from __future__ import annotations

import logging
import sys


class _ConsoleHandler(logging.StreamHandler):
    """Log records as plain lines on the current `sys.stderr` (also when it is redirected after setup)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def show_logs(level: int = logging.INFO) -> None:
    """Show tftune's log messages (the "tftune" logger, INFO and up by default) on stderr, as the CLI does.

    A recipe script calls it once at the start; calling it again only changes the level. The messages
    are shown here instead of being passed on to the root logger's handlers (no duplicate lines when a
    library has configured the root logger).

    Example:

    ```python
    tftune.show_logs()  # from here on, tftune's INFO messages and warnings appear on stderr
    ```
    """
    logger = logging.getLogger("tftune")
    logger.setLevel(level)
    logger.propagate = False
    if not any(isinstance(handler, _ConsoleHandler) for handler in logger.handlers):
        logger.addHandler(_ConsoleHandler())
