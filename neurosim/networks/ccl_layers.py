"""Layer pairs of counter-current learning: one forward and one feedback map per layer.

A pair ``l`` holds the forward map ``a_{l-1} -> a_l`` and the feedback map
``b_l -> b_{l-1}`` of mirrored shapes (Kao & Hariharan, NeurIPS 2024). ``up`` and
``down`` take the activation function to apply (``None``: none, at the top of the
forward stack and the bottom of the feedback stack). Callers detach the inputs; a
pair never sees another pair's parameters.

* :class:`DensePair`: ``U (d_out x d_in)``, ``V (d_in x d_out)``; flattens its input,
  and gives feedback back in the input's shape (``in_shape``).
* :class:`ConvPoolPair`: forward conv 3x3 (stride 1, pad 1) -> activation -> max-pool
  2x2; feedback nearest-neighbour upsample x2 -> conv 3x3 (out -> in channels) ->
  activation (the authors' ``cnn_pool`` architecture).
* :class:`ConvStridePair` / :class:`UpsampleConvPair`: encoder (conv 3x3 stride 2) and
  decoder (upsample -> conv 3x3) layers of the convolutional autoencoder; their
  feedback maps run the other way.

Weights start as PyTorch's default for ``nn.Linear`` / ``nn.Conv2d`` (uniform in
``+-1/sqrt(fan_in)``), no biases unless asked, as in the authors' code.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]

#: activations by name (the graded neuron model offers the same set)
ACTIVATIONS: dict[str, Activation] = {
    "identity": lambda x: x, "relu": F.relu, "elu": F.elu, "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def activation_backward(name: str, grad: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                        out: torch.Tensor | None = None) -> torch.Tensor:
    """``grad * phi'(z)`` for activation ``name``, from the pre-activation ``z`` and ``r =
    phi(z)``: one pass, with the operation autograd itself uses for ``phi`` (so a local
    rule's error is what back-propagation through ``phi`` gives, bit for bit); written
    into ``out`` if given."""
    if name == "identity":
        return grad if out is None else out.copy_(grad)
    if name == "relu":
        value = torch.ops.aten.threshold_backward(grad, z, 0.0)
    elif name == "elu":  # grad where z > 0, grad * exp(z) = grad * (r + 1) elsewhere
        if out is not None:
            return torch.ops.aten.elu_backward.grad_input(grad, 1.0, 1, 1.0, True, r, grad_input=out)
        return torch.ops.aten.elu_backward(grad, 1.0, 1, 1.0, True, r)
    elif name == "sigmoid":
        value = torch.ops.aten.sigmoid_backward(grad, r)
    elif name == "tanh":
        value = torch.ops.aten.tanh_backward(grad, r)
    else:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return value if out is None else out.copy_(value)


def activation(name: str) -> Activation:
    """The activation function called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def _apply(act: Activation | None, z: torch.Tensor) -> torch.Tensor:
    return z if act is None else act(z)


class DensePair(nn.Module):
    """A fully connected layer pair ``d_in <-> d_out``.

    Args:
        d_in, d_out: widths below and above.
        bias: biases on both maps (the authors' MLP has none).
        in_shape: the per-sample shape of the input below, if not flat (e.g. the
            ``(512, 1, 1)`` feature map under a CNN's linear top); feedback is
            reshaped to it.
    """

    def __init__(self, d_in: int, d_out: int, bias: bool = False,
                 in_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.forward_map = nn.Linear(d_in, d_out, bias=bias)
        self.feedback_map = nn.Linear(d_out, d_in, bias=bias)
        self.in_shape = tuple(in_shape) if in_shape is not None else (d_in,)

    @classmethod
    def of(cls, forward_map: nn.Linear, feedback_map: nn.Linear) -> "DensePair":
        """A pair of existing ``nn.Linear`` maps (shapes are checked by :class:`CCLNet`)."""
        if not isinstance(forward_map, nn.Linear) or not isinstance(feedback_map, nn.Linear):
            raise TypeError(f"DensePair.of: both maps must be nn.Linear, got "
                            f"{type(forward_map).__name__} and {type(feedback_map).__name__}")
        pair = cls(1, 1)
        pair.forward_map, pair.feedback_map = forward_map, feedback_map
        pair.in_shape = (forward_map.in_features,)
        return pair

    def up(self, x: torch.Tensor, act: Activation | None) -> torch.Tensor:
        return _apply(act, self.forward_map(x.reshape(x.shape[0], -1)))

    def down(self, y: torch.Tensor, act: Activation | None) -> torch.Tensor:
        return _apply(act, self.feedback_map(y)).reshape((y.shape[0],) + self.in_shape)


class ConvPoolPair(nn.Module):
    """conv 3x3 -> activation -> max-pool 2x2 up; upsample x2 -> conv 3x3 -> activation down."""

    def __init__(self, c_in: int, c_out: int, bias: bool = False) -> None:
        super().__init__()
        self.forward_map = nn.Conv2d(c_in, c_out, 3, stride=1, padding=1, bias=bias)
        self.feedback_map = nn.Conv2d(c_out, c_in, 3, stride=1, padding=1, bias=bias)

    def up(self, x: torch.Tensor, act: Activation | None) -> torch.Tensor:
        return F.max_pool2d(_apply(act, self.forward_map(x)), 2)

    def down(self, y: torch.Tensor, act: Activation | None) -> torch.Tensor:
        return _apply(act, self.feedback_map(F.interpolate(y, scale_factor=2, mode="nearest")))


class ConvStridePair(nn.Module):
    """An encoder layer: conv 3x3 stride 2 up; upsample to the input's size -> conv 3x3 down.

    Args:
        in_size: the input's spatial size ``(H, W)`` (an odd size halves by rounding up,
            so the feedback upsamples to this size exactly).
        batch_norm: batch normalisation after each conv that an activation follows (the
            authors' autoencoder has it).
    """

    def __init__(self, c_in: int, c_out: int, in_size: tuple[int, int], bias: bool = False,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.forward_map = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=bias)
        self.feedback_map = nn.Conv2d(c_out, c_in, 3, stride=1, padding=1, bias=bias)
        self.forward_norm = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.feedback_norm = nn.BatchNorm2d(c_in) if batch_norm else nn.Identity()
        self.in_size = tuple(in_size)

    def up(self, x: torch.Tensor, act: Activation | None) -> torch.Tensor:
        z = self.forward_map(x)
        return z if act is None else act(self.forward_norm(z))

    def down(self, y: torch.Tensor, act: Activation | None) -> torch.Tensor:
        z = self.feedback_map(F.interpolate(y, size=self.in_size, mode="nearest"))
        return z if act is None else act(self.feedback_norm(z))


class UpsampleConvPair(nn.Module):
    """A decoder layer: upsample to ``out_size`` -> conv 3x3 up; conv 3x3 stride 2 down."""

    def __init__(self, c_in: int, c_out: int, out_size: tuple[int, int], bias: bool = False,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.forward_map = nn.Conv2d(c_in, c_out, 3, stride=1, padding=1, bias=bias)
        self.feedback_map = nn.Conv2d(c_out, c_in, 3, stride=2, padding=1, bias=bias)
        self.forward_norm = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.feedback_norm = nn.BatchNorm2d(c_in) if batch_norm else nn.Identity()
        self.out_size = tuple(out_size)

    def up(self, x: torch.Tensor, act: Activation | None) -> torch.Tensor:
        z = self.forward_map(F.interpolate(x, size=self.out_size, mode="nearest"))
        return z if act is None else act(self.forward_norm(z))

    def down(self, y: torch.Tensor, act: Activation | None) -> torch.Tensor:
        z = self.feedback_map(y)
        return z if act is None else act(self.feedback_norm(z))
