"""The learning curve of a training run and its readout's activity, from the run's log.

What a training example writes beside the engine's records (``examples/mnist_three_factor.py``):
``results/train_accuracy`` (the running training accuracy) with
``results/train_samples_seen`` (samples trained on at each point), and
``results/epochs/test_accuracy`` (one value per epoch); the ``results`` group's
attributes name the ``readout`` population, its ``classes`` (neurons in class blocks),
the ``steps`` of one presentation and ``train_samples``. The readout's spikes come from
the sampled presentations the run logged; the last one (its final ``steps`` steps) is drawn.
"""

from __future__ import annotations

import os

import numpy as np

from neurosim.log_reader import LogReader
from neurosim.plots.figure import DEFAULT_SIZE, new_figure, save


def learning(reader: LogReader, out: str | os.PathLike[str], *, population: str | None = None,
             size: tuple[int, int] = DEFAULT_SIZE) -> str:
    """Left: training accuracy (running) and test accuracy per epoch against samples
    trained on. Right: the readout's spikes per class (mean per neuron) for each image
    of the last sampled presentation."""
    if not reader.has("results/train_accuracy"):
        raise ValueError(f"{reader.path}: the log has no learning curve (results/train_accuracy); "
                         "it is written by training examples such as examples/mnist_three_factor.py")
    info = reader.dataset_attrs("results")
    population = population or str(info.get("readout", ""))
    if population not in reader.spike_populations():
        raise ValueError(f"{reader.path}: no spikes of the readout population {population!r} were "
                         f"recorded (recorded: {', '.join(reader.spike_populations()) or 'none'})")
    missing = [k for k in ("steps", "classes", "train_samples") if k not in info]
    if missing:
        raise ValueError(f"{reader.path}: the results group lacks {', '.join(missing)} (written by "
                         "training examples such as examples/mnist_three_factor.py)")
    classes, steps = int(info["classes"]), int(info["steps"])
    running = reader.read_rows("results/train_accuracy", 0, reader.length("results/train_accuracy"))
    seen = reader.read_rows("results/train_samples_seen", 0, reader.length("results/train_samples_seen"))
    tests = reader.read_rows("results/epochs/test_accuracy", 0, reader.length("results/epochs/test_accuracy"))
    per_epoch = float(info.get("train_samples", 0)) / max(1, len(tests))

    fig, axes = new_figure(size, 1, 2)
    ax = axes[0, 0]
    ax.plot(seen, 100 * running, lw=1.2, label="training (running)")
    ax.plot(per_epoch * np.arange(1, len(tests) + 1), 100 * tests, "o", ms=7, label="test, after each epoch")
    for x, y in zip(per_epoch * np.arange(1, len(tests) + 1), tests):
        ax.annotate(f"{100 * y:.1f}%", (x, 100 * y), textcoords="offset points", xytext=(-10, 8))
    ax.set_xlabel("training samples")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"learning ({info.get('method', '')})")
    ax.legend(loc="lower right")

    step, neuron, row = reader.spikes(population)
    sizes = {p["name"]: int(p["size"]) for p in reader.network.get("populations", [])}
    n = sizes.get(population, int(neuron.max(initial=0)) + 1)
    if n < classes:
        raise ValueError(f"population {population!r} has {n} neurons, fewer than its {classes} classes")
    start = reader.steps - steps  # the last presentation: the log's final ``steps`` steps
    keep = step >= start
    images = int(info.get("log_samples", row.max(initial=0) + 1))
    counts = np.zeros((images, n))
    np.add.at(counts, (row[keep], neuron[keep]), 1.0)
    per_class = counts[:, : n - n % classes].reshape(images, classes, -1).mean(-1)
    ax = axes[0, 1]
    shown = ax.imshow(per_class.T, aspect="auto", cmap="viridis", origin="lower")
    fig.colorbar(shown, ax=ax, label=f"spikes per neuron in {steps} steps")
    if reader.has("results/sample_labels"):
        labels = reader.read_rows("results/sample_labels", 0, images)
        ax.plot(np.arange(len(labels)), labels, "r.", ms=6, label="label")
        ax.legend(loc="upper right")
    ax.set_xlabel("image of the last sampled presentation")
    ax.set_ylabel("class population")
    ax.set_title(f"'{population}' activity")
    return save(fig, out)
