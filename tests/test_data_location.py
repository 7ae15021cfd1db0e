"""Finding the data: both forms of a data folder, the tests' own search, and an offline
download that fails fast, says what to do next and leaves nothing behind."""

import dataclasses
import importlib
import importlib.util
import os
import time

import pytest

import neurosim.datasets.mnist as mnist_module
from neurosim.datasets import DatasetNotFoundError, DownloadError, load_mnist

import data_paths
from data_paths import DATASETS, requires_datasets

EXAMPLE = os.path.join(data_paths.ROOT, "examples", "mnist_stdp.py")


@requires_datasets
@pytest.mark.parametrize("form", ["parent", "folder"])
def test_environment_variable_and_argument_take_the_folder_or_its_parent(monkeypatch, form):
    given = DATASETS if form == "parent" else os.path.join(DATASETS, "mnist")
    monkeypatch.setenv("NEUROSIM_DATA", given)
    x, y = load_mnist("test")
    assert x.shape == (10000, 28, 28) and y[0] == 7
    monkeypatch.delenv("NEUROSIM_DATA")
    x, _ = load_mnist("test", given)
    assert x.shape == (10000, 28, 28)


def test_the_tests_honour_neurosim_data(monkeypatch, tmp_path):
    (tmp_path / "mnist").mkdir()
    for value in (str(tmp_path), str(tmp_path / "mnist")):
        monkeypatch.setenv("NEUROSIM_DATA", value)
        reloaded = importlib.reload(data_paths)
        assert reloaded.DATASETS == str(tmp_path)
        assert reloaded.MNIST == str(tmp_path / "mnist")
    files = tmp_path / "idx"  # a folder of any name holding the files themselves
    files.mkdir()
    (files / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    monkeypatch.setenv("NEUROSIM_DATA", str(files))
    assert importlib.reload(data_paths).MNIST == str(files)
    monkeypatch.delenv("NEUROSIM_DATA")
    importlib.reload(data_paths)


@pytest.fixture
def offline(monkeypatch):
    """Mirrors that refuse connections at once (a closed local port)."""
    monkeypatch.setattr(mnist_module, "MNIST",
                        dataclasses.replace(mnist_module.MNIST, mirrors=("http://127.0.0.1:9/",)))
    monkeypatch.setattr(mnist_module, "DOWNLOAD_TIMEOUT_S", 2.0)


def test_offline_download_fails_fast_and_leaves_no_empty_folders(offline, tmp_path):
    target = tmp_path / "new" / "mnist"
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match="offline") as info:
        load_mnist("test", target, download=True)
    assert time.perf_counter() - t0 < 10
    assert info.value.target == str(target)
    assert not (tmp_path / "new").exists()  # the folders it made for the download are gone
    # a parent folder gets the data set's own subfolder (MNIST and Fashion-MNIST share names)
    with pytest.raises(DownloadError) as info:
        load_mnist("test", tmp_path / "parent", download=True)
    assert info.value.target == str(tmp_path / "parent" / "mnist")


def _example():
    spec = importlib.util.spec_from_file_location("mnist_stdp_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_names_flags_when_data_is_missing_or_offline(offline, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NEUROSIM_DATA", raising=False)
    example = _example()
    log = str(tmp_path / "m.h5")
    assert example.main(["--data", str(tmp_path / "none"), "--log", log, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--data DIR" in err and "NEUROSIM_DATA" in err and "--download" in err
    assert "download=True" not in err and "Traceback" not in err
    assert example.main(["--data", str(tmp_path / "none"), "--download", "--log", log,
                         "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "could not download" in err and "--data DIR" in err and "t10k-labels-idx1-ubyte.gz" in err
    assert not (tmp_path / "none").exists()
    assert not os.path.exists(log)


def test_missing_data_error_lists_the_search_order(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test", also_look_in=[str(tmp_path / "beside")])
    searched = info.value.searched
    assert searched[:5] == [str(tmp_path / "env"), str(tmp_path / "env" / "mnist"),
                            str(tmp_path / "beside"), str(tmp_path / "beside" / "mnist"),
                            str(tmp_path / "home" / ".cache" / "neurosim" / "datasets" / "mnist")]
