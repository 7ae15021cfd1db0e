"""Headless matplotlib figures of a requested pixel size, shared by the plot commands."""

from __future__ import annotations

import os
from typing import Any

#: default figure size in pixels (width, height) and resolution
DEFAULT_SIZE = (1000, 600)
DPI = 100


def new_figure(size_px: tuple[int, int] = DEFAULT_SIZE, nrows: int = 1, ncols: int = 1,
               **subplot_kw: Any) -> tuple[Any, Any]:
    """A figure of exactly ``size_px`` pixels (at :data:`DPI`) and its axes.

    Uses matplotlib's Agg canvas directly, without pyplot's global state, so it
    works without a display and inside other programs' event loops.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size_px
    if width < 100 or height < 100:
        raise ValueError(f"figure size must be at least 100x100 pixels, got {width}x{height}")
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def save(fig: Any, path: str | os.PathLike[str]) -> str:
    """Write ``fig`` as PNG (the size it was created with); returns the path."""
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path!r}: directory {folder!r} does not exist")
    fig.savefig(path, dpi=DPI, format="png")
    return path


def population_colors(names: list[str]) -> dict[str, str]:
    """One colour per population, stable for a given order (matplotlib's tab10 cycle)."""
    palette = ["C0", "C3", "C2", "C1", "C4", "C5", "C6", "C7", "C8", "C9"]
    return {name: palette[k % len(palette)] for k, name in enumerate(names)}
