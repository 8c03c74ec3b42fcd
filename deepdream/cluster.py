"""Dream a film on many workers with Ray: the frames split into segments at scene cuts (else
of a fixed length), one actor per worker that loads the net once and dreams segments with the
same code as a single process (so resume works across modes), retries of a lost worker's
segment elsewhere, and a check at the end that every frame is there and whole.

On a cluster of several machines, the frame and output folders (and the model files) must be
on a filesystem that every node sees at the same path.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from . import frames, runs, scheduler
from .cli import Progress
from .errors import DeepDreamError, FramesError, SettingsError, first_line

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
    except ImportError:
        raise DeepDreamError("--ray needs Ray: pip install ray") from None
    return ray


def _dreamer(ray, retries: int):
    @ray.remote(max_restarts=retries, max_task_retries=retries)
    class Dreamer:
        """One worker: the net loaded once, segments dreamed one after another."""

        def __init__(self, model, device, precision, threads, job, settings):
            import torch

            from .engine import load_model
            torch.set_num_threads(threads)
            self.net = load_model(model, device, "torch", precision)
            self.job, self.settings = job, settings

        def pid(self) -> int:
            return os.getpid()

        def dream(self, numbers: list[int], warmup: int) -> tuple[int, int, float]:
            start = time.monotonic()
            report = scheduler.run_frames(self.job, self.net, self.settings, [numbers], warmup,
                                         progress=False, record_cuts=False)
            return os.getpid(), report.dreamed, time.monotonic() - start

    return Dreamer


def dream_frames_ray(input_dir: str | Path, output_dir: str | Path, model,
                     settings: runs.DreamSettings,
                     address: str = "local", workers: int = 2, device: str = "cpu",
                     warmup: int = 10, segment_length: int = 100,
                     image_type: str | None = None, start_frame: int | None = None,
                     end_frame: int | None = None, overwrite: bool = False,
                     progress: bool = True, threads: int | None = None,
                     precision: str = "fp32", retries: int = 3) -> runs.DreamReport:
    """``scheduler.dream_frames`` of ``model`` (a ``models.resolve`` result or a
    ``torch_module.ModuleModel``, loaded by every worker) spread over ``workers`` Ray actors
    (a local Ray when
    ``address`` is "local", else the cluster at ``address``: "auto" or "ray://host:port").
    Each segment starts ``warmup`` frames early (dreamed, not written) unless it starts at a
    scene cut, where a sequential run starts afresh too. ``threads``: CPU threads per worker
    (default: this machine's cores shared out); ``precision`` that of the workers' nets. On
    GPUs (``device`` cuda, cuda:N or auto with a GPU) each worker reserves one GPU and
    computes on the one Ray gives it. A segment whose worker dies is retried ``retries``
    times, then the run stops with one line (finished frames are kept)."""
    if workers < 1 or segment_length < 1 or warmup < 0:
        raise SettingsError("--workers and --segment-length must be 1 or more, --warmup 0 "
                            "or more")
    ray = _ray()
    with frames.folder_lock(output_dir):     # the workers write under the driver's lock
        return _dream_on_ray(ray, input_dir, output_dir, model, settings,
                             address, workers, device, warmup, segment_length, image_type,
                             start_frame, end_frame, overwrite, progress, threads, precision,
                             retries)


def _dream_on_ray(ray, input_dir, output_dir, model, settings, address,
                  workers, device, warmup, segment_length, image_type, start_frame,
                  end_frame, overwrite, progress, threads, precision,
                  retries) -> runs.DreamReport:
    device = str(device)
    if address == "local":     # a local Ray has this machine's GPUs
        gpu, workers = plan_workers(device, workers, _gpu_count())
    from .torch_module import ModuleModel
    # the name of the workers' nets' class, as a single process records type(net)
    engine = "ModuleNet" if isinstance(model, ModuleModel) else "TorchNet"
    job = runs.prepare(input_dir, output_dir, settings, engine, device, model,
                       image_type, start_frame, end_frame, overwrite, precision)
    pieces = scheduler.segments(job.todo, scheduler.known_cuts(job, settings), segment_length)
    done = set() if overwrite else set(frames.list_frames(job.output_dir, job.ext))
    todo = [p for p in pieces if not set(p) <= done]
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    try:
        if address == "local":
            ray.init(address="local", num_cpus=workers * threads, include_dashboard=False,
                     log_to_driver=False, object_store_memory=256 * 1024 * 1024)
        else:
            ray.init(address=address, log_to_driver=False)
    except Exception as e:            # Ray raises many kinds; the user needs one line
        raise DeepDreamError(f"cannot start or join Ray at '{address}': "
                             f"{first_line(e)}") from None
    try:
        if address != "local":    # a cluster's GPUs, whatever this head has
            gpu, workers = plan_workers(device, workers,
                                        int(ray.cluster_resources().get("GPU", 0)))
    except DeepDreamError:
        ray.shutdown()
        raise
    log.info("%d segments (%d to do) of %d frames over %d workers%s", len(pieces), len(todo),
             len(job.todo), workers, " (a GPU each)" if gpu else "")
    bar = Progress(sum(len(set(p) - done) for p in todo), progress)
    try:
        Dreamer = _dreamer(ray, retries).options(num_cpus=threads, num_gpus=1 if gpu else 0)
        # on a GPU worker "cuda" is the GPU Ray gave it (CUDA_VISIBLE_DEVICES)
        actors = [Dreamer.remote(model, "cuda" if gpu else device, precision, threads, job,
                                 settings)
                  for _ in range(min(workers, len(todo)))]
        _run_segments(ray, actors, todo, warmup, retries, bar)
    finally:
        bar.close()
        ray.shutdown()
    missing = []
    for n in job.todo:
        try:
            frames.read_frame(job.output(n))
        except FramesError:
            missing.append(n)
    if missing:
        raise FramesError(f"{len(missing)} frames are missing or damaged after the run "
                          f"(first: {missing[0]}); run the same command again")
    dreamed = len(job.todo) - len(done & set(job.todo))
    return runs.DreamReport(dreamed, len(job.todo) - dreamed, job.output_dir)


def plan_workers(device: str, workers: int, gpus: int) -> tuple[bool, int]:
    """Whether the workers dream on GPUs, and how many workers there are, for ``device`` (as
    --device or --gpu give it) and a Ray cluster with ``gpus`` GPUs: "auto" means GPUs
    where the cluster has them (also when this machine, its head, has none); each GPU
    worker reserves a whole GPU, so there are never more GPU workers than GPUs (a worker
    more would wait for ever). Raises DeepDreamError if GPUs are asked for and there are
    none."""
    gpu = device.startswith("cuda") or device.isdigit() or (device == "auto" and gpus > 0)
    if gpu and gpus == 0:
        raise DeepDreamError("--ray on GPUs, but Ray sees no GPU: use --device cpu, or join "
                             "a cluster with GPUs (--ray auto or --ray ray://host:port)")
    if gpu and workers > gpus:
        log.warning("%d workers asked for, but Ray has %d GPU(s): one worker per GPU, %d "
                    "workers", workers, gpus, gpus)
        workers = gpus
    return gpu, workers


def _run_segments(ray, actors, pieces: list[list[int]], warmup: int, retries: int,
                  bar) -> None:
    """Hand the segments to the actors, a new one to each actor that finishes; stop with one
    line at a segment that failed: its worker kept dying (after ``retries`` retries), or it
    raised one of our errors (not retried: it would fail again)."""
    from ray.exceptions import RayActorError, RayTaskError

    waiting = list(pieces)
    running = {}
    for actor in actors:
        if waiting:
            piece = waiting.pop(0)
            running[actor.dream.remote(piece, warmup)] = (actor, piece)
    while running:
        (ready,), _ = ray.wait(list(running), num_returns=1)
        actor, piece = running.pop(ready)
        try:
            pid, count, seconds = ray.get(ready)
        except RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, DeepDreamError):
                raise type(cause)(str(cause)) from None
            raise DeepDreamError(f"frames {piece[0]}-{piece[-1]} failed on a worker: "
                                 f"{first_line(cause or e)}") from None
        except RayActorError as e:
            raise DeepDreamError(
                f"frames {piece[0]}-{piece[-1]} failed {retries + 1} times, their worker "
                f"dying each time (last: {first_line(e)}); the finished frames are kept: "
                "run the same command again to continue") from None
        bar.step(count)
        log.debug("worker %d: frames %d-%d, %d dreamed in %.1f s", pid, piece[0], piece[-1],
                  count, seconds)
        if waiting:
            piece = waiting.pop(0)
            running[actor.dream.remote(piece, warmup)] = (actor, piece)


def _gpu_count() -> int:
    import torch
    return torch.cuda.device_count()


