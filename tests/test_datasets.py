"""cnnlib.datasets: IDX parser, MNIST download/cache/fallback, the shipped sample, sample photos.

All offline: downloads go to a local HTTP server on 127.0.0.1 that serves tiny fake MNIST files,
and the sample / auto paths run with sockets disabled.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import struct
import threading

import numpy as np
import pytest

from cnnlib import datasets

DESIGN_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
N_FAKE = {"train": 6, "t10k": 3}


# ----------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """An IDX file holding ``array`` (big-endian), type code e.g. 0x08 for uint8."""
    big = array.astype(array.dtype.newbyteorder(">"))
    return struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape) + big.tobytes()


def fake_mnist_files(rng: np.random.Generator) -> dict[str, bytes]:
    """Four tiny gzip'ed IDX files with MNIST's names and layout (N x 28 x 28 uint8, N labels)."""
    files = {}
    for split, n in N_FAKE.items():
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        files[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images, 0x08), mtime=0)
        files[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels, 0x08), mtime=0)
    return files


@pytest.fixture
def fake_files(monkeypatch) -> dict[str, bytes]:
    """The fake files, with datasets.MNIST_FILES pointing at their md5s."""
    files = fake_mnist_files(np.random.default_rng(0))
    hashes = {name: "md5:" + hashlib.md5(data).hexdigest() for name, data in files.items()}
    monkeypatch.setattr(datasets, "MNIST_FILES", hashes)
    return files


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    """Never read or write the real user cache; never go through a proxy to 127.0.0.1."""
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path / "default-cache"))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to use the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


class FileServer:
    """http.server on an ephemeral 127.0.0.1 port, serving ``files`` under several behaviours.

    /good/NAME   the file
    /missing/    404 for everything
    /bad/NAME    the file with its bytes altered (wrong checksum)
    /cut/NAME    headers announce the full length, half the body is sent, connection closed
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                mode, _, name = self.path.strip("/").partition("/")
                body = server.files.get(name)
                if mode == "missing" or body is None:
                    self.send_error(404, "File not found")
                    return
                if mode == "bad":
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                sent = body[: len(body) // 2] if mode == "cut" else body
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(sent)
                self.close_connection = True

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def mirror(self, mode: str) -> str:
        return f"{self.url}/{mode}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(fake_files):
    srv = FileServer(fake_files)
    yield srv
    srv.close()


@pytest.fixture
def closed_port_mirror() -> str:
    """A mirror URL on a port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def assert_clean(folder, names):
    """No file with a target name, and no stray temporary file, in ``folder``."""
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert not [n for n in left if n in names], left
    assert left == [], f"stray files left in the cache: {left}"


# ----------------------------------------------------------------------------- parse_idx


@pytest.mark.parametrize(
    "array, code",
    [
        (np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28), 0x08),
        (np.array([5, 0, 4, 1, 9], dtype=np.uint8), 0x08),
        (np.array([[-3, 7]], dtype=np.int8), 0x09),
        (np.array([[-300, 7], [1, 2]], dtype=np.int16), 0x0B),
        (np.array([-70000, 3], dtype=np.int32), 0x0C),
        (np.array([[0.5, -1.25]], dtype=np.float32), 0x0D),
        (np.array([1e300, -2.0], dtype=np.float64), 0x0E),
    ],
)
@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("as_path", [False, True])
def test_parse_idx_round_trip(tmp_path, array, code, compressed, as_path):
    raw = idx_bytes(array, code)
    if compressed:
        raw = gzip.compress(raw)
    source = raw
    if as_path:
        source = tmp_path / ("data.idx.gz" if compressed else "data.idx")
        source.write_bytes(raw)
    out = datasets.parse_idx(source)
    assert out.dtype == array.dtype and out.dtype.isnative
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"\x00\x00", ["too short"]),
        (b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00", ["not an IDX file", "0x12340801"]),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", ["unknown IDX type code 0x07"]),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), ["truncated", "header"]),
        (b"\x00\x00\x08\x00", ["0 dimensions"]),
        (idx_bytes(np.zeros((3, 4), np.uint8), 0x08)[:-5], ["truncated", "(3, 4)", "12", "7"]),
        (idx_bytes(np.zeros(3, np.int32), 0x0C) + b"\x00", ["longer than its header says"]),
        (gzip.compress(idx_bytes(np.zeros((9, 9), np.uint8), 0x08))[:-10], ["gzip", "truncated or corrupted"]),
    ],
    ids=["short", "magic", "dtype-code", "short-header", "ndim-0", "truncated", "too-long", "cut-gzip"],
)
def test_parse_idx_malformed(raw, words):
    with pytest.raises(ValueError) as info:
        datasets.parse_idx(raw)
    message = str(info.value)
    assert message.startswith("parse_idx:")
    for word in words:
        assert word in message


def test_parse_idx_names_the_file_and_rejects_other_types(tmp_path):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="broken-idx3-ubyte"):
        datasets.parse_idx(path)
    with pytest.raises(TypeError, match="path or bytes"):
        datasets.parse_idx(12)


# ----------------------------------------------------------------------------- download


def test_md5_table_matches_design():
    assert datasets.MNIST_FILES == {name: "md5:" + md5 for name, md5 in DESIGN_MD5.items()}
    assert datasets.MNIST_MIRRORS[:2] == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )


def test_download_caches_and_second_call_stays_offline(server, fake_files, tmp_path):
    cache = tmp_path / "cache"
    (X_train, y_train), (X_test, y_test), used = datasets.load_mnist(
        "full", cache_dir=cache, progress=False, mirrors=[server.mirror("good")], return_source=True
    )
    assert used == "full"
    assert X_train.shape == (N_FAKE["train"], 1, 28, 28) and X_test.shape == (N_FAKE["t10k"], 1, 28, 28)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    expected = datasets.parse_idx(fake_files["train-images-idx3-ubyte.gz"])
    np.testing.assert_allclose(X_train[:, 0] * 255, expected, atol=1e-4)
    np.testing.assert_array_equal(y_test, datasets.parse_idx(fake_files["t10k-labels-idx1-ubyte.gz"]))

    assert sorted(p.name for p in cache.iterdir()) == sorted(fake_files)  # no temp files left
    for name, data in fake_files.items():
        assert (cache / name).read_bytes() == data
    assert len(server.hits) == 4

    datasets.load_mnist("full", cache_dir=cache, progress=False, mirrors=[server.mirror("good")])
    datasets.load_mnist("full", cache_dir=cache, progress=True, mirrors=[server.mirror("missing")])
    assert len(server.hits) == 4  # served from the cache


def test_progress_bar_and_cache_from_environment(server, fake_files, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path / "env-cache"))
    paths = datasets.download_mnist(progress=True, mirrors=[server.mirror("good")])
    assert {p.parent for p in paths.values()} == {tmp_path / "env-cache"}
    out, err = capfd.readouterr()
    assert out == "" and "100%" in err  # pooch's tqdm bar, on stderr

    datasets.download_mnist(tmp_path / "quiet", progress=False, mirrors=[server.mirror("good")])
    assert capfd.readouterr() == ("", "")


def test_falls_back_to_next_mirror(server, fake_files, tmp_path, closed_port_mirror):
    cache = tmp_path / "cache"
    mirrors = [closed_port_mirror, server.mirror("missing"), server.mirror("good")]
    paths = datasets.download_mnist(cache, progress=False, mirrors=mirrors)
    assert sorted(paths) == sorted(fake_files)
    assert sorted(p.name for p in cache.iterdir()) == sorted(fake_files)
    assert [h.split("/")[1] for h in server.hits].count("good") == 4


def test_all_mirrors_fail_lists_each_one(server, fake_files, tmp_path, closed_port_mirror):
    cache = tmp_path / "cache"
    mirrors = [server.mirror("missing"), closed_port_mirror]
    with pytest.raises(datasets.DownloadError) as info:
        datasets.load_mnist("full", cache_dir=cache, progress=False, mirrors=mirrors)
    message = str(info.value)
    first = next(iter(fake_files))
    assert server.mirror("missing") + first in message and "HTTP 404" in message
    assert closed_port_mirror + first in message and "connection failed" in message
    assert "source='sample'" in message and str(cache) in message and "No partial" in message
    assert_clean(cache, fake_files)


@pytest.mark.parametrize("mode, words", [("bad", ["checksum mismatch"]), ("cut", ["cut off"])])
def test_corrupt_download_leaves_nothing_in_cache(server, fake_files, tmp_path, mode, words):
    cache = tmp_path / "cache"
    with pytest.raises(datasets.DownloadError) as info:
        datasets.download_mnist(cache, progress=False, mirrors=[server.mirror(mode)])
    message = str(info.value)
    assert server.mirror(mode) in message
    for word in words:
        assert word in message
    assert_clean(cache, fake_files)


def test_corrupt_mirror_then_good_mirror(server, fake_files, tmp_path):
    cache = tmp_path / "cache"
    datasets.download_mnist(
        cache, progress=False, mirrors=[server.mirror("cut"), server.mirror("bad"), server.mirror("good")]
    )
    for name, data in fake_files.items():
        assert (cache / name).read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == sorted(fake_files)


def test_corrupt_cached_file_is_replaced(server, fake_files, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    for name, data in fake_files.items():
        (cache / name).write_bytes(data)
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    datasets.download_mnist(cache, progress=False, mirrors=[server.mirror("good")])
    assert server.hits == ["/good/t10k-labels-idx1-ubyte.gz"]
    assert (cache / "t10k-labels-idx1-ubyte.gz").read_bytes() == fake_files["t10k-labels-idx1-ubyte.gz"]


# ----------------------------------------------------------------------------- sample and auto


def test_sample_loads_offline(no_network):
    (X_train, y_train), (X_test, y_test), used = datasets.load_mnist("sample", return_source=True)
    assert used == "sample"
    assert X_train.shape == (4000, 1, 28, 28) and X_test.shape == (1000, 1, 28, 28)
    assert X_train.dtype == X_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert X_train.min() == 0.0 and X_train.max() == 1.0 and X_test.max() == 1.0
    assert np.all(np.bincount(y_train, minlength=10) == 400)
    assert np.all(np.bincount(y_test, minlength=10) == 100)
    assert len(set(y_train[:100])) == 10  # shuffled, not sorted by label
    assert X_train.flags.c_contiguous and X_train.flags.writeable


def test_sample_file_integrity(monkeypatch):
    raw = datasets.SAMPLE_PATH.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == datasets.SAMPLE_SHA256
    assert len(raw) < 2_000_000
    with np.load(datasets.SAMPLE_PATH) as npz:
        train, test = set(npz["idx_train"].tolist()), set(npz["idx_test"].tolist())
        assert not train & test and len(train | test) == 5000
        assert npz["x_train"].dtype == np.uint8 and npz["x_train"].max() == 255
    monkeypatch.setattr(datasets, "SAMPLE_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="corrupted"):
        datasets.load_mnist("sample")


def test_auto_uses_sample_when_nothing_cached(no_network, tmp_path, caplog):
    caplog.set_level("INFO", logger="cnnlib.datasets")
    (X_train, _), _, used = datasets.load_mnist("auto", cache_dir=tmp_path / "empty", return_source=True)
    assert used == "sample" and X_train.shape == (4000, 1, 28, 28)
    assert "sample" in caplog.text and "load_mnist('full')" in caplog.text
    assert not (tmp_path / "empty").exists()  # auto never creates or downloads anything


def test_auto_uses_sample_when_partly_cached(no_network, fake_files, tmp_path):
    for name in list(fake_files)[:3]:
        (tmp_path / name).write_bytes(fake_files[name])
    *_, used = datasets.load_mnist(cache_dir=tmp_path, return_source=True)
    assert used == "sample"


def test_auto_picks_full_when_cached(no_network, fake_files, tmp_path, monkeypatch, caplog):
    for name, data in fake_files.items():
        (tmp_path / name).write_bytes(data)
    caplog.set_level("INFO", logger="cnnlib.datasets")
    (X_train, y_train), (X_test, y_test), used = datasets.load_mnist(cache_dir=tmp_path, return_source=True)
    assert used == "full" and "full MNIST" in caplog.text
    assert X_train.shape == (N_FAKE["train"], 1, 28, 28) and y_test.shape == (N_FAKE["t10k"],)
    # the default tuple form, with the cache found through $CNNLIB_DATA
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path))
    (X2, _), _ = datasets.load_mnist()
    np.testing.assert_array_equal(X2, X_train)


def test_default_cache_dir(monkeypatch):
    import pooch

    monkeypatch.delenv("CNNLIB_DATA")
    assert datasets._cache_dir(None) == pooch.os_cache("cnnlib")


@pytest.mark.parametrize("bad", ["mnist", "FULL", None, ""])
def test_bad_source(bad):
    with pytest.raises(ValueError, match="'auto', 'full', 'sample'"):
        datasets.load_mnist(bad)


# ----------------------------------------------------------------------------- photos


def test_sample_image_rgb_and_gray():
    rgb = datasets.sample_image()
    assert rgb.shape == (600, 512, 3) and rgb.dtype == np.uint8
    gray = datasets.sample_image("grace_hopper", gray=True)
    assert gray.shape == (600, 512) and gray.dtype == np.uint8
    expected = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
    np.testing.assert_array_equal(gray, expected)

    for dtype in (np.float32, np.float64):
        f = datasets.sample_image(gray=True, dtype=dtype)
        assert f.dtype == dtype and f.shape == (600, 512)
        assert 0.0 <= f.min() and f.max() <= 1.0
        np.testing.assert_allclose(f * 255, gray, atol=0.5)
    frgb = datasets.sample_image(dtype=np.float32)
    np.testing.assert_allclose(frgb * 255, rgb, atol=1e-3)


def test_sample_image_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="'grace_hopper'.*'ascent'"):
        datasets.sample_image("lena")
    with pytest.raises(ValueError, match="dtype"):
        datasets.sample_image(dtype=np.int32)
    monkeypatch.setattr(datasets, "_scipy_cache_dir", lambda: tmp_path)
    assert datasets.available_sample_images() == ["grace_hopper"]
    with pytest.raises(FileNotFoundError, match="one-time download.*scipy.datasets.ascent()"):
        datasets.sample_image("ascent")
