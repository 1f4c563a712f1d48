"""Matplotlib for tftune's PNGs (the report's curves, the learning-rate finder's sweep), without a screen."""

from __future__ import annotations


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (imported on first use: matplotlib is only needed for PNGs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot
