"""Weight plots: a projection's weight matrix, or its postsynaptic neurons' receptive fields."""

from __future__ import annotations

import math
import os

import numpy as np

from neurosim.log_reader import LogReader
from neurosim.plots.figure import DEFAULT_SIZE, new_figure, save

#: where examples/mnist_stdp.py keeps its final weights (a dense (784, n) matrix)
RESULTS_WEIGHTS = "results/weights"


def load_weights(reader: LogReader, projection: str | None, snapshot: int) -> tuple[str, np.ndarray]:
    """(title, dense weights) from a weight monitor, or the MNIST example's results."""
    monitors = reader.weight_monitors()
    if projection is None and not monitors and reader.has(RESULTS_WEIGHTS):
        return "final weights (results/weights)", reader.array(RESULTS_WEIGHTS)
    if not monitors:
        raise ValueError(f"{reader.path}: the log has no weight snapshots (record them with "
                         "net.weight_monitor(projection, every=...))")
    name = projection or monitors[0]
    if name not in monitors:
        raise KeyError(f"no weight snapshots of {name!r}; recorded: {', '.join(monitors)}")
    step, dense = reader.weight_snapshot(name, snapshot)
    return f"{name} at {step * reader.dt:g} ms", dense


def parse_tiles(text: str) -> tuple[int, int]:
    """``"28x28"`` -> (28, 28)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"tiles must look like 28x28, got {text!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"tiles must be positive, got {text!r}")
    return h, w


#: share of the canvas left to the tile grid (the rest: colour bar, title, margins)
_GRID_SHARE = (0.85, 0.9)


def tile_columns(n: int, h: int, w: int, size: tuple[int, int]) -> int:
    """Columns of the grid of ``n`` tiles of ``h`` x ``w`` that draws the tiles largest
    on a ``size`` canvas (a square grid would leave a wide canvas a third empty)."""
    width, height = size[0] * _GRID_SHARE[0], size[1] * _GRID_SHARE[1]

    def scale(cols: int) -> float:
        rows = math.ceil(n / cols)
        return min(width / (cols * (w + 1) - 1), height / (rows * (h + 1) - 1))
    return max(range(1, n + 1), key=lambda cols: (scale(cols), -cols))


def weights(reader: LogReader, out: str | os.PathLike[str], *, projection: str | None = None,
            snapshot: int = -1, tiles: tuple[int, int] | None = None,
            size: tuple[int, int] = DEFAULT_SIZE) -> str:
    """The weight matrix (presynaptic rows, postsynaptic columns), or with ``tiles=(h, w)``
    each postsynaptic neuron's incoming weights as an h x w image (receptive fields,
    e.g. 28 x 28 for MNIST inputs), in a grid."""
    title, dense = load_weights(reader, projection, snapshot)
    fig, axes = new_figure(size)
    ax = axes[0, 0]
    if tiles is None:
        image = ax.imshow(dense, aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set(xlabel="postsynaptic neuron", ylabel="presynaptic neuron", title=title)
    else:
        h, w = tiles
        if h * w != dense.shape[0]:
            raise ValueError(f"tiles {h}x{w} need {h * w} presynaptic neurons, the projection "
                             f"has {dense.shape[0]}")
        n = dense.shape[1]
        cols = tile_columns(n, h, w, size)
        rows = math.ceil(n / cols)
        grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
        for k in range(n):  # one tile per postsynaptic neuron, a blank line between tiles
            r, c = divmod(k, cols)
            grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = dense[:, k].reshape(h, w)
        image = ax.imshow(grid, interpolation="nearest", cmap="hot_r")
        ax.set_axis_off()
        ax.set_title(f"receptive fields of {n} neurons, {title}")
    fig.colorbar(image, ax=ax, label="weight")
    return save(fig, out)
