"""The model registry and downloads, against a real HTTP server on 127.0.0.1."""
import hashlib
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from deepdream.io import frames
from deepdream.nets import registry as models
from deepdream.nets.loading import random_net
from deepdream.errors import ModelError

from conftest import FIXTURES, ROOT

TINY = (FIXTURES / "tiny_googlenet.caffemodel").read_bytes()


class Server:
    """Serves ``files`` with HTTP Range support; ``cut_after`` bytes of a body, the connection
    is dropped (a download broken off halfway); with ``no_length`` it sends no
    Content-Length (the end of the body is where the connection closes)."""

    def __init__(self):
        self.files, self.requests, self.cut_after, self.no_length = {}, [], None, False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                data = server.files.get(name)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/"
                                                      f"{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if not server.no_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    self.wfile.write(body[:server.cut_after])
                    server.cut_after = None
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def test_registry(tmp_path, monkeypatch):
    """A registry of one model whose weights are the tiny Caffe fixture, and a fresh cache."""
    folder = tmp_path / "models"
    (folder / "tiny").mkdir(parents=True)
    (folder / "tiny" / "deploy.prototxt").write_bytes(
        (FIXTURES / "tiny_googlenet.prototxt").read_bytes())
    entry = json.loads((models.MODELS_DIR / "registry.json").read_text())["bvlc_googlenet"]
    entry["weights"] = {"url": "http://127.0.0.1:9/tiny.caffemodel", "file": "tiny.caffemodel",
                        "size": len(TINY), "sha1": hashlib.sha1(TINY).hexdigest()}
    (folder / "registry.json").write_text(json.dumps({"tiny": entry}))
    monkeypatch.setenv("DEEPDREAM_MODELS", str(folder))
    monkeypatch.setenv("DEEPDREAM_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DEEPDREAM_MIRROR", raising=False)
    return folder


def test_fresh_download_then_cache_hit_without_a_request(server, test_registry):
    server.files["tiny.caffemodel"] = TINY
    path = models.fetch("tiny", mirror=server.url, progress=False)
    assert path.read_bytes() == TINY and path.parent.parent.name == "cache"
    assert server.requests == [("tiny.caffemodel", None)]
    assert models.fetch("tiny", mirror=server.url, progress=False) == path
    assert len(server.requests) == 1
    assert not list(path.parent.glob("*.part"))


def test_download_cut_off_halfway_resumes_with_range(server, test_registry):
    server.files["tiny.caffemodel"] = TINY
    server.cut_after = len(TINY) // 2
    with pytest.raises(ModelError, match="broke off.*again to resume"):
        models.fetch("tiny", mirror=server.url, progress=False)
    part = models.cache_dir() / "tiny" / "tiny.caffemodel.part"
    assert part.stat().st_size == len(TINY) // 2
    path = models.fetch("tiny", mirror=server.url, progress=False)
    assert path.read_bytes() == TINY
    assert server.requests[-1] == ("tiny.caffemodel", f"bytes={len(TINY) // 2}-")


def test_mirror_from_the_environment(server, test_registry, monkeypatch):
    server.files["tiny.caffemodel"] = TINY
    monkeypatch.setenv("DEEPDREAM_MIRROR", server.url + "/")
    assert models.fetch("tiny", progress=False).read_bytes() == TINY


def test_checksum_mismatch_deletes_the_file(server, test_registry):
    server.files["tiny.caffemodel"] = TINY[:-10] + b"0123456789"
    with pytest.raises(ModelError, match="sha1 .* not the published .* deleted"):
        models.fetch("tiny", mirror=server.url, progress=False)
    assert not list((models.cache_dir() / "tiny").iterdir())


def test_404_names_the_url_and_where_to_put_the_file(server, test_registry):
    with pytest.raises(ModelError, match=r"HTTP 404.*by hand.*tiny.caffemodel"):
        models.fetch("tiny", mirror=server.url, progress=False)


def test_unreachable_server_says_offline(test_registry):
    import socket
    with socket.socket() as s:   # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelError, match="cannot reach .*offline.*by hand"):
        models.fetch("tiny", mirror=f"http://127.0.0.1:{port}", progress=False)


def test_weights_put_by_hand_in_models_folder_are_used(test_registry, server):
    (test_registry / "tiny" / "tiny.caffemodel").write_bytes(TINY)
    assert models.fetch("tiny", mirror=server.url, progress=False) == \
        test_registry / "tiny" / "tiny.caffemodel"
    assert server.requests == []


def test_weights_put_by_hand_are_checked_once_against_the_published_sha1(test_registry,
                                                                          server, caplog):
    placed = test_registry / "tiny" / "tiny.caffemodel"
    damaged = bytearray(TINY)
    damaged[len(TINY) // 2] ^= 0xFF                   # one flipped byte: the same size
    placed.write_bytes(bytes(damaged))
    with pytest.raises(ModelError, match=r"tiny.caffemodel has sha1 \w+, not the published "
                                         r".*damaged or another file"):
        models.fetch("tiny", mirror=server.url, progress=False)
    assert placed.read_bytes() == bytes(damaged) and server.requests == []   # left alone
    placed.write_bytes(TINY)
    assert models.fetch("tiny", progress=False) == placed
    # remembered: once the file has settled (2 s), the same file is not read again...
    time.sleep(models.SETTLED_NS / 1e9 + 0.1)
    with caplog.at_level(logging.DEBUG, logger="deepdream.nets.registry"):
        assert models.fetch("tiny", progress=False) == placed      # read: it had just changed
        assert models.fetch("tiny", progress=False) == placed      # remembered
    assert caplog.text.count("reading the sha1") == 1
    # ...but one damaged since is read again, even with its size and modification time
    stamp = placed.stat().st_mtime_ns
    placed.write_bytes(bytes(damaged))
    os.utime(placed, ns=(stamp, stamp))
    assert placed.stat().st_size == len(TINY) and placed.stat().st_mtime_ns == stamp
    with pytest.raises(ModelError, match="not the published"):
        models.fetch("tiny", progress=False)
    placed.write_bytes(TINY[:-100])
    with pytest.raises(ModelError,
                       match=rf"is {len(TINY) - 100} bytes, not the published {len(TINY)}"):
        models.fetch("tiny", progress=False)


def test_a_download_without_content_length_is_checked_by_the_published_size(
        server, test_registry):
    server.files["tiny.caffemodel"] = TINY
    server.no_length, server.cut_after = True, len(TINY) // 3
    with pytest.raises(ModelError, match=rf"broke off at {len(TINY) // 3} of {len(TINY)} "
                                         "bytes; run the same command again"):
        models.fetch("tiny", mirror=server.url, progress=False)
    assert models.fetch("tiny", mirror=server.url, progress=False).read_bytes() == TINY
    assert server.requests[-1] == ("tiny.caffemodel", f"bytes={len(TINY) // 3}-")


def test_a_download_of_another_size_is_refused_where_no_sha1_was_published(
        server, test_registry):
    registry = json.loads((test_registry / "registry.json").read_text())
    registry["tiny"]["weights"]["sha1"] = None
    (test_registry / "registry.json").write_text(json.dumps(registry))
    server.files["tiny.caffemodel"] = TINY + b"<html>a mirror's error page</html>"
    server.no_length = True
    with pytest.raises(ModelError, match=rf"sent {len(TINY) + 34} bytes, not the published "
                                         rf"{len(TINY)}: it is another file \(deleted\)"):
        models.fetch("tiny", mirror=server.url, progress=False)
    assert not list((models.cache_dir() / "tiny").iterdir())


def run_dreaming(tmp_path, *args):
    from deepdream.io import frames
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    frames.write_frame(src / "00000001.png", np.full((40, 50, 3), 120))
    return subprocess.run(
        [sys.executable, str(ROOT / "2_dreaming_time.py"), "-i", str(src), "-o",
         str(tmp_path / "out"), "-oct", "1", "-itr", "1", "-l", "inception_3b/output", *args],
        capture_output=True, text=True)


def test_dreaming_with_a_named_model_through_a_mirror(server, test_registry, tmp_path):
    server.files["tiny.caffemodel"] = TINY
    resolved = models.resolve("tiny", mirror=server.url, progress=False)
    assert resolved.deploy == test_registry / "tiny" / "deploy.prototxt"
    assert resolved.entry.mean_bgr == (104.0, 116.0, 122.0)
    result = run_dreaming(tmp_path, "--model", "tiny", "--mirror", server.url)
    assert result.returncode == 0, result.stderr
    # dreamed with the mirror's file, as it was fetched into the cache
    params = json.loads((tmp_path / "out" / "params.json").read_text())
    assert params["model"] == str(resolved.caffemodel.resolve())
    assert params["model_sha1"] == hashlib.sha1(TINY).hexdigest()
    dreamed = frames.read_frame(tmp_path / "out" / "00000001.png").astype(np.float32)
    assert np.abs(dreamed - 120).mean() > 0.5                  # a dream, not the frame
    assert len(server.requests) == 1       # fetched once, by resolve() above


def test_a_corrupt_mirror_file_is_refused_by_the_published_checksum(server, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setenv("DEEPDREAM_HOME", str(tmp_path / "cache"))
    server.files["bvlc_googlenet.caffemodel"] = TINY   # not the published bvlc_googlenet
    result = run_dreaming(tmp_path, "--model", "bvlc_googlenet", "--mirror", server.url)
    assert result.returncode == 1 and "not the published" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache" / "bvlc_googlenet" / "bvlc_googlenet.caffemodel").exists()


def models_command(*args):
    return subprocess.run([sys.executable, "-m", "deepdream.models", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_models_command_line_lists_the_registry(monkeypatch):
    monkeypatch.delenv("DEEPDREAM_MODELS", raising=False)
    result = models_command("list")
    assert result.returncode == 0
    for name in ("bvlc_googlenet", "googlenet_places365", "vgg16", "resnet50"):
        assert name in result.stdout


def test_models_command_line_downloads_and_tells_the_path(server, test_registry):
    server.files["tiny.caffemodel"] = TINY
    result = models_command("download", "tiny", "--mirror", server.url, "-q")
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip().splitlines()[-1]
    assert open(path, "rb").read() == TINY
    assert models_command("path", "tiny").stdout.strip() == path
    assert "here" in models_command("list").stdout
    unknown = models_command("download", "nonet")
    assert unknown.returncode == 1 and "unknown model 'nonet'" in unknown.stderr


def test_every_registry_entry_is_complete():
    entries = models.registry()
    assert {"bvlc_googlenet", "googlenet_places205", "googlenet_places365",
            "bvlc_reference_caffenet", "bvlc_alexnet", "vgg16", "vgg19",
            "resnet50"} <= set(entries)
    published = {"bvlc_googlenet": "405fc5acd08a3bb12de8ee5e23a96bec22f08204",
                 "bvlc_reference_caffenet": "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46",
                 "bvlc_alexnet": "9116a64c0fbe4459d18f4bb6b56d647b63920377"}
    for name, e in entries.items():
        assert e.url.startswith("http") and e.deploy_url.startswith("http") and e.file
        assert e.deploy.is_file() and len(e.mean_bgr) == 3 and e.channel_order == "BGR"
        assert e.layers and e.licence and e.title
        assert e.sha1 == published.get(name)
        assert e.sha1 or "cannot be verified" in e.sha1_source


@pytest.mark.parametrize("name", sorted(json.loads(
    (models.MODELS_DIR / "registry.json").read_text())))
def test_every_deploy_runs_to_each_listed_layer(name):
    e = models.entry(name)
    net = random_net(e.deploy, device="cpu")
    x = np.zeros((1, 3, 224, 224), np.float32)
    for layer in dict.fromkeys(e.layers):
        out = net.forward(x, layer)
        assert out.ndim == 4 and min(out.shape[2:]) >= 1, (name, layer, out.shape)
