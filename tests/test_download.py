"""The first-use downloader against a real HTTP server on 127.0.0.1."""

import hashlib
import http.server
import socket
import threading

import pytest

from matting import DownloadError, WeightsError
from matting.weights import KnownWeights, download, ensure_weights

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB
DIGEST = hashlib.blake2b(PAYLOAD, digest_size=64).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/good.bin"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path.endswith("/cut.bin"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.send_error(404, "Not Found")


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_good_file_lands_after_checksum(server, tmp_path):
    known = KnownWeights("good.bin", DIGEST, url=f"{server}/models/good.bin")
    path = ensure_weights(known, tmp_path, offline=False, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["good.bin"]
    # second call uses the file without the network
    assert ensure_weights(known, tmp_path, offline=True) == path


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    known = KnownWeights("good.bin", "0" * 128, url=f"{server}/models/good.bin")
    with pytest.raises(WeightsError, match="checksum mismatch"):
        ensure_weights(known, tmp_path, offline=False, progress=False)
    assert leftovers(tmp_path) == []


def test_404(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/models/missing.bin", tmp_path / "x.bin", progress=False)
    assert leftovers(tmp_path) == []


def test_connection_refused(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    known = KnownWeights("w.ckpt", DIGEST, url=f"http://127.0.0.1:{port}/w.ckpt")
    with pytest.raises(WeightsError) as err:
        ensure_weights(known, tmp_path, offline=False, progress=False, timeout=5)
    text = str(err.value)
    assert "w.ckpt" in text and str(tmp_path) in text and known.url in text
    assert leftovers(tmp_path) == []


def test_connection_cut_mid_file(server, tmp_path):
    with pytest.raises(DownloadError):
        download(f"{server}/models/cut.bin", tmp_path / "cut.bin", expected_blake2b=DIGEST, progress=False)
    assert leftovers(tmp_path) == []


def test_validation_failure_leaves_nothing(server, tmp_path):
    def reject(path):
        raise ValueError("wrong input shape")

    with pytest.raises(DownloadError, match="wrong input shape"):
        download(f"{server}/models/good.bin", tmp_path / "good.bin", validate=reject, progress=False)
    assert leftovers(tmp_path) == []


def test_mirror_environment_variable(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MODNET_WEIGHTS_MIRROR", f"{server}/models")
    known = KnownWeights("good.bin", DIGEST)
    assert known.download_url() == f"{server}/models/good.bin"
    assert ensure_weights(known, tmp_path, offline=False, progress=False).exists()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_never_touches_network(tmp_path, monkeypatch, how):
    def no_network(*args, **kwargs):
        raise AssertionError("network used in offline mode")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    known = KnownWeights("modnet_webcam_portrait_matting.ckpt", DIGEST, url="https://example.invalid/w.ckpt")
    if how == "env":
        monkeypatch.setenv("MODNET_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        ensure_weights(known, tmp_path, offline=True if how == "flag" else None)
    text = str(err.value)
    assert "modnet_webcam_portrait_matting.ckpt" in text and str(tmp_path) in text and known.url in text
