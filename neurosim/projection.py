"""Projections: the synapses from one population to another, with weights and delays."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from neurosim.connectors import AllToAll, Connector, FromMatrix
from neurosim.connectors_by_post import draw_weights, stream_keys
from neurosim.distributions import Normal, Uniform
from neurosim.memory import require
from neurosim.sparse_matrices import canonical_csr, csr_array, is_sparse, values_at
from neurosim.validation import is_real, numeric_array, show

if TYPE_CHECKING:
    from scipy.sparse import csr_array as CSRArray

    from neurosim.population import Population

#: a number, an array, a ``scipy.sparse`` matrix, a distribution (or None with FromMatrix)
WeightSpec = float | np.ndarray | torch.Tensor | Uniform | Normal | Any | None
DelaySpec = int | np.ndarray | torch.Tensor

#: Below this fraction of possible pairs, ``sparse=None`` stores weights as CSR.
SPARSE_DENSITY = 0.1
#: From this batch size on, dense delivery uses one matrix product instead of
#: gathering the rows of the neurons that spiked.
DENSE_MATMUL_BATCH = 16
#: the longest delay in steps: delays are stored as int32
MAX_DELAY = 2**31 - 1


class DelayBlock:
    """Synapses of one projection that share one delay (in steps).

    For CSR storage, ``indptr`` indexes ``positions``, the synapses' places in
    the projection's weight array, so weights stay in one canonical array (in the
    order the synapses were given), and ``indices``, their postsynaptic neurons in
    the block's own order (so delivery reads the targets of one spike in one run).
    """

    def __init__(self, delay: int, indptr: torch.Tensor | None, positions: torch.Tensor | None,
                 indices: torch.Tensor | None = None):
        self.delay = delay
        self.indptr = indptr
        self.positions = positions
        self.indices = indices


class Projection:
    """Synapses from ``pre`` to ``post``; built by :meth:`neurosim.Network.projection`.

    Weights are stored dense ``(n_pre, n_post)`` or sparse (CSR: ``indptr``,
    ``indices``, ``weight`` with one entry per synapse). A spike of presynaptic
    neuron ``i`` at step ``t`` adds ``w_ij`` to the receptor's state variable of
    postsynaptic neuron ``j`` at step ``t + d_ij`` (``d_ij >= 1`` steps), before
    the neurons integrate. Delivery is event-driven: only the rows of neurons
    that spiked are read (except for dense weights with large batches, where one
    matrix product is faster).

    Attributes:
        weight: tensor of weights, ``(n_pre, n_post)`` if dense, ``(nnz,)`` if sparse.
        indptr, indices: CSR structure (sparse only).
        mask: dense only: which pairs are synapses (``None`` when all are).
    """

    def __repr__(self) -> str:
        kind = "csr" if getattr(self, "sparse", False) else "dense"
        return f"<Projection '{self.name}': {self.pre.name} -> {self.post.name} ({kind})>"

    def __init__(self, name: str, pre: "Population", post: "Population", connector: Connector | None,
                 weight: WeightSpec, receptor: str, delay: DelaySpec, sparse: bool | None,
                 rng: np.random.Generator, device: torch.device, dtype: torch.dtype,
                 trainable: bool = False, stop_gradient: bool = False,
                 share: tuple[int, int] | None = None, same_population: bool | None = None) -> None:
        owner = f"projection '{name}'"
        if connector is None:  # a sparse matrix of weights names its synapses itself
            connector, weight = (FromMatrix(weight), None) if is_sparse(weight) else (AllToAll(), weight)
        elif not isinstance(connector, Connector):
            raise TypeError(f"{owner}: connector must be a neurosim Connector (AllToAll, "
                            f"FixedProbability, FromMatrix, ...), got {show(connector)}")
        self.name, self.pre, self.post, self.connector = name, pre, post, connector
        self.device, self.dtype = device, dtype
        receptors = getattr(post.model, "receptors", {})
        if receptor not in receptors:
            known = ", ".join(repr(r) for r in receptors) or "none (it takes no synaptic input)"
            raise ValueError(f"{owner}: post population '{post.name}' ({post.model_name}) has no "
                             f"receptor {receptor!r}; its receptors: {known}")
        self.receptor = receptor
        self.target = receptors[receptor]
        n_pre, n_post = pre.n, post.n
        if getattr(connector, "tied", False):
            if sparse is False:
                raise ValueError(f"{owner}: a {type(connector).__name__} projection is stored as CSR "
                                 "(its synapses carry their kernel entries); leave out sparse=False")
            sparse = True
        self._require_memory(owner, connector, sparse, device, dtype, varied_delays=not is_real(delay))
        same = pre is post if same_population is None else bool(same_population)
        #: a connector drawn by postsynaptic neuron: the key of the weights' stream
        self._weight_key: int | None = None
        #: with ``share``: ``post`` is neurons ``lo ..`` of a population of ``n_whole``
        self._first_post = 0
        if share is not None and not (connector.draws_by_post or connector.fixed_pairs):
            raise ValueError(f"{owner}: {type(connector).__name__} draws the whole projection at "
                             "once; only a connector drawn by postsynaptic neuron, AllToAll or "
                             "OneToOne can draw a share")
        if connector.draws_by_post or share is not None:  # (pairs onto neurons lo .. only)
            pair_key = None
            if connector.draws_by_post:  # (fixed pairs take no random numbers)
                pair_key, self._weight_key = stream_keys(rng)
            lo, n_whole = (0, n_post) if share is None else share
            rows, cols = connector.pairs_onto(n_pre, n_whole, lo, lo + n_post, pair_key, same)
            cols -= lo
            self._first_post = lo
        else:
            rows, cols = connector.pairs(n_pre, n_post, rng, same_population=same)
        self.nnz = int(rows.size)
        #: tied weights (a :class:`~neurosim.Convolution`): each synapse's kernel entry, in
        #: storage order; None: every synapse has a weight of its own
        self.tie: torch.Tensor | None = None
        if getattr(connector, "tied", False):
            tie = connector.ties(rows, cols)
            unused = connector.n_tied - np.unique(tie).size
            if unused:  # (their values would be lost: nothing holds them)
                raise ValueError(f"{owner}: {unused} of the {connector.n_tied} kernel entries read "
                                 "only padding at every position and have no synapse; use less "
                                 "padding or a smaller stride")
            self.tie = torch.as_tensor(tie, device=device)
            entry = np.empty(connector.n_tied, dtype=np.int64)
            entry[tie] = np.arange(tie.size)
            #: one synapse of each kernel entry (the kernels are ``weight[entry_synapse]``)
            self.entry_synapse = torch.as_tensor(entry, device=device)
        values = self._weights(owner, weight, rows, cols, rng)
        if values.dtype == np.float64 and dtype == torch.float32:
            values = values.astype(np.float32)  # no float64 copy of every weight kept around
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{owner}: weights contain NaN or inf")
        if receptor == "exc" and values.size and values.min() < 0:
            raise ValueError(f"{owner}: receptor 'exc' needs weights >= 0, got min {values.min():g}")
        if receptor == "inh" and values.size and values.max() > 0:
            raise ValueError(f"{owner}: receptor 'inh' needs weights <= 0 (inhibition is carried by "
                             f"the sign), got max {values.max():g}")
        delays = self._delays(owner, delay, rows, cols)
        pre.require_history(int(delays.max(initial=1)) + 1)  # the ring pre will need: refuse it now
        self._store(owner, rows, cols, values, delays, sparse)
        if not isinstance(trainable, (bool, np.bool_)):
            raise TypeError(f"{owner}: trainable must be True or False, got {show(trainable)}")
        if not isinstance(stop_gradient, (bool, np.bool_)):
            raise TypeError(f"{owner}: stop_gradient must be True or False, got {show(stop_gradient)}")
        #: in a differentiable run, gradients stop at the presynaptic activity (see Network.projection)
        self.stop_gradient = bool(stop_gradient)
        #: deliver :meth:`delivered_weights` (set by the network when it prepares a run)
        self.gate_scaled = False
        self._delivered: tuple[Any, torch.Tensor] | None = None
        #: the weights as an ``nn.Parameter`` for an optimiser (``trainable=True``), else None.
        #: It shares :attr:`weight`'s memory (what one changes the other sees) but not its
        #: autograd version counter, so a learning rule may change the weights in place
        #: while a differentiable run's graph holds them (see ``Network.unroll``).
        self.parameter: torch.nn.Parameter | None = None
        if trainable:
            self.parameter = torch.nn.Parameter(self.weight.data)
            if self.mask is not None:  # no gradient, so no weight, where there is no synapse
                mask = self.mask.to(dtype)
                self.parameter.register_hook(lambda grad: grad * mask)
            if self.tie is not None:  # every synapse of a kernel entry gets the entry's gradient
                self.parameter.register_hook(self.tied_sum)

    def _store(self, owner: str, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
               delays: np.ndarray, sparse: bool | None) -> None:
        """Keep the synapses ``(rows, cols)`` (sorted by pre, then post) with their weights
        and delays, as CSR or dense storage (``sparse=None``: chosen by density and delays)."""
        n_pre, n_post = self.pre.n, self.post.n
        self.nnz = int(rows.size)
        uniform_delay = (delays.size == 0 or delays.strides == (0,)  # (one delay, broadcast)
                         or bool(np.all(delays == delays[0])))
        density = self.nnz / max(1, n_pre * n_post)
        if sparse is None:
            sparse = density < SPARSE_DENSITY or not uniform_delay
        elif not sparse and not uniform_delay:
            raise ValueError(f"{owner}: per-synapse delays need sparse=True (CSR storage)")
        self.sparse = bool(sparse)
        device = self.device
        if self.sparse:
            counts = np.bincount(rows, minlength=n_pre)
            self.indptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device)
            # int32 targets halve the index memory (populations stay below 2**31 neurons)
            self.indices = torch.as_tensor(cols.astype(np.int32, copy=False), device=device)
            self.weight = torch.as_tensor(values, dtype=self.dtype, device=device)
            self.mask = None
        else:
            dense = np.zeros((n_pre, n_post), dtype=values.dtype)  # no float64 copy in float32
            dense[rows, cols] = values
            self.weight = torch.as_tensor(dense, dtype=self.dtype, device=device)
            self.indptr = self.indices = None
            if self.nnz < n_pre * n_post:
                mask = np.zeros((n_pre, n_post), dtype=bool)
                mask[rows, cols] = True
                self.mask = torch.as_tensor(mask, device=device)
            else:
                self.mask = None
        self.blocks = self._delay_blocks(delays, rows, uniform_delay)
        self.delays = torch.as_tensor(delays, device=device) if not uniform_delay else None

    def keep_columns(self, post: "Population") -> None:
        """Keep only the synapses onto ``post``'s share of the postsynaptic population
        (its neurons ``post.offset .. post.offset + post.n - 1``, renumbered from 0), in
        the same order and storage: a partitioned run (see :mod:`neurosim.distributed`)
        builds each projection whole, as one process would, then keeps its share, so
        every split delivers the same weights in the same order."""
        if self.tie is not None:
            raise ValueError(f"projection '{self.name}': a {type(self.connector).__name__} projection "
                             f"onto a split population ('{post.name}') would need its kernels' "
                             "changes summed across processes, which a partitioned run does not do yet")
        self.whole = None  # (the delays below are this whole projection's own)
        rows, cols, values, delays = self._synapse_arrays()
        keep = (cols >= post.offset) & (cols < post.offset + post.n)
        #: the whole projection's fingerprint and synapse count, and each kept synapse's place
        #: among its synapses (storage order): a partitioned run's state files are whole
        self.whole = {"digest": self.structure_digest(), "nnz": self.nnz,  # type: ignore[assignment]
                      "positions": np.flatnonzero(keep), "shape": (self.pre.n, self.post.n),
                      "min_delay": self.min_delay, "max_delay": self.max_delay,
                      "delays": sorted({b.delay for b in self.blocks})}
        self.post = post
        self._store(f"projection '{self.name}'", rows[keep], (cols[keep] - post.offset),
                    values[keep], delays[keep], self.sparse)

    def _restore(self, sparse: bool) -> None:
        """Store the same synapses, weights and delays as CSR (True) or dense (False):
        while the projection is built (before a backend or an optimiser holds its arrays)."""
        rows, cols, values, delays = self._synapse_arrays()
        self._store(f"projection '{self.name}'", rows, cols, values, delays, sparse)

    def _synapse_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(pre, post, weight, delay) of each synapse, in storage order."""
        rows, cols = self.synapses()
        values = (self.weight.detach().cpu().numpy() if self.sparse
                  else self.weight.detach().cpu().numpy()[rows, cols])
        delays = (self.delays.cpu().numpy() if self.delays is not None
                  else np.broadcast_to(np.int32(self.blocks[0].delay), (rows.size,)))
        return rows, cols, values, delays

    # -- construction helpers -------------------------------------------------------------
    def _require_memory(self, owner: str, connector: Connector, sparse: bool | None,
                        device: torch.device, dtype: torch.dtype, varied_delays: bool = False) -> None:
        """Refuse, with the size in GB, synapses that cannot fit (before drawing them)."""
        n_pre, n_post = self.pre.n, self.post.n
        pairs = connector.expected_pairs(n_pre, n_post)
        if pairs is None:
            return
        item = torch.empty((), dtype=dtype).element_size()
        cells = n_pre * n_post
        dense = not sparse if sparse is not None else pairs >= SPARSE_DENSITY * cells
        # kept: weights (+ int32 targets for CSR, + a bool mask for dense); while building:
        # int64 (pre, post) pairs, float64 values, delays
        resident = cells * (item + 1) if dense else pairs * (item + 4) + 8 * (n_pre + 1)
        if varied_delays:  # (may be per synapse: their delays, and each delay block's int64
            resident += pairs * (4 + 8 + 4)  # places and int32 targets)
        temporary = pairs * (16 + 8 + 12) + (cells * item if dense else 0)
        require(f"{owner}: {pairs} synapses ({type(connector).__name__}, {n_pre} x {n_post}, "
                f"{'dense' if dense else 'CSR'} storage)", resident, temporary, device,
                "Use a sparser connector or smaller populations" + (" or sparse=True" if dense else ""))

    def _weights(self, owner, weight, rows, cols, rng) -> np.ndarray:
        n_pre, n_post = self.pre.n, self.post.n
        if isinstance(self.connector, FromMatrix) or getattr(self.connector, "gives_weights", False):
            if weight is not None:
                raise ValueError(f"{owner}: {type(self.connector).__name__} gives the weights; "
                                 "leave out 'weight'")
            return self.connector.values(rows, cols)
        if weight is None:
            raise ValueError(f"{owner}: 'weight' is required (a number, an array or a distribution)")
        if self.tie is not None:
            return self._tied_weights(owner, weight, rng)
        if isinstance(weight, (Uniform, Normal)):
            if self._weight_key is not None:  # per synapse: any split draws the same weights
                return draw_weights(weight, self._weight_key, rows, cols + self._first_post)
            return weight.sample(rng, (self.nnz,))
        if is_sparse(weight):
            if tuple(weight.shape) != (n_pre, n_post):
                raise ValueError(f"{owner}: sparse weight matrix has shape {tuple(weight.shape)}; "
                                 f"expected ({n_pre}, {n_post}) (n_pre, n_post)")
            return values_at(canonical_csr(weight, f"{owner}: weight"), rows, cols, f"{owner}: weight")
        arr = numeric_array(weight, f"{owner}: weight must be a number, an array of numbers, a "
                                    "scipy.sparse matrix or a distribution").astype(np.float64, copy=False)
        if arr.ndim == 0:
            # in the network's precision: a float64 network keeps 0.9 exact
            return np.full(self.nnz, float(arr), dtype=np.float32 if self.dtype == torch.float32
                           else np.float64)
        if arr.shape == (n_pre, n_post):
            return arr[rows, cols]
        if arr.shape == (self.nnz,):
            return self._in_storage_order(arr)
        raise ValueError(f"{owner}: weight array has shape {arr.shape}; expected ({n_pre}, {n_post}) "
                         f"(n_pre, n_post) or ({self.nnz},) (one per synapse)")

    def _tied_weights(self, owner: str, weight: WeightSpec, rng: np.random.Generator) -> np.ndarray:
        """Tied synapses' weights: a number, a kernel-shaped array or a distribution (one
        draw per kernel entry), spread to the synapses of each entry."""
        shape = self.connector.kernel_shape
        if isinstance(weight, (Uniform, Normal)):
            kernels = np.asarray(weight.sample(rng, (self.connector.n_tied,)))
        elif is_sparse(weight):
            raise ValueError(f"{owner}: a {type(self.connector).__name__} projection takes its "
                             f"weights as kernels {shape}, not a sparse matrix")
        else:
            arr = numeric_array(weight, f"{owner}: weight must be a number, kernels of shape {shape} "
                                        "or a distribution").astype(np.float64, copy=False)
            if arr.ndim == 0:
                arr = np.full(shape, float(arr))
            elif arr.shape != shape:
                raise ValueError(f"{owner}: weight array has shape {arr.shape}; a "
                                 f"{type(self.connector).__name__} projection takes kernels of shape "
                                 f"{shape} (kernels, channels, height, width): its synapses share them")
            kernels = arr.reshape(-1)
        kernels = kernels.astype(np.float32 if self.dtype == torch.float32 else np.float64)
        return kernels[self.tie.cpu().numpy()]

    def _in_storage_order(self, per_synapse: np.ndarray) -> np.ndarray:
        """A per-synapse array given in the connector's order (``FromPairs``: the order the
        pairs were listed) rearranged into storage order."""
        order = getattr(self.connector, "given_order", None)
        return per_synapse if order is None else per_synapse[order]

    def _delays(self, owner, delay, rows, cols) -> np.ndarray:
        rule = "delay must be a whole number of steps >= 0"
        if not (is_real(delay) or isinstance(delay, (np.ndarray, torch.Tensor, list, tuple))):
            raise TypeError(f"{owner}: {rule} (or an array of them), got {show(delay)}")
        arr = numeric_array(delay, f"{owner}: {rule} (or an array of them)")
        if arr.dtype.kind == "b":
            raise TypeError(f"{owner}: {rule}, got an array of bool")
        if arr.ndim == 0:  # one delay: checked once, stored as a view (no array of nnz)
            self._check_delays(owner, rule, arr.reshape(1), delay)
            return np.broadcast_to(arr.astype(np.int32), (self.nnz,))
        if arr.shape == (self.pre.n, self.post.n):
            arr = arr[rows, cols]
        elif arr.shape != (self.nnz,):
            raise ValueError(f"{owner}: delay array has shape {arr.shape}; expected a number, "
                             f"({self.pre.n}, {self.post.n}) or ({self.nnz},)")
        else:
            arr = self._in_storage_order(arr)
        self._check_delays(owner, rule, arr, delay)
        return arr.astype(np.int32)

    @staticmethod
    def _check_delays(owner: str, rule: str, arr: np.ndarray, delay: Any) -> None:
        if arr.size:
            with np.errstate(invalid="ignore"):  # NaN and inf are reported below
                bad = ~np.isfinite(arr) | (np.mod(arr, 1) != 0) | (arr < 0) | (arr > MAX_DELAY)
            if bad.any():
                got = arr[bad].flat[0]
                raise ValueError(f"{owner}: {rule} and at most {MAX_DELAY}, got "
                                 f"{show(got.item() if np.ndim(delay) else delay)}")

    def _delay_blocks(self, delays, rows, uniform) -> list[DelayBlock]:
        if uniform:
            return [DelayBlock(int(delays[0]) if delays.size else 1, self.indptr, None)]
        blocks = []
        for d in np.unique(delays):
            positions = np.nonzero(delays == d)[0]
            counts = np.bincount(rows[positions], minlength=self.pre.n)
            indptr = np.concatenate([[0], np.cumsum(counts)])
            blocks.append(DelayBlock(int(d), torch.as_tensor(indptr, device=self.device),
                                     torch.as_tensor(positions, device=self.device),
                                     self.indices[torch.as_tensor(positions, device=self.device)]))
        return blocks

    # -- queries -------------------------------------------------------------------------
    # (a partitioned run's share of a projection answers for the whole projection, so that
    # every process slices its steps alike and keeps rings of the same length)
    @property
    def max_delay(self) -> int:
        whole = getattr(self, "whole", None)
        return whole["max_delay"] if whole else max(b.delay for b in self.blocks)

    @property
    def min_delay(self) -> int:
        whole = getattr(self, "whole", None)
        return whole["min_delay"] if whole else min(b.delay for b in self.blocks)

    @property
    def trainable(self) -> bool:
        """True when the weights are an ``nn.Parameter`` (:attr:`parameter`) for an optimiser."""
        return self.parameter is not None

    # -- tied weights (a Convolution) ----------------------------------------------------
    def tied_sum(self, change: torch.Tensor) -> torch.Tensor:
        """``change`` (one value per synapse) summed over the synapses of each kernel entry
        and given back to each of them: the change of a shared weight, which keeps tied
        weights equal. ``change`` itself when the weights are not tied. The sum runs in
        synapse order on the CPU (as the compiled loops add; a GPU's index_add_ may add in
        another order)."""
        if self.tie is None:
            return change
        sums = torch.zeros(self.connector.n_tied, dtype=change.dtype, device=change.device)
        sums.index_add_(0, self.tie, change)
        return sums[self.tie]

    @property
    def kernels(self) -> torch.Tensor:
        """The shared kernels ``(K, C, kh, kw)`` of a :class:`~neurosim.Convolution`
        projection (a copy; set them with :meth:`set_kernels`)."""
        if self.tie is None:
            raise AttributeError(f"projection '{self.name}' has no kernels: its connector is "
                                 f"{type(self.connector).__name__}, not a Convolution")
        return self.weight.detach()[self.entry_synapse].reshape(self.connector.kernel_shape)

    def set_kernels(self, kernels: np.ndarray | torch.Tensor) -> None:
        """Set the shared kernels ``(K, C, kh, kw)``: every synapse of an entry takes it."""
        owner = f"projection '{self.name}': set_kernels"
        if self.tie is None:
            raise AttributeError(f"{owner}: its connector is {type(self.connector).__name__}, "
                                 "not a Convolution; it has no kernels")
        value = torch.as_tensor(kernels, dtype=self.dtype, device=self.device)
        shape = tuple(self.connector.kernel_shape)
        if tuple(value.shape) != shape:
            raise ValueError(f"{owner}: expected kernels of shape {shape}, got {tuple(value.shape)}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{owner}: kernels contain NaN or inf")
        if self.receptor == "exc" and value.numel() and value.min() < 0:
            raise ValueError(f"{owner}: receptor 'exc' needs weights >= 0, got min {value.min().item():g}")
        if self.receptor == "inh" and value.numel() and value.max() > 0:
            raise ValueError(f"{owner}: receptor 'inh' needs weights <= 0, got max {value.max().item():g}")
        with torch.no_grad():
            self.weight.copy_(value.reshape(-1)[self.tie])

    def add_to_grad(self, grad: torch.Tensor, tied: bool = False) -> None:
        """Add ``grad`` (a new tensor, taken over) to the gradient an optimiser reads
        (:attr:`parameter`'s when trainable, else :attr:`weight`'s): a learning rule with
        ``as_gradient=True``. Tied weights take the sum over each kernel entry's synapses
        (``tied``: ``grad`` is such a sum already)."""
        target = self.parameter if self.parameter is not None else self.weight
        grad = grad.detach() if tied else self.tied_sum(grad.detach())
        target.grad = grad if target.grad is None else target.grad + grad

    def weight_matrix(self, sparse: bool = False) -> "np.ndarray | CSRArray":
        """The weights as a dense ``(n_pre, n_post)`` numpy array (0 where no synapse), or,
        with ``sparse=True``, as a ``scipy.sparse.csr_array`` whose stored entries are
        exactly the synapses (a synapse of weight 0 is an explicit zero), in the
        weights' dtype, without a dense copy (for CSR storage)."""
        if sparse:
            if self.sparse:
                return csr_array(self.indptr.cpu().numpy(), self.indices.cpu().numpy(),
                                 self.weight.detach().cpu().numpy(), (self.pre.n, self.post.n))
            rows, cols = self.synapses()
            counts = np.bincount(rows, minlength=self.pre.n)
            return csr_array(np.concatenate([[0], np.cumsum(counts)]), cols,
                             self.weight.detach().cpu().numpy()[rows, cols], (self.pre.n, self.post.n))
        if not self.sparse:
            return self.weight.detach().cpu().numpy().copy()
        dense = np.zeros((self.pre.n, self.post.n), dtype=np.float64)
        indptr = self.indptr.cpu().numpy()
        rows = np.repeat(np.arange(self.pre.n), np.diff(indptr))
        dense[rows, self.indices.cpu().numpy()] = self.weight.detach().cpu().numpy()
        return dense

    def synapses(self) -> tuple[np.ndarray, np.ndarray]:
        """(presynaptic, postsynaptic) neuron index of each synapse.

        CSR: in storage order, so synapse ``s`` has weight ``weight[s]``. Dense: the
        connected pairs (where the mask is true; every pair without a mask),
        row-major; synapse ``s`` has weight ``weight[pre[s], post[s]]``.
        """
        if not self.sparse:
            if self.mask is None:
                rows, cols = np.indices((self.pre.n, self.post.n))
                return rows.reshape(-1), cols.reshape(-1)
            rows, cols = np.nonzero(self.mask.cpu().numpy())
            return rows, cols
        indptr = self.indptr.cpu().numpy()
        return np.repeat(np.arange(self.pre.n), np.diff(indptr)), self.indices.cpu().numpy().copy()

    def set_weights(self, values: np.ndarray | torch.Tensor) -> None:
        """Replace the weights (same shape as :attr:`weight`), checking for NaN/inf."""
        values = torch.as_tensor(values, dtype=self.dtype, device=self.device)
        if values.shape != self.weight.shape:
            raise ValueError(f"projection '{self.name}': new weights have shape {tuple(values.shape)}, "
                             f"expected {tuple(self.weight.shape)}")
        if not torch.isfinite(values).all():
            raise ValueError(f"projection '{self.name}': new weights contain NaN or inf")
        self.check_tied(values, f"projection '{self.name}': new weights")
        self.weight.copy_(values)

    def check_tied(self, values: torch.Tensor, what: str) -> None:
        """Refuse per-synapse weights that differ within a kernel entry (tied weights)."""
        if self.tie is None:
            return
        values = values.to(self.device)
        first = torch.zeros(self.connector.n_tied, dtype=values.dtype, device=self.device)
        first[self.tie] = values
        if not torch.equal(first[self.tie], values):
            raise ValueError(f"{what}: the synapses of one kernel entry of this "
                             f"{type(self.connector).__name__} projection must share one weight; "
                             "set the kernels with set_kernels")

    def structure_digest(self) -> str:
        """A hash of which pairs are synapses, in storage order (CSR ``indptr`` and
        ``indices``, or the dense mask), and of their delays when these differ between
        synapses: equal digests mean that the weight arrays of
        two projections refer to the same synapses (a saved state fits)."""
        h = hashlib.sha256(f"{self.pre.n} {self.post.n} {'csr' if self.sparse else 'dense'}".encode())
        if self.sparse:
            h.update(self.indptr.cpu().numpy().astype(np.int64).tobytes())
            h.update(self.indices.cpu().numpy().astype(np.int32).tobytes())
        elif self.mask is not None:
            h.update(np.packbits(self.mask.cpu().numpy()).tobytes())
        if self.delays is not None:  # per-synapse delays are structure too (rules' traces follow them)
            h.update(self.delays.cpu().numpy().astype(np.int32).tobytes())
        if self.tie is not None:  # which synapses share a weight
            h.update(self.tie.cpu().numpy().astype(np.int64).tobytes())
        return h.hexdigest()[:32]

    def describe(self) -> dict[str, Any]:
        # (a partitioned run reads a split population's spikes from its mirror: name the population)
        pre = getattr(self.pre, "mirror_of", None) or self.pre
        whole = getattr(self, "whole", None)
        return {"name": self.name, "pre": pre.name, "post": self.post.name,
                "receptor": self.receptor, "target": self.target,
                "synapses": whole["nnz"] if whole else self.nnz,
                "storage": "csr" if self.sparse else "dense",
                "delays_steps": whole["delays"] if whole else sorted({b.delay for b in self.blocks}),
                "trainable": self.trainable,
                "stop_gradient": self.stop_gradient,
                **self.connector.describe()}

    # -- state --------------------------------------------------------------------------
    def arrays(self) -> dict[str, torch.Tensor]:
        """The arrays a backend delivers with, by name (the projection's state contract).
        (The torch backend's static step may make ``weight`` a view of weights joined
        with other projections' at the first run after the network changed; see
        :mod:`neurosim.backends.torch_merge`.)

        ``weight``: ``(n_pre, n_post)`` dense or ``(nnz,)`` CSR; ``mask`` (dense, when not
        all pairs connect); CSR: ``indices`` (post neuron of each synapse) and, per delay
        block ``q`` (its delay in ``blocks[q].delay``), ``block<q>.indptr`` over
        ``block<q>.positions`` (the synapses' places in ``weight``; absent when the block
        is the whole projection in storage order), and ``block<q>.indices`` (their
        postsynaptic neurons, in the block's order).
        """
        out = {"weight": self.weight}
        if self.gate_scaled:
            out["weight.delivered"] = self.delivered_weights()
        if self.mask is not None:
            out["mask"] = self.mask
        if self.sparse:
            out["indices"] = self.indices
            for q, block in enumerate(self.blocks):
                out[f"block{q}.indptr"] = block.indptr
                if block.positions is not None:
                    out[f"block{q}.positions"] = block.positions
                    out[f"block{q}.indices"] = block.indices
        return out

    def delivered_weights(self) -> torch.Tensor:
        """The weights times the postsynaptic gate's gain (per column; CSR: per synapse),
        which a projection into a gated population delivers when its gate is the same
        for every sample and no rule changes its weights (:attr:`gate_scaled`): each
        event then adds ``w * gain`` with no work per event. Recomputed when the weights
        or the gate change."""
        gate = self.post.gate
        key = (id(self.weight), self.weight._version, id(gate), gate.version)
        if self._delivered is None or self._delivered[0] != key:
            gain = gate.gain[0]
            scaled = self.weight.detach() * (gain[self.indices] if self.sparse else gain)
            self._delivered = (key, scaled)
        return self._delivered[1]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight}
