"""Data set loaders (on the shared offline copy; nothing is downloaded) and spike encoders."""

import gzip
import os
import shutil

import numpy as np
import pytest

import neurosim as ns
from neurosim.datasets import (DatasetError, latency_code, load_fashion_mnist, load_mnist,
                               poisson_spikes, rate_code)

from data_paths import DATASETS as SHARED, requires_datasets  # noqa: E402

pytestmark = requires_datasets


@pytest.mark.parametrize("loader, name", [(load_mnist, "mnist"), (load_fashion_mnist, "fashion-mnist")])
def test_shapes_dtypes_and_labels(loader, name):
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = loader(split, os.path.join(SHARED, name))
        assert x.shape == (n, 28, 28) and x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.uint8
        assert y.min() == 0 and y.max() == 9 and len(np.unique(y)) == 10
        assert x.max() == 255 and x.min() == 0


def test_environment_variable_locates_the_data(monkeypatch):
    monkeypatch.setenv("NEUROSIM_DATA", SHARED)
    x, y = load_mnist("test")
    assert x.shape == (10000, 28, 28) and y[0] == 7


def test_raw_files_load_and_corrupt_files_fail_the_checksum(tmp_path):
    src = os.path.join(SHARED, "mnist")
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(os.path.join(src, stem + ".gz"), "rb") as fh:
            (tmp_path / stem).write_bytes(fh.read())  # raw, uncompressed
    x, y = load_mnist("test", tmp_path)
    assert x.shape == (10000, 28, 28)
    data = bytearray((tmp_path / "t10k-images-idx3-ubyte").read_bytes())
    data[5000] ^= 0xFF
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_mnist("test", tmp_path)


def test_missing_directory_says_where_it_looked_and_what_to_do(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="looked in .*nowhere.*download=True"):
        load_mnist("train", missing)
    with pytest.raises(ValueError, match="split must be"):
        load_mnist("validation", os.path.join(SHARED, "mnist"))


def test_truncated_gzip_is_a_clear_error(tmp_path):
    shutil.copy(os.path.join(SHARED, "mnist", "t10k-labels-idx1-ubyte.gz"), tmp_path)
    shutil.copy(os.path.join(SHARED, "mnist", "t10k-images-idx3-ubyte.gz"), tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="not a valid gzip file"):
        load_mnist("test", tmp_path)


def test_poisson_encoding_counts_match_intensity_times_duration():
    images = np.tile(np.array([[0, 64, 128, 255]], dtype=np.uint8), (50, 1))
    rates = rate_code(images)                       # 0, 16, 32, 63.75 Hz
    spikes = poisson_spikes(rates, 2000.0, 0.5, seed=3)
    counts = spikes.sum(0)                          # (50 samples, 4 inputs)
    expected = rates[0] * 2.0
    assert np.all(counts[:, 0] == 0)
    se = np.sqrt(expected[1:] / 50)                 # standard error of the mean count
    assert np.all(np.abs(counts[:, 1:].mean(0) - expected[1:]) < 4 * se)
    assert not np.array_equal(spikes[:, 0], spikes[:, 1])  # each sample its own draws
    assert np.array_equal(spikes, poisson_spikes(rates, 2000.0, 0.5, seed=3))


def test_rate_code_drives_a_poisson_source_per_sample():
    x, _ = load_mnist("test", os.path.join(SHARED, "mnist"))
    net = ns.Network(dt=0.5, seed=1, batch=4)
    src = net.population(784, ns.PoissonSource(), name="input")
    src.set_parameters(rate=rate_code(x[:4]))
    net.spike_monitor(src)
    net.run(350.0, progress=False)
    steps, neurons, rows = net.reader().spikes("input")
    for b in range(4):
        counts = np.bincount(neurons[rows == b], minlength=784)
        expected = rate_code(x[b:b + 1])[0] * 0.35
        assert counts[expected == 0].sum() == 0
        assert abs(counts.sum() - expected.sum()) < 4 * np.sqrt(expected.sum())


def test_latency_code_orders_spikes_by_intensity():
    images = np.array([[10, 200, 0, 255, 100]], dtype=np.uint8)
    times, neurons, rows = latency_code(images, window_ms=50.0)
    assert neurons.tolist() == [3, 1, 4, 0]        # brightest first; zero never fires
    assert times[0] == 0.0 and np.all(np.diff(times) > 0) and rows.tolist() == [0, 0, 0, 0]
    net = ns.Network(dt=0.1, batch=1)
    gen = net.population(5, ns.SpikeGenerator(times, neurons, batch=rows), name="gen")
    net.spike_monitor(gen)
    net.run(60.0, progress=False)
    assert net.reader().spikes("gen")[1].tolist() == [3, 1, 4, 0]


def test_present_shows_batches_with_rest_and_counts_spikes(engine):
    from neurosim.datasets import present

    x, _ = load_mnist("test", os.path.join(SHARED, "mnist"))
    images = x[:5]
    net = ns.Network(dt=0.5, seed=2, batch=2, **engine)
    src = net.population(784, ns.PoissonSource(), name="input")
    counter = net.spike_counter(src)
    net.spike_monitor(src)
    seen = []
    for idx, counts in present(net, src, images, duration_ms=200.0, rest_ms=100.0,
                               counters=[counter]):
        c = counts["input"].cpu().numpy()
        assert c.shape == (len(idx), 784)
        expected = rate_code(images[idx]) * 0.2
        assert np.all(c[expected == 0] == 0)
        assert np.all(np.abs(c.sum(1) - expected.sum(1)) < 4 * np.sqrt(expected.sum(1)))
        seen.extend(idx.tolist())
    assert seen == [0, 1, 2, 3, 4]
    assert net.time_ms == pytest.approx(3 * 300.0)
    steps, _, rows = net.reader().spikes("input")
    phase = (steps * 0.5) % 300.0
    assert np.all(phase < 200.0)  # nothing during the rest periods
    assert not np.any((steps * 0.5 >= 600.0) & (rows == 1))  # the padded row of the last batch
