"""Headless matplotlib figures of a requested pixel size, shared by the plot commands."""

from __future__ import annotations

import os
from typing import Any

#: default figure size in pixels (width, height) and resolution
DEFAULT_SIZE = (1000, 600)
DPI = 100
#: windows ending later than this are drawn in seconds: ms ticks of a long run
#: (1,000,000 ms and up) would get a "1e6" offset and unreadable labels
SECONDS_AFTER_MS = 10_000.0


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


def time_axis(ax: Any, start_ms: float, stop_ms: float) -> float:
    """Label ``ax``'s x axis in ms, or in s for windows ending after
    :data:`SECONDS_AFTER_MS`, with plain tick labels (never an offset such as "+1e6");
    returns the factor to multiply times in ms by."""
    scale, unit = (1e-3, "s") if stop_ms > SECONDS_AFTER_MS else (1.0, "ms")
    if stop_ms > start_ms:
        ax.set_xlim(start_ms * scale, stop_ms * scale)
    ax.set_xlabel(f"time ({unit})")
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    return scale
