"""Convolutional connectivity: synapses laid out as a 2-D convolution, their weights tied
to the entries of shared kernels.

The presynaptic population is read as a ``(C, H, W)`` image and the postsynaptic one
as ``(K, H', W')`` feature maps, both channel-major (neuron ``c * H * W + y * W + x``,
as ``tensor.flatten()`` lays them out). Neuron ``(k, y', x')`` receives from the
``kh x kw`` window of every input channel at ``(y' s - p, x' s - p)`` (stride ``s``,
zero padding ``p``), through kernel entry ``(k, c, dy, dx)``: the cross-correlation
of ``torch.nn.functional.conv2d``, so delivering values ``x`` gives ``conv2d(x, kernels)``.

Each synapse is stored (CSR, like any sparse projection, so delays, spikes, graded
values and both backends work unchanged) and carries its kernel entry, its *tie*. The
synapses of one entry hold the same weight. A declared rule's per-row terms (``on_pre``,
``on_post``, ``per_step``, ``gate``) are summed over the entry's synapses (positions and
batch rows), and the entry's new weight is then made once from that sum and its old
weight (``on_apply``, e.g. a weight decay, acts once on the shared weight, as an
optimiser's weight decay does on a convolution's kernel); the update of a shared weight,
as the gradient of a convolution's kernel is the sum over positions. A tensor-code rule
(``weight_change``) has its whole change summed. A rule whose ``on_apply`` reads
per-neuron values, or a ``column`` hook (a normalisation), is refused: it would untie
the synapses. Weights written per synapse (``set_weights``, a loaded state) must be tied.

Taps that fall on the padding have no synapse, so a rule sees no term from them (the
border of :func:`~neurosim.rules.soft_hebbian.conv_soft_hebbian_delta`, which unfolds
zero padding into inputs, differs there; with ``padding=0`` they agree); a kernel entry
that reads only padding at every position is refused. A convolution of a population
onto itself keeps its centre taps' self-synapses (``allow_autapses`` does not apply).
Storing every synapse costs memory ``positions x taps`` (GeNN's kernel connectivity
computes them on the fly instead); it keeps every rule and delivery path one code. On
numba a rule on tied weights visits every synapse at every application (the per-entry
sum needs them all), also a spike-driven rule that elsewhere visits only the synapses
a spike touched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import torch
import torch.nn.functional as F

from neurosim.connectors import Connector
from neurosim.validation import show


def convolve(proj: Any, values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """What a :class:`Convolution` projection delivers from presynaptic ``values`` (spikes
    or graded values, ``(batch, n_pre)``) with its tied weights ``weight``: ``conv2d`` of
    the values with the kernels, ``(batch, n_post)``. One call instead of a gather per
    synapse (the torch backend's delivery at batch >= 16 or from a graded population, as
    a dense projection's matrix product); the sums are rounded in ``conv2d``'s order.
    See :func:`delivers_by_conv2d` for when it is used."""
    conv = proj.connector
    kernels = weight[proj.entry_synapse].reshape(conv.kernel_shape)
    x = values.to(weight.dtype).reshape(values.shape[0], *conv.in_shape)
    out = F.conv2d(x, kernels, stride=conv.stride, padding=conv.padding)
    return out.reshape(values.shape[0], -1)


def delivers_by_conv2d(proj: Any, graded_or_large_batch: bool) -> bool:
    """Whether the torch backend delivers ``proj`` with :func:`convolve`: a Convolution
    with one delay into an ungated population, from a graded population or at batch
    >= 16, on the CPU or in float64. (Not float32 on a GPU: cuDNN may compute float32
    convolutions in TF32, with a 10-bit mantissa, by default.)"""
    return (proj.tie is not None and proj.post.gate is None and not proj.gate_scaled
            and len(proj.blocks) == 1 and graded_or_large_batch
            and (proj.device.type == "cpu" or proj.dtype == torch.float64))


def _pair(owner: str, name: str, value: Any, least: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``least``, as a pair."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints, got {show(value)}")
    if min(items) < least:
        raise ValueError(f"{owner}: {name} must be >= {least}, got {show(value)}")
    return int(items[0]), int(items[1])


class Convolution(Connector):
    """Synapses of a 2-D convolution from a ``(C, H, W)`` population to a ``(K, H', W')``
    one, their weights tied to ``K x C x kh x kw`` kernels (see the module docstring).

    Args:
        in_shape: ``(C, H, W)`` of the presynaptic population (``C * H * W`` neurons).
        kernels: ``K``, the number of kernels (output channels).
        kernel_size: ``kh`` or ``(kh, kw)``.
        stride: ``s`` or ``(sy, sx)`` (default 1).
        padding: ``p`` or ``(py, px)`` zeros around the input (default 0).

    The postsynaptic population must have ``K * H' * W'`` neurons, with
    ``H' = (H + 2 py - kh) // sy + 1`` (and ``W'`` alike): :attr:`out_shape`. The
    projection's ``weight`` is then a number, a ``(K, C, kh, kw)`` array or a
    distribution (drawn once per kernel entry); read and set the kernels with
    ``proj.kernels`` and ``proj.set_kernels``.
    """

    #: the projection ties its synapses' weights to the kernels' entries
    tied = True

    def __init__(self, in_shape: tuple[int, int, int], kernels: int, kernel_size: Any, *,
                 stride: Any = 1, padding: Any = 0) -> None:
        owner = "Convolution"
        if (not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3
                or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                           for v in in_shape)):
            raise ValueError(f"{owner}: in_shape must be (channels, height, width), each an int "
                             f">= 1, got {show(in_shape)}")
        if not isinstance(kernels, (int, np.integer)) or isinstance(kernels, bool) or kernels < 1:
            raise ValueError(f"{owner}: kernels must be an int >= 1 (output channels), got {show(kernels)}")
        self.in_shape = tuple(int(v) for v in in_shape)
        self.kernels = int(kernels)
        self.kernel_size = _pair(owner, "kernel_size", kernel_size, 1)
        self.stride = _pair(owner, "stride", stride, 1)
        self.padding = _pair(owner, "padding", padding, 0)
        c, h, w = self.in_shape
        (kh, kw), (sy, sx), (py, px) = self.kernel_size, self.stride, self.padding
        ho, wo = (h + 2 * py - kh) // sy + 1, (w + 2 * px - kw) // sx + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"{owner}: a {kh}x{kw} kernel does not fit a {h}x{w} input with "
                             f"padding {self.padding}")
        self.out_shape = (self.kernels, ho, wo)

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        """``(K, C, kh, kw)``, the shape of ``proj.kernels``."""
        return (self.kernels, self.in_shape[0], *self.kernel_size)

    @property
    def n_tied(self) -> int:
        """How many shared weights (kernel entries) there are."""
        return int(np.prod(self.kernel_shape))

    def check_sizes(self, n_pre: int, n_post: int) -> None:
        n_in, n_out = int(np.prod(self.in_shape)), int(np.prod(self.out_shape))
        if n_pre != n_in or n_post != n_out:
            raise ValueError(
                f"Convolution: in_shape {self.in_shape} needs a presynaptic population of {n_in} "
                f"neurons and gives feature maps {self.out_shape} ({n_out} neurons); the "
                f"populations have {n_pre} and {n_post}")

    def pairs(self, n_pre, n_post, rng, same_population):
        self.check_sizes(n_pre, n_post)
        c, h, w = self.in_shape
        k, ho, wo = self.out_shape
        (kh, kw), (sy, sx), (py, px) = self.kernel_size, self.stride, self.padding
        # one grid of (kernel, channel, tap row, tap column, output row, output column)
        kk, cc, dy, dx, oy, ox = np.meshgrid(np.arange(k), np.arange(c), np.arange(kh), np.arange(kw),
                                             np.arange(ho), np.arange(wo), indexing="ij", sparse=True)
        iy, ix = oy * sy - py + dy, ox * sx - px + dx
        inside = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), (k, c, kh, kw, ho, wo))
        rows = np.broadcast_to(cc * (h * w) + iy * w + ix, inside.shape)[inside].astype(np.int64)
        cols = np.broadcast_to(kk * (ho * wo) + oy * wo + ox, inside.shape)[inside].astype(np.int64)
        order = np.lexsort((cols, rows))  # CSR order: by presynaptic, then postsynaptic neuron
        return rows[order], cols[order]

    def ties(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The kernel entry (flat index into ``(K, C, kh, kw)``) of each synapse ``(rows, cols)``."""
        c, h, w = self.in_shape
        _, ho, wo = self.out_shape
        (kh, kw), (sy, sx), (py, px) = self.kernel_size, self.stride, self.padding
        ch, pix = np.divmod(rows, h * w)
        iy, ix = np.divmod(pix, w)
        kk, opix = np.divmod(cols, ho * wo)
        oy, ox = np.divmod(opix, wo)
        dy, dx = iy - oy * sy + py, ix - ox * sx + px
        return ((kk * c + ch) * kh + dy) * kw + dx

    def expected_pairs(self, n_pre, n_post):
        k, ho, wo = self.out_shape
        return k * ho * wo * self.in_shape[0] * self.kernel_size[0] * self.kernel_size[1]

    def describe(self):
        return {"connector": "Convolution", "in_shape": list(self.in_shape),
                "out_shape": list(self.out_shape), "kernel_shape": list(self.kernel_shape),
                "stride": list(self.stride), "padding": list(self.padding)}
