"""Statistics of spike events: trains, rates, irregularity, count variability, synchrony.

Every function takes spikes as two parallel arrays, as a log stores them:
``times_ms[k]`` is the time of spike ``k`` (ms) and ``neurons[k]`` the index of the
neuron that fired it. For a neurosim log, ``times_ms = step * dt`` and the neuron
arrays come from :meth:`neurosim.LogReader.spike_times` (select one batch row
first). Nothing here reads files.

Time windows are half-open, ``[t_start_ms, t_stop_ms)``, and bins are laid from
``t_start_ms`` in steps of the bin width; a trailing part shorter than a bin is
left out (the returned edges show which span was used). Spike times computed as
``step * dt`` carry rounding errors of a few ulp, so a spike within a millionth of
a bin of an edge counts in the bin that starts at that edge.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Fraction of a bin within which a spike before an edge is moved onto it: larger than
# the rounding error of step * dt, far smaller than any time step.
_EDGE_TOLERANCE = 1e-6


def spike_trains(times_ms: np.ndarray, neurons: np.ndarray, n_neurons: int) -> list[np.ndarray]:
    """Split spike events into one sorted array of times per neuron.

    Parameters
    ----------
    times_ms, neurons : array_like, shape (events,)
        Time (ms) and neuron index of every spike.
    n_neurons : int
        Number of neurons; neuron indices must lie in ``[0, n_neurons)``.

    Returns
    -------
    list of ndarray
        ``trains[i]`` holds the spike times of neuron ``i`` in ascending order
        (float64, ms); an empty array for a silent neuron.

    Examples
    --------
    >>> spike_trains([3.0, 1.0, 2.0], [1, 1, 0], 3)
    [array([2.]), array([1., 3.]), array([], dtype=float64)]
    """
    times, ids = _events(times_ms, neurons, n_neurons)
    order = np.lexsort((times, ids))  # by neuron, then by time within each neuron
    ends = np.cumsum(np.bincount(ids, minlength=n_neurons))
    return np.split(times[order], ends[:-1])


def binned_rates(times_ms: np.ndarray, neurons: np.ndarray, n_neurons: int,
                 t_start_ms: float, t_stop_ms: float, bin_ms: float,
                 per_neuron: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Firing rate in consecutive time bins, for the population or per neuron.

    With ``c[i, b]`` the number of spikes of neuron ``i`` in bin ``b`` (width
    ``w = bin_ms``), the rates in Hz are

    .. math:: r_i(b) = \frac{c[i, b]}{w / 1000}, \qquad
              \bar r(b) = \frac{1}{N} \sum_{i=0}^{N-1} r_i(b)

    so the population rate counts silent neurons too (``N = n_neurons``).

    Parameters
    ----------
    times_ms, neurons : array_like, shape (events,)
        Time (ms) and neuron index of every spike.
    n_neurons : int
        Number of neurons ``N``.
    t_start_ms, t_stop_ms : float
        Window ``[t_start_ms, t_stop_ms)``; spikes outside it are ignored.
    bin_ms : float
        Bin width ``w``, positive and at most the window length.
    per_neuron : bool
        Return each neuron's rate instead of the population mean.

    Returns
    -------
    bin_edges_ms : ndarray, shape (bins + 1,)
        ``t_start_ms + w * k``; bin ``b`` is ``[edges[b], edges[b + 1])``.
    rates_hz : ndarray, shape (bins,) or (n_neurons, bins)
        Population mean rate per bin, or per-neuron rates when ``per_neuron``.

    Examples
    --------
    Two neurons, 10 ms bins: three spikes in the first bin give
    3 / (2 * 0.010 s) = 150 Hz.

    >>> edges, rate = binned_rates([1.0, 2.0, 5.0, 15.0], [0, 0, 1, 1], 2, 0.0, 20.0, 10.0)
    >>> edges.tolist(), rate.tolist()
    ([0.0, 10.0, 20.0], [150.0, 50.0])
    """
    times, ids = _events(times_ms, neurons, n_neurons)
    n_bins = _bin_count(t_start_ms, t_stop_ms, bin_ms, "bin_ms")
    counts = _counts(times, ids, n_neurons, t_start_ms, bin_ms, n_bins)
    edges = t_start_ms + bin_ms * np.arange(n_bins + 1, dtype=np.float64)
    rates = counts / (bin_ms * 1e-3)
    return edges, (rates if per_neuron else rates.mean(axis=0))


def firing_rates(times_ms: np.ndarray, neurons: np.ndarray, n_neurons: int,
                 t_start_ms: float, t_stop_ms: float) -> np.ndarray:
    r"""Mean firing rate of each neuron over a window, in Hz.

    .. math:: r_i = \frac{n_i}{(t_{stop} - t_{start}) / 1000}

    where ``n_i`` counts the spikes of neuron ``i`` in ``[t_start_ms, t_stop_ms)``.

    Returns
    -------
    ndarray, shape (n_neurons,)
        Rates in Hz; 0 for silent neurons.

    Examples
    --------
    >>> firing_rates([10.0, 20.0, 30.0, 40.0], [0, 0, 0, 1], 2, 0.0, 1000.0).tolist()
    [3.0, 1.0]
    """
    duration = _window(t_start_ms, t_stop_ms)
    times, ids = _events(times_ms, neurons, n_neurons)
    counts = _counts(times, ids, n_neurons, t_start_ms, duration, 1)[:, 0]
    return counts / (duration * 1e-3)


def isi_cv(trains: Sequence[np.ndarray], min_spikes: int = 3) -> np.ndarray:
    r"""Coefficient of variation of the inter-spike intervals of each train.

    With the intervals ``d_k = t_{k+1} - t_k`` of a train,

    .. math:: CV = \frac{\sigma(d)}{\mu(d)}

    using the population standard deviation (``ddof=0``, as
    ``scipy.stats.variation`` and Elephant's ``cv``). A perfectly regular train
    has CV 0; a Poisson process has exponential intervals and CV 1; bursting
    gives CV > 1.

    Parameters
    ----------
    trains : sequence of array_like
        Spike times of each train (any unit; CV is dimensionless), e.g. from
        :func:`spike_trains`. Sorted here, so any order will do.
    min_spikes : int
        Trains with fewer spikes get NaN: two spikes give a single interval, whose
        spread says nothing. At least 2.

    Returns
    -------
    ndarray, shape (len(trains),)
        CV per train; NaN where the train is too short or all its spikes coincide.

    Examples
    --------
    >>> isi_cv([[0.0, 10.0, 20.0, 30.0], [0.0, 1.0, 3.0], [5.0]]).round(3).tolist()
    [0.0, 0.333, nan]
    """
    if isinstance(min_spikes, bool) or not isinstance(min_spikes, (int, np.integer)) or min_spikes < 2:
        raise ValueError(f"isi_cv: min_spikes must be an integer >= 2, got {min_spikes!r}")
    out = np.full(len(trains), np.nan)
    for k, train in enumerate(trains):
        t = np.sort(np.asarray(train, dtype=np.float64).ravel())
        if t.size < min_spikes:
            continue
        isi = np.diff(t)
        mean = isi.mean()
        if mean > 0:
            out[k] = isi.std() / mean
    return out


def fano_factor(times_ms: np.ndarray, neurons: np.ndarray, n_neurons: int,
                t_start_ms: float, t_stop_ms: float, window_ms: float) -> np.ndarray:
    r"""Fano factor of each neuron's spike counts in consecutive windows.

    The window ``[t_start_ms, t_stop_ms)`` is cut into ``W`` windows of
    ``window_ms``; with ``c_w`` the spike count of a neuron in window ``w``,

    .. math:: F = \frac{\operatorname{Var}(c)}{\operatorname{E}(c)}
              = \frac{\frac{1}{W-1}\sum_w (c_w - \bar c)^2}{\bar c}

    The variance is the unbiased one (``ddof=1``), so a Poisson process gives
    F = 1 in expectation for any number of windows. A regular train whose
    period divides the window gives F = 0.

    Returns
    -------
    ndarray, shape (n_neurons,)
        F per neuron; NaN for neurons without spikes in the window (mean 0).

    Examples
    --------
    >>> fano_factor([5.0, 15.0, 25.0, 35.0, 1.0, 2.0, 3.0, 4.0],
    ...             [0, 0, 0, 0, 1, 1, 1, 1], 3, 0.0, 40.0, 10.0).tolist()
    [0.0, 4.0, nan]
    """
    times, ids = _events(times_ms, neurons, n_neurons)
    n_windows = _bin_count(t_start_ms, t_stop_ms, window_ms, "window_ms")
    if n_windows < 2:
        raise ValueError(f"fano_factor: the window [{t_start_ms}, {t_stop_ms}) ms holds "
                         f"{n_windows} window of {window_ms} ms; a variance needs at least 2")
    counts = _counts(times, ids, n_neurons, t_start_ms, window_ms, n_windows)
    mean = counts.mean(axis=1)
    var = counts.var(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, var / mean, np.nan)


def synchrony(times_ms: np.ndarray, neurons: np.ndarray, sample: Sequence[int],
              t_start_ms: float, t_stop_ms: float, bin_ms: float = 5.0) -> float:
    r"""Mean pairwise correlation of the binned spike counts of sampled neurons.

    The spikes of each neuron in ``sample`` are counted in bins of ``bin_ms``
    (``c_i(b)``), and for every pair the Pearson correlation coefficient is taken:

    .. math:: \rho_{ij} = \frac{\operatorname{Cov}(c_i, c_j)}
              {\sigma(c_i)\, \sigma(c_j)}, \qquad
              S = \frac{2}{K(K-1)} \sum_{i<j} \rho_{ij}

    ``S`` is 1 for identical trains, near 0 for independent ones (its spread
    shrinks with more bins) and negative for trains that avoid each other. It
    depends on the bin width: coincidences closer than ``bin_ms`` count as
    synchronous. Neurons whose counts do not vary (silent ones, and the rare ones
    with equal counts in every bin) have no defined correlation and are left out
    of the ``K`` neurons averaged over.

    Parameters
    ----------
    times_ms, neurons : array_like, shape (events,)
        Time (ms) and neuron index of every spike; spikes of neurons outside
        ``sample`` are ignored.
    sample : sequence of int
        Distinct indices of the neurons to compare (a few hundred keep it cheap:
        the cost grows as ``K**2`` times the number of bins).
    t_start_ms, t_stop_ms : float
        Window ``[t_start_ms, t_stop_ms)``.
    bin_ms : float
        Coincidence bin width.

    Returns
    -------
    float
        ``S``, or NaN when fewer than two sampled neurons have varying counts.

    Examples
    --------
    >>> synchrony([1.0, 1.5, 12.0, 12.5], [0, 1, 0, 1], [0, 1], 0.0, 20.0, 5.0)
    1.0
    """
    sample = np.asarray(sample)
    if sample.ndim != 1 or sample.size == 0 or not np.issubdtype(sample.dtype, np.integer):
        raise ValueError("synchrony: sample must be a non-empty 1-D sequence of neuron indices")
    if np.unique(sample).size != sample.size:
        raise ValueError("synchrony: sample has repeated neuron indices")
    if sample.min() < 0:
        raise ValueError(f"synchrony: sample has a negative neuron index ({sample.min()})")
    times = np.asarray(times_ms, dtype=np.float64)
    ids = np.asarray(neurons)
    _check_pair(times, ids)
    ids = ids.astype(np.int64, copy=False)
    # Renumber the sampled neurons 0..K-1 and drop the others before counting.
    n_ids = int(max(sample.max(), ids.max() if ids.size else 0)) + 1
    slot = np.full(n_ids, -1, dtype=np.int64)
    slot[sample] = np.arange(sample.size)
    keep = slot[ids] >= 0
    n_bins = _bin_count(t_start_ms, t_stop_ms, bin_ms, "bin_ms")
    counts = _counts(times[keep], slot[ids[keep]], sample.size, t_start_ms, bin_ms, n_bins)
    counts = counts[counts.std(axis=1) > 0]
    if counts.shape[0] < 2:
        return float("nan")
    rho = np.corrcoef(counts)
    upper = np.triu_indices(counts.shape[0], k=1)
    return float(rho[upper].mean())


# -- validation and counting -------------------------------------------------------------
def _check_pair(times: np.ndarray, ids: np.ndarray) -> None:
    if times.ndim != 1 or ids.ndim != 1:
        raise ValueError(f"times_ms and neurons must be 1-D arrays, got shapes {times.shape} "
                         f"and {ids.shape}")
    if times.size != ids.size:
        raise ValueError(f"times_ms and neurons must have the same length, got {times.size} "
                         f"and {ids.size}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"neurons must hold integer indices, got dtype {ids.dtype}")
    if not np.all(np.isfinite(times)):
        raise ValueError("times_ms holds NaN or infinite values")
    if ids.size and ids.min() < 0:
        raise ValueError(f"neurons holds a negative index ({ids.min()})")


def _events(times_ms: np.ndarray, neurons: np.ndarray, n_neurons: int) -> tuple[np.ndarray, np.ndarray]:
    """Checked (float64 times, int64 neuron indices)."""
    if isinstance(n_neurons, bool) or not isinstance(n_neurons, (int, np.integer)) or n_neurons < 1:
        raise ValueError(f"n_neurons must be a positive integer, got {n_neurons!r}")
    times = np.asarray(times_ms, dtype=np.float64)
    ids = np.asarray(neurons)
    _check_pair(times, ids)
    if ids.size and ids.max() >= n_neurons:
        raise ValueError(f"neurons holds index {ids.max()}, but n_neurons is {n_neurons}")
    return times, ids.astype(np.int64, copy=False)


def _window(t_start_ms: float, t_stop_ms: float) -> float:
    if not (np.isfinite(t_start_ms) and np.isfinite(t_stop_ms)):
        raise ValueError(f"t_start_ms and t_stop_ms must be finite, got {t_start_ms} and {t_stop_ms}")
    if t_stop_ms <= t_start_ms:
        raise ValueError(f"t_stop_ms ({t_stop_ms}) must be greater than t_start_ms ({t_start_ms})")
    return float(t_stop_ms - t_start_ms)


def _bin_count(t_start_ms: float, t_stop_ms: float, width_ms: float, name: str) -> int:
    """Number of whole bins of ``width_ms`` in the window."""
    duration = _window(t_start_ms, t_stop_ms)
    if not np.isfinite(width_ms) or width_ms <= 0:
        raise ValueError(f"{name} must be a positive number, got {width_ms}")
    n = int(np.floor(duration / width_ms + _EDGE_TOLERANCE))
    if n < 1:
        raise ValueError(f"{name} ({width_ms}) is longer than the window [{t_start_ms}, {t_stop_ms}) ms")
    return n


def _counts(times: np.ndarray, ids: np.ndarray, n_neurons: int, t_start_ms: float,
            width_ms: float, n_bins: int) -> np.ndarray:
    """Spike counts, shape (n_neurons, n_bins), of bins ``[t0 + w*b, t0 + w*(b+1))``."""
    b = np.floor((times - t_start_ms) / width_ms + _EDGE_TOLERANCE).astype(np.int64)
    inside = (b >= 0) & (b < n_bins)
    flat = ids[inside] * n_bins + b[inside]
    return np.bincount(flat, minlength=n_neurons * n_bins).reshape(n_neurons, n_bins).astype(np.float64)
