"""The model registry (models/registry.json) and verified, resumable downloads into a cache.

    python -m deepdream.models list
    python -m deepdream.models download NAME [--mirror BASE_URL]
    python -m deepdream.models path NAME
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import http.client
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import ModelError, first_line
from ..io.frames import sha1_of
from ..progress import Display, start as start_progress

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"     # the checkout's models/
DEFAULT_MODEL = "bvlc_googlenet"
CHUNK = 1 << 16
REQUIRED = ("title", "weights", "deploy_url", "mean_bgr", "channel_order", "input_size",
            "layers", "licence")


# The original's "customloop": up from inception_4c to inception_5b and back again.
CUSTOM_LOOP = ("inception_4c/output", "inception_4d/output", "inception_4e/output",
               "inception_5a/output", "inception_5b/output", "inception_5a/output",
               "inception_4e/output", "inception_4d/output", "inception_4c/output")

@dataclasses.dataclass
class ModelEntry:
    """One net of the registry: where its files come from and the facts a dream needs."""
    name: str
    title: str
    url: str
    file: str
    size: int | None
    sha1: str | None
    sha1_source: str
    deploy: Path
    deploy_url: str
    mean_bgr: tuple[float, float, float]
    channel_order: str
    input_size: int
    layers: tuple[str, ...]
    licence: str
    archive_member: str | None = None
    manual: str | None = None


def models_dir() -> Path:
    """The folder of registry.json and the deploy prototxts: $DEEPDREAM_MODELS for a registry
    of your own, else the project's models/."""
    return Path(os.environ.get("DEEPDREAM_MODELS") or MODELS_DIR)


def registry() -> dict[str, ModelEntry]:
    """Every entry of registry.json, by name. Raises ModelError naming the file (and
    $DEEPDREAM_MODELS when it chose it) if it is missing, not JSON or an entry is
    incomplete."""
    path = models_dir() / "registry.json"
    where = f"{path} ($DEEPDREAM_MODELS)" if os.environ.get("DEEPDREAM_MODELS") else str(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        raise ModelError(f"cannot read the model registry {where}: "
                         f"{e.strerror or first_line(e)}") from None
    except ValueError as e:
        raise ModelError(f"the model registry {where} is not valid JSON: {first_line(e)}") \
            from None
    if not isinstance(raw, dict):
        raise ModelError(f"the model registry {where} is not an object of entries by name")
    entries = {}
    for name, e in raw.items():
        missing = [k for k in REQUIRED if not isinstance(e, dict) or k not in e]
        if missing:
            raise ModelError(f"registry entry '{name}' in {where} lacks {', '.join(missing)}")
        try:
            w = e["weights"]
            entries[name] = ModelEntry(
                name, e["title"], w["url"], w["file"], w.get("size"), w.get("sha1"),
                w.get("sha1_source", ""), models_dir() / name / "deploy.prototxt",
                e["deploy_url"], tuple(e["mean_bgr"]), e["channel_order"], e["input_size"],
                tuple(e["layers"]), e["licence"], w.get("archive_member"), w.get("manual"))
        except (KeyError, TypeError, AttributeError) as error:
            raise ModelError(f"registry entry '{name}' in {where} is malformed (weights need "
                             f"url and file; {type(error).__name__}: {first_line(error)})") \
                from None
    return entries


def entry(name: str) -> ModelEntry:
    entries = registry()
    if name not in entries:
        raise ModelError(f"unknown model '{name}': choose one of {', '.join(entries)}")
    return entries[name]


def cache_dir() -> Path:
    """$DEEPDREAM_HOME, else deepdream/ in the user's cache folder."""
    if os.environ.get("DEEPDREAM_HOME"):
        return Path(os.environ["DEEPDREAM_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepdream"


def weights_path(model: ModelEntry) -> Path:
    """Where the weights of ``model`` are kept once fetched (not necessarily there yet)."""
    return cache_dir() / model.name / model.file


def _cache_folder(folder: Path) -> Path:
    """``folder`` in the cache, made if needed. Raises ModelError naming $DEEPDREAM_HOME if
    it cannot be made or written to."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        reason = None if os.access(folder, os.W_OK) else "not writable"
    except OSError as e:
        reason = e.strerror or first_line(e)
    if reason:
        raise ModelError(f"cannot keep models in {folder} ({reason}): set DEEPDREAM_HOME to "
                         "a folder you can write")
    return folder


def _mirror_url(mirror: str, name: str) -> str:
    """The URL of file ``name`` on ``mirror`` (--mirror or $DEEPDREAM_MIRROR): a base URL,
    or a folder (taken as a file:// URL). Raises ModelError if it is neither."""
    if "://" not in mirror:
        folder = Path(mirror).expanduser()
        if not folder.is_dir():
            raise ModelError(f"the mirror '{mirror}' is neither a URL (http://, https://, "
                             "file://) nor a folder")
        mirror = folder.resolve().as_uri()
    return f"{mirror.rstrip('/')}/{name}"


def local_weights(model: ModelEntry) -> Path | None:
    """The weights if they are already here: in the cache, or put by hand into
    models/<name>/ as the original README told users to."""
    for path in (weights_path(model), models_dir() / model.name / model.file):
        if path.is_file():
            return path
    return None


# A file changed less than this long before its sha1 was read may be changed again with the
# same timestamps (filesystems keep them in steps of up to 2 s): it is read again next time.
SETTLED_NS = 2 * 10**9


def model_sha1(path: str | Path, data: bytes | None = None) -> str:
    """The sha1 of a model file, read once and then remembered (in the cache's verified.json)
    by its size, modification time and change time: model files are large, and a run asks
    for it to check them, to record them in params.json and to compare them with a recipe's.
    Any write to the file since makes it read again, even one that put back its size and
    modification time (writing moves the change time, which no user can set back); so does
    a file that had changed less than 2 s before it was read. Damage that no write made (a
    failing disk) is not seen: delete verified.json to have every file read again. ``data``:
    the file's bytes, where the caller has read them (hashed, not read again)."""
    import hashlib
    path = Path(path)
    stat = path.stat()
    key, seen = str(path.resolve()), [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    record = cache_dir() / "verified.json"
    try:
        known = json.loads(record.read_text())
        remembered = known[key] if isinstance(known.get(key), list) else []
    except (OSError, ValueError, AttributeError):    # none yet, unreadable or not ours
        known, remembered = {}, []
    # remembered: size, modification and change times, sha1, when it was read
    if data is None and len(remembered) == 5 and remembered[:3] == seen and \
            remembered[4] - seen[2] >= SETTLED_NS:
        return remembered[3]
    log.debug("reading the sha1 of %s (once)", path)
    read_at = time.time_ns()
    known[key] = seen + [hashlib.sha1(data).hexdigest() if data is not None else sha1_of(path),
                         read_at]
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        temp = record.with_name(f"{record.name}.{os.getpid()}.part")
        temp.write_text(json.dumps(known, indent=1))
        os.replace(temp, record)
    except OSError as e:          # a read-only cache: read it again next time
        log.debug("cannot remember the sha1 in %s: %s", record, e)
    return known[key][3]


def check_local(model: ModelEntry, path: Path, data: bytes | None = None) -> Path:
    """``path`` (weights of ``model`` found in the cache or put there by hand), once its size
    and sha1 are the registry's (the sha1 read the first time, then remembered: see
    ``model_sha1``; of ``data``, its bytes, where the caller has read them). Raises
    ModelError for a damaged or other file (left where it is)."""
    size = path.stat().st_size
    if model.size and size != model.size:
        raise ModelError(f"{path} is {size} bytes, not the published {model.size} "
                         f"of {model.name}: it is damaged or another file; delete it to "
                         f"download it again, or download it by hand from {model.url}")
    actual = model_sha1(path, data) if model.sha1 else None
    if actual != model.sha1:
        raise ModelError(f"{path} has sha1 {actual}, not the published {model.sha1} of "
                         f"{model.name}: it is damaged or another file; delete it to "
                         f"download it again, or download it by hand from {model.url}")
    return path


def _download(url: str, target: Path, progress: bool | Display,
              expected_size: int | None) -> None:
    """Fetch ``url`` into ``target``, continuing a partial ``target`` with an HTTP Range
    request (a server that ignores Range sends the whole file again); ``progress`` as
    ``deepdream.progress`` says, counting the bytes still to come."""
    done = target.stat().st_size if target.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "deepdreamvideo"})
    if done:
        request.add_header("Range", f"bytes={done}-")
    try:
        response = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as e:
        if e.code == 416 and done:      # nothing left to send: the part is whole
            return
        raise
    with response:
        if done and response.status != 206:
            done = 0                    # the server ignored Range: start again
        length = response.headers.get("Content-Length")
        total = done + int(length) if length else expected_size
        bar = start_progress(progress, total - done if total else None,
                             f"downloading {target.name.removesuffix('.part')}", "B")
        try:
            with open(target, "ab" if done else "wb") as f:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    bar.step(len(chunk))
        finally:
            bar.close()
        # the registry's size says whether the file is whole where the server sends no
        # Content-Length, and whether it is the published file where no sha1 was published
        size = target.stat().st_size
        if total and size < total:
            raise ModelError(f"the download of {url} broke off at {size} of {total} bytes; "
                             "run the same command again to resume")
        if expected_size and size != expected_size:
            target.unlink()
            raise ModelError(f"{url} sent {size} bytes, not the published {expected_size}: "
                             "it is another file (deleted); check the URL or mirror")


def fetch(name: str, mirror: str | None = None, progress: bool | Display = True,
          verify: bool = True) -> Path:
    """The weights of registry model ``name``, downloaded on first use into the cache
    (resuming a partial download, verifying the published sha1, renaming into place only
    when whole). ``mirror`` (or $DEEPDREAM_MIRROR) fetches BASE_URL/<file name> instead.
    Weights already here are checked (``check_local``) unless ``verify`` is False (the run
    checks them as it reads them: ``ResolvedModel.read``).
    Raises ModelError with the URL and where to put the file by hand when it cannot."""
    model = entry(name)
    found = local_weights(model)
    if found:
        return check_local(model, found) if verify else found
    mirror = mirror or os.environ.get("DEEPDREAM_MIRROR")
    source_name = Path(model.url).name if model.archive_member else model.file
    url = _mirror_url(mirror, source_name) if mirror else model.url
    final = _cache_folder(weights_path(model).parent) / model.file
    part = final.with_name(source_name + ".part")
    by_hand = (f"download it by hand from {model.url} and put it at {final} "
               f"(or at {models_dir() / model.name / model.file})")
    if model.manual and not mirror:
        raise ModelError(f"{model.name}: {model.manual}; then put it at {final}")
    log.info("fetching %s from %s", model.file, url)
    try:
        _download(url, part, progress, None if model.archive_member else model.size)
    except urllib.error.HTTPError as e:
        raise ModelError(f"cannot download {url}: HTTP {e.code} {e.reason}; {by_hand}") \
            from None
    except http.client.HTTPException:
        raise ModelError(f"the download of {url} broke off; run the same command again to "
                         "resume it") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        offline = "" if url.startswith("file:") else "are you offline? "
        raise ModelError(f"cannot reach {url} ({reason}); {offline}{by_hand}") from None
    if model.archive_member:
        part = _extract_member(part, model.archive_member, final)
    if model.sha1:
        actual = sha1_of(part)
        if actual != model.sha1:
            part.unlink()
            raise ModelError(f"{model.file} from {url} has sha1 {actual}, not the published "
                             f"{model.sha1}: the file was deleted; try again or {by_hand}")
    else:
        log.warning("%s: %s", model.file, model.sha1_source or "no published checksum")
    os.replace(part, final)
    return final


# The folder the 2015 README told users to put the model in, beside a Caffe checkout.
ORIGINAL_FOLDER = Path("../caffe/models/bvlc_googlenet")


@dataclasses.dataclass
class ResolvedModel:
    """A Caffe model as a run uses it."""
    caffemodel: Path
    deploy: Path | None          # None: use the structure saved in the caffemodel
    entry: ModelEntry | None     # the registry's facts (mean, layers), when it is known
    published: bool = False      # the registry's own weights: checked against its sha1
    sha1: str | None = None      # of the bytes read (``read``)
    mirror: str | None = None    # where ``fetch`` downloads from instead of the registry's URL

    @property
    def name(self) -> str:
        return self.caffemodel.name

    @property
    def missing(self) -> bool:
        """Whether the weights are still to be downloaded (``fetch``)."""
        return not self.caffemodel.is_file()

    def fetch(self, progress: bool | Display = True) -> None:
        """Download the registry's weights if they are not here yet (``fetch``)."""
        if self.missing and self.entry is not None:
            self.caffemodel = fetch(self.entry.name, self.mirror, progress, verify=False)

    def read(self) -> bytes:
        """The caffemodel's bytes, read once: their sha1 remembered (``model_sha1``, and for
        ``identity``) and, for the registry's own weights, checked against the published
        size and sha1 (``check_local``). Raises ModelError."""
        from .caffe.format import read_bytes
        data = read_bytes(self.caffemodel)
        if self.published:
            check_local(self.entry, self.caffemodel, data)
        self.sha1 = model_sha1(self.caffemodel, data)
        return data

    def identity(self) -> dict:
        """What params.json records of the model, and a resumed run must match."""
        return {"model": str(self.caffemodel.resolve()),
                "model_sha1": self.sha1 or model_sha1(self.caffemodel)}

    def default_layers(self) -> tuple[str, ...]:
        """The layers a sweep dreams on: the registry's, else the original's customloop."""
        return tuple(self.entry.layers) if self.entry else CUSTOM_LOOP


def resolve(name: str | None = None, folder: str | Path | None = None,
            file: str = "bvlc_googlenet.caffemodel", mirror: str | None = None,
            progress: bool = True, download: bool = True) -> ResolvedModel:
    """The model a run uses: ``folder``/``file`` (the original -t/-m, with the folder's
    deploy.prototxt), else registry model ``name`` (fetched on first use; with ``download``
    False, later, by ``ResolvedModel.fetch``: a run's plan checks its layers first), else
    bvlc_googlenet from the cache, models/bvlc_googlenet/ or ../caffe/models/bvlc_googlenet/.
    """
    if folder is not None:
        folder = Path(folder)
        caffemodel = folder / file
        if not caffemodel.is_file():
            raise ModelError(f"model not found: {caffemodel}; point -t/--model_path at a "
                             "folder holding deploy.prototxt and the caffemodel, or use "
                             "--model NAME (python -m deepdream.models list)")
        deploy = folder / "deploy.prototxt"
        return ResolvedModel(caffemodel, deploy if deploy.is_file() else None,
                             _known_file(file))
    model = entry(name or DEFAULT_MODEL)
    original = ORIGINAL_FOLDER / model.file
    if name is None and not local_weights(model) and original.is_file():
        deploy = ORIGINAL_FOLDER / "deploy.prototxt"
        return ResolvedModel(original, deploy if deploy.is_file() else model.deploy, model,
                             published=True)
    if not download and not local_weights(model):
        if model.manual and not (mirror or os.environ.get("DEEPDREAM_MIRROR")):
            fetch(model.name, mirror, progress)      # says in one line how to get it
        return ResolvedModel(weights_path(model), model.deploy, model, published=True,
                             mirror=mirror)
    return ResolvedModel(fetch(model.name, mirror, progress, verify=False), model.deploy,
                         model, published=True, mirror=mirror)


def _known_file(file: str) -> ModelEntry | None:
    """The registry's entry of a caffemodel named ``file``, for its facts (mean, layers): a
    model folder (-t) needs no registry, so one that cannot be read is passed over with a
    warning."""
    try:
        entries = registry()
    except ModelError as e:
        log.warning("%s; %s is used without the registry's mean and layers", e, file)
        return None
    return next((e for e in entries.values() if e.file == file), None)


def _extract_member(archive: Path, member: str, final: Path) -> Path:
    """Take the caffemodel out of a downloaded .tar.gz (Places205 ships one)."""
    out = final.with_name(final.name + ".part")
    try:
        with tarfile.open(archive) as tar:
            match = next((m for m in tar.getmembers() if m.name.endswith(member)), None)
            if match is None:
                raise ModelError(f"{archive.name} holds no {member}")
            with tar.extractfile(match) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except tarfile.TarError as e:
        archive.unlink()
        raise ModelError(f"{archive.name} is not a whole archive ({e}): deleted; "
                         "run again to download it anew") from None
    archive.unlink()
    return out
