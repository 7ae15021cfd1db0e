"""Counter-current learning (CCL): a forward and a feedback network teaching each other.

Kao & Hariharan, *Counter-Current Learning: A Biologically Plausible Dual Network
Approach for Deep Learning*, NeurIPS 2024 (arXiv 2409.19841); specification in
``shared/research/algorithms.md`` section 1. The forward network maps the input to the
class scores, the feedback network maps the class one-hots back towards the input,
with mirrored shapes::

    a_0 = x,    a_l = phi(U_l sg(a_{l-1})),    a_L = U_L sg(a_{L-1})          (logits)
    b_L = the C one-hots,   b_{l-1} = phi(V_l sg(b_l)),   b_0 = V_1 sg(b_1)

``sg`` is stop-gradient: every layer's input is detached, so the local loss of the pair
``(a_l, b_l)`` (:mod:`neurosim.networks.ccl_losses`) reaches exactly ``U_l`` and
``V_{l+1}``; the top matrix ``U_L`` learns by cross-entropy alone. One ``backward()``
of the sum gives every matrix its own local gradient, with no credit crossing layers.
Prediction uses the forward network only.

For the autoencoder (``task="reconstruction"``) the feedback network is driven by the
image itself and every pair, the top one included, is matched by plain MSE.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.networks.ccl_layers import (ConvPoolPair, ConvStridePair, DensePair,
                                          UpsampleConvPair, activation)
from neurosim.networks.ccl_losses import LOSSES, class_match, code_loss, mse_loss, normalized_loss

TASKS = ("classification", "reconstruction")


@dataclass
class CCLLosses:
    """The terms of one step: ``total`` (what ``backward`` runs on), the ``local`` loss of
    each pair from the bottom, the ``final`` cross-entropy (None for reconstruction),
    and the forward network's output."""

    total: torch.Tensor
    local: list[torch.Tensor]
    final: torch.Tensor | None
    output: torch.Tensor


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Draw initial weights from ``seed`` without touching the global torch stream."""
    with torch.random.fork_rng():
        if seed is not None:
            torch.manual_seed(seed)
        yield


class CCLNet(nn.Module):
    """A dual network of layer pairs (:mod:`neurosim.networks.ccl_layers`).

    Args:
        pairs: the layer pairs from the input up; pair ``l`` maps ``a_{l-1} -> a_l`` and
            ``b_l -> b_{l-1}``.
        input_shape: one sample's shape, e.g. ``(784,)`` or ``(1, 32, 32)``.
        classes: number of classes (classification): the top forward width and the
            feedback network's input width.
        task: ``"classification"`` or ``"reconstruction"`` (autoencoder).
        activation: ``phi`` between layers of both networks (not at the top of the
            forward stack nor at the bottom of the feedback stack).
        loss: local loss, ``"code"``, ``"normalized"`` or ``"mse"`` (see
            :mod:`neurosim.networks.ccl_losses`).
        kappa: weight of the local class-matching term (``kappa_C``; 0.5 in the MLP configs).
        decorrelation: weight of the decorrelation terms of the ``"normalized"`` loss.

    Raises:
        ValueError: when a pair's feedback map does not give back the shape its forward
            map takes, or the top width is not ``classes``.
    """

    def __init__(self, pairs: Sequence[nn.Module], input_shape: Sequence[int], *,
                 classes: int | None = None, task: str = "classification", activation_name: str = "elu",
                 loss: str = "code", kappa: float = 0.5, decorrelation: float = 0.0) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"CCLNet: task must be one of {TASKS}, got {task!r}")
        if loss not in LOSSES:
            raise ValueError(f"CCLNet: loss must be one of {LOSSES}, got {loss!r}")
        if not pairs:
            raise ValueError("CCLNet: needs at least one layer pair")
        if task == "classification" and (isinstance(classes, bool) or not isinstance(classes, int)
                                         or classes < 2):
            raise ValueError(f"CCLNet: classes must be an integer >= 2 for classification, got {classes!r}")
        self.pairs = nn.ModuleList(pairs)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.classes, self.task, self.loss_name = classes, task, loss
        self.kappa, self.decorrelation = float(kappa), float(decorrelation)
        self.activation_name = activation_name
        self.phi = activation(activation_name)
        self.shapes = self._check_shapes()

    # -- construction ----------------------------------------------------------------
    def _check_shapes(self) -> list[tuple[int, ...]]:
        """Run two zero samples up and each pair's feedback down; name the first mismatch."""
        shapes = [self.input_shape]
        x = torch.zeros((2,) + self.input_shape)
        with torch.no_grad():
            for l, pair in enumerate(self.pairs, start=1):
                try:
                    a = pair.up(x, None)
                except RuntimeError as err:
                    raise ValueError(f"CCLNet: layer pair {l} ({type(pair).__name__}) cannot take "
                                     f"the forward activity of shape {tuple(x.shape[1:])} from below: "
                                     f"{err}") from None
                try:
                    back = pair.down(a, None)
                except RuntimeError as err:
                    raise ValueError(f"CCLNet: layer pair {l} ({type(pair).__name__}): the feedback "
                                     f"map cannot take the forward output of shape "
                                     f"{tuple(a.shape[1:])}: {err}") from None
                if back.shape != x.shape:
                    raise ValueError(f"CCLNet: layer pair {l} ({type(pair).__name__}): the feedback "
                                     f"map gives shape {tuple(back.shape[1:])} but the forward map "
                                     f"takes {tuple(x.shape[1:])}; forward and feedback stacks must "
                                     "mirror each other")
                shapes.append(tuple(a.shape[1:]))
                x = a
        if self.task == "classification" and shapes[-1] != (self.classes,):
            raise ValueError(f"CCLNet: the top layer gives shape {shapes[-1]}, but there are "
                             f"{self.classes} classes: the feedback network takes the {self.classes} "
                             "class one-hots, so the top pair must map to exactly that many units")
        if self.task == "reconstruction" and shapes[-1] != self.input_shape:
            raise ValueError(f"CCLNet: an autoencoder's top layer must give the input's shape "
                             f"{self.input_shape}, got {shapes[-1]}")
        return shapes

    @classmethod
    def mlp(cls, sizes: Sequence[int] = (784, 256, 256, 256, 256, 256, 10), *,
            activation_name: str = "elu", bias: bool = False, seed: int | None = None,
            **kwargs) -> "CCLNet":
        """The authors' MLP (default 784-256x5-10, ELU, no bias) on flat inputs."""
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"CCLNet.mlp: sizes must be >= 2 positive widths, got {list(sizes)}")
        with seeded(seed):
            pairs = [DensePair(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:])]
        return cls(pairs, (sizes[0],), classes=sizes[-1], activation_name=activation_name, **kwargs)

    @classmethod
    def from_stacks(cls, forward: Sequence[nn.Linear], feedback: Sequence[nn.Linear], **kwargs) -> "CCLNet":
        """A dense dual network from two lists of ``nn.Linear``: ``forward[l]`` maps width
        ``d_l -> d_{l+1}`` and ``feedback[l]`` maps ``d_{l+1} -> d_l`` (both listed from
        the input up). Shapes are checked: a mismatch names the layer."""
        if len(forward) != len(feedback):
            raise ValueError(f"CCLNet.from_stacks: {len(forward)} forward layers but "
                             f"{len(feedback)} feedback layers; each layer needs one of each")
        if not forward:
            raise ValueError("CCLNet.from_stacks: needs at least one layer")
        pairs = [DensePair.of(f, b) for f, b in zip(forward, feedback)]
        kwargs.setdefault("classes", forward[-1].out_features)
        return cls(pairs, (forward[0].in_features,), **kwargs)

    @classmethod
    def cnn(cls, in_channels: int = 1, size: int = 32, channels: Sequence[int] = (128, 128, 256, 256, 512),
            classes: int = 10, *, activation_name: str = "elu", seed: int | None = None,
            loss: str = "normalized", decorrelation: float = 0.5, **kwargs) -> "CCLNet":
        """The spec's max-pool CNN: per layer conv 3x3 -> phi -> max-pool 2x2, then linear
        to the classes (channels 128,128,256,256,512 on 32x32 inputs by default)."""
        spatial = int(size)
        for _ in channels:
            spatial //= 2
        if spatial < 1:
            raise ValueError(f"CCLNet.cnn: {len(channels)} max-pool layers need inputs of at least "
                             f"{2 ** len(channels)} pixels a side, got {size}")
        with seeded(seed):
            widths = [in_channels, *channels]
            pairs: list[nn.Module] = [ConvPoolPair(a, b) for a, b in zip(widths[:-1], widths[1:])]
            pairs.append(DensePair(widths[-1] * spatial * spatial, classes,
                                   in_shape=(widths[-1], spatial, spatial)))
        return cls(pairs, (in_channels, size, size), classes=classes, activation_name=activation_name,
                   loss=loss, decorrelation=decorrelation, **kwargs)

    @classmethod
    def autoencoder(cls, in_channels: int = 1, size: int = 28, channels: Sequence[int] = (32, 64, 128, 256),
                    *, activation_name: str = "relu", seed: int | None = None,
                    init_scale: float = 1e-3, batch_norm: bool = True,
                    orthogonal: bool = True) -> "CCLNet":
        """The convolutional autoencoder: encoder conv 3x3 stride 2 per entry of
        ``channels``, decoder mirrored (upsample -> conv 3x3); the feedback network runs
        the image back down. As in the authors' code: batch normalisation after every
        conv an activation follows, orthogonal initial weights, the encoder's feedback
        weights and the decoder's forward weights scaled by ``init_scale``, and the last
        decoder forward and first encoder feedback weights zero."""
        sizes = [int(size)]
        for _ in channels:
            sizes.append((sizes[-1] + 1) // 2)
        with seeded(seed):
            widths = [in_channels, *channels]
            encoder = [ConvStridePair(widths[i], widths[i + 1], (sizes[i], sizes[i]), batch_norm=batch_norm)
                       for i in range(len(channels))]
            decoder = [UpsampleConvPair(widths[i + 1], widths[i], (sizes[i], sizes[i]), batch_norm=batch_norm)
                       for i in reversed(range(len(channels)))]
            with torch.no_grad():
                if orthogonal:
                    for pair in encoder + decoder:
                        nn.init.orthogonal_(pair.forward_map.weight)
                        nn.init.orthogonal_(pair.feedback_map.weight)
                for pair in encoder:
                    pair.feedback_map.weight.mul_(init_scale)
                for pair in decoder:
                    pair.forward_map.weight.mul_(init_scale)
                # the reconstruction and the feedback's bottom start at zero
                decoder[-1].forward_map.weight.zero_()
                encoder[0].feedback_map.weight.zero_()
        return cls(encoder + decoder, (in_channels, size, size), task="reconstruction",
                   activation_name=activation_name, loss="mse")

    # -- the two passes ------------------------------------------------------------------
    def _act(self, l: int) -> object:
        """phi for the forward output of pair l (1-based), None at the top."""
        return None if l == len(self.pairs) else self.phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The forward network's output (class scores, or the reconstruction)."""
        for l, pair in enumerate(self.pairs, start=1):
            x = pair.up(x, self._act(l))
        return x

    def forward_activities(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[a_0 = x, a_1, ..., a_L]``, each layer's input detached."""
        out = [x]
        for l, pair in enumerate(self.pairs, start=1):
            out.append(pair.up(out[-1].detach(), self._act(l)))
        return out

    def feedback_activities(self, top: torch.Tensor) -> list[torch.Tensor]:
        """``[b_0, ..., b_{L-1}, b_L = top]``, each layer's input detached."""
        out = [top]
        for l in range(len(self.pairs), 0, -1):
            act = None if l == 1 else self.phi
            out.append(self.pairs[l - 1].down(out[-1].detach(), act))
        return out[::-1]

    def class_prototypes(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The feedback network's input: the C x C identity (one one-hot per class)."""
        p = next(self.parameters())
        return torch.eye(self.classes, dtype=dtype or p.dtype, device=p.device)

    def check_labels(self, labels: torch.Tensor) -> None:
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise TypeError(f"CCLNet: labels must be integers, got {labels.dtype}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.classes):
            raise ValueError(f"CCLNet: labels must lie in 0..{self.classes - 1}, got values from "
                             f"{int(labels.min())} to {int(labels.max())}")

    def _check_input(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"CCLNet: input samples have shape {tuple(x.shape[1:])}, expected "
                             f"{self.input_shape}")

    def local_loss(self, a: torch.Tensor, b: torch.Tensor, match: torch.Tensor | None) -> torch.Tensor:
        if self.loss_name == "mse":
            return mse_loss(a, b)
        if self.loss_name == "normalized":
            return normalized_loss(a, b, match, self.kappa, self.decorrelation)
        return code_loss(a, b, match, self.kappa)

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> CCLLosses:
        """Every term of one CCL step on a batch (labels needed for classification)."""
        self._check_input(x)
        a = self.forward_activities(x)
        if self.task == "reconstruction":
            b = self.feedback_activities(x)
            local = [self.local_loss(al, bl, None) for al, bl in zip(a, b)]
            return CCLLosses(sum(local), local, None, a[-1])
        if labels is None:
            raise ValueError("CCLNet: classification needs the batch's labels")
        self.check_labels(labels)
        b = self.feedback_activities(self.class_prototypes(x.dtype))
        match = class_match(labels, self.classes, x.dtype)
        local = [self.local_loss(al, bl, match) for al, bl in zip(a[:-1], b[:-1])]
        final = F.cross_entropy(a[-1], labels)
        return CCLLosses(sum(local) + final, local, final, a[-1])

    # -- what a trainer needs --------------------------------------------------------------
    def training_loss(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.losses(x, labels)
        return out.total, out.output

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``forward`` and ``feedback`` parameters: each gets its own optimiser and clip."""
        named = list(self.named_parameters())  # maps and norms are named forward_* / feedback_*
        return {"forward": [p for n, p in named if ".forward_" in n],
                "feedback": [p for n, p in named if ".feedback_" in n]}
