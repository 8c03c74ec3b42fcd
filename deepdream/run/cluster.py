"""Dream a film on many workers with Ray: the frames split into segments at scene cuts (else
of a fixed length), one actor per worker that loads the net once and dreams segments with the
same code as a single process (so resume works across modes), retries of a lost worker's
segment elsewhere, and a check at the end that every frame is there and whole.

On a cluster of several machines, the frame and output folders (and the model files) must be
on a filesystem that every node sees at the same path.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
import typing
from pathlib import Path

from ..errors import DeepDreamError, FramesError, SettingsError, first_line
from ..io import frames, ours
from ..progress import start as start_progress
from . import loop
from .plan import Plan, plan_frames, require_ray
from .settings import DreamReport, DreamSettings, RunOptions
from .state import InputFrames, open_output
from .threads import WAIT_POLICY, TorchThreads, user_pin, worker_environment

log = logging.getLogger(__name__)

# How long a run waits for its first worker to start (placed by Ray and its net loaded)
# before it stops with one line; the environment variable changes it.
WAIT_ENV, WAIT_S = "DEEPDREAM_RAY_WAIT", 300.0
REPORT_S = 30.0           # how often a wait is reported
# Each worker puts a file named <host>-<pid> here in the output folder while it runs, so that
# one can see (and a test can find) the run's own worker processes.
WORKERS_DIR = ".ray-workers"
CARDS_MARK = "folder.json"   # in WORKERS_DIR: the folder was made by a run of ours


class WorkerPlan(typing.NamedTuple):
    """How a run's workers are sized: whether each reserves a GPU, how many there are and how
    many CPUs each asks Ray for (and computes with)."""
    gpu: bool
    workers: int
    cpus: int


def _dreamer(ray, retries: int):
    @ray.remote(max_restarts=retries, max_task_retries=retries)
    class Dreamer:
        """One worker: the net loaded once, segments dreamed one after another."""

        def __init__(self, model, device, precision, job, timeline, pinned):
            # a worker that cannot start says why when asked its pid: as a task's error,
            # which reaches the driver whole (a creation's error comes as Ray's words)
            self.failed = None
            try:
                self._start(model, device, precision, job, timeline, pinned)
            except Exception as e:
                self.failed = e

        def _start(self, model, device, precision, job, timeline, pinned):
            from ..nets.loading import load_model
            self.net = load_model(model, device, "torch", precision)
            # at most as many threads as the CPUs Ray gave this worker on its node
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0)
            self.threads = TorchThreads(self.net.device, pinned, "the run",
                                        maximum=max(1, int(cpus)))
            self.job, self.timeline = job, timeline
            # ready: say so in the output folder (see WORKERS_DIR)
            card = Path(job.output_dir) / WORKERS_DIR / f"{socket.gethostname()}-{os.getpid()}"
            card.parent.mkdir(exist_ok=True)
            ours.write_json(card, "ray-worker", {
                "threads": pinned or self.threads.maximum, "device": str(self.net.device),
                WAIT_POLICY: os.environ.get(WAIT_POLICY)})

        def pid(self) -> int:
            """This worker's process id, once its net is loaded (raises what stopped it)."""
            if self.failed is not None:
                raise self.failed
            return os.getpid()

        def dream(self, numbers: list[int], warmup: int) -> tuple[int, int, float]:
            start = time.monotonic()
            with ours.scratch(self.job.output_dir):      # held for the segment's frames
                report = loop.run_frames(self.job, self.net, self.timeline, [numbers],
                                         warmup, progress=False, record_cuts=False,
                                         threads=self.threads)
            return os.getpid(), report.dreamed, time.monotonic() - start

    return Dreamer


def dream_frames_ray(input_dir: str | Path, output_dir: str | Path, model,
                     settings: DreamSettings, options: RunOptions | None = None,
                     threads: int | None = None) -> DreamReport:
    """``loop.dream_frames`` of ``model`` (a ``registry.resolve`` result or a
    ``module.ModuleModel``, loaded by every worker) spread over ``options.workers`` Ray
    actors: the run planned (``plan.make_plan``) and carried out by ``run_on_ray``."""
    options = options or RunOptions(device="cpu")
    options = dataclasses.replace(options, ray=options.ray or "local")
    plan, input = plan_frames(input_dir, output_dir, settings, options, model)
    return run_on_ray(plan, input, output_dir, threads)


def run_on_ray(plan: Plan, input: InputFrames, output_dir: str | Path,
               threads: int | None = None) -> DreamReport:
    """Carry out ``plan`` on ``input`` over Ray workers (a local Ray when
    ``plan.options.ray`` is "local", else the cluster at that address: "auto" or
    "ray://host:port"). Each segment (``options.segment_length`` frames) starts
    ``options.warmup`` frames early (dreamed, not written) unless it starts at a scene cut,
    where a sequential run starts afresh too. Workers are sized from the cluster's nodes
    (``plan_workers``); ``threads`` (else ``options.threads``, else $OMP_NUM_THREADS) fixes
    the CPUs and torch threads of each, which otherwise dreams with the count of at most its
    CPUs that is fastest now; each starts with OpenMP's waiting passive
    (``threads.worker_environment``);
    ``options.precision`` is that of the workers' nets. On GPUs (``options.device`` cuda,
    cuda:N or auto with a GPU) each worker reserves one GPU and computes on the one Ray
    gives it. A segment whose worker dies is retried ``options.retries`` times, then the run
    stops with one line (finished frames are kept); so does a run whose first worker has
    not started within $DEEPDREAM_RAY_WAIT seconds (300 by default)."""
    threads = threads or user_pin(plan.options.threads)[0]
    if threads is not None and threads < 1:
        raise SettingsError("threads must be 1 or more")
    wait_s = _wait_seconds()
    ray = require_ray()
    with frames.folder_lock(output_dir):     # the workers write under the driver's lock
        return _dream_on_ray(ray, plan, input, output_dir, threads, wait_s)


def _dream_on_ray(ray, plan: Plan, input: InputFrames, output_dir, threads: int | None,
                  wait_s: float) -> DreamReport:
    options, settings, model = plan.options, plan.settings, plan.model
    address, workers, warmup = options.ray or "local", options.workers, options.warmup
    device, precision, retries = str(options.device), options.precision, options.retries
    overwrite, progress = options.overwrite, options.progress
    job = open_output(output_dir, input, plan.params(input), overwrite)
    pieces = loop.segments(job.todo, loop.known_cuts(job, settings), options.segment_length)
    done = job.done
    todo = [p for p in pieces if not set(p) <= done]
    # params.json and the ledger are the driver's to write, once, when a worker has started
    # and before it is given a segment (workers that began them together raced)
    job.begun = True
    quiet = dict(log_to_driver=False, logging_level=log.getEffectiveLevel())  # Ray's at ours
    try:
        if address == "local":     # this machine's cores (more if --threads asks) and GPUs
            # its notice that the Ray we start has token authentication on (a line at every
            # run, saying how to turn it off): not the user's concern
            logging.getLogger("ray._private.authentication.authentication_token_setup") \
                .setLevel(logging.ERROR)
            here = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
                os.cpu_count() or 1
            cpus = max(here, workers * (threads or 1))
            ray.init(address="local", num_cpus=cpus, num_gpus=_gpu_count(),
                     include_dashboard=False, object_store_memory=256 * 1024 * 1024, **quiet)
        else:
            ray.init(address=address, **quiet)
    except Exception as e:            # Ray raises many kinds; the user needs one line
        raise DeepDreamError(f"cannot start or join Ray at '{address}': "
                             f"{first_line(e)}") from None
    cards = Path(job.output_dir) / WORKERS_DIR
    bar = None
    try:
        sizing = plan_workers(device, workers, [n["Resources"] for n in ray.nodes()
                                                if n.get("Alive")], threads)
        log.info("%d segments (%d to do) of %d frames over %d workers of %d CPU(s)%s",
                 len(pieces), len(todo), len(job.todo), sizing.workers, sizing.cpus,
                 " and a GPU" if sizing.gpu else "")
        _clear_cards(cards)
        _make_cards_folder(cards)
        bar = start_progress(progress, sum(len(set(p) - done) for p in todo))
        Dreamer = _dreamer(ray, retries).options(
            num_cpus=sizing.cpus, num_gpus=1 if sizing.gpu else 0,
            runtime_env={"env_vars": worker_environment()})
        # on a GPU worker "cuda" is the GPU Ray gave it (CUDA_VISIBLE_DEVICES)
        actors = [Dreamer.remote(model, "cuda" if sizing.gpu else device, precision, job,
                                 plan.timeline, threads)
                  for _ in range(min(sizing.workers, len(todo)))]
        _run_segments(ray, actors, todo, warmup, retries, bar, sizing, wait_s, job.begin)
    finally:
        if bar is not None:
            bar.close()
        ray.shutdown()
        _clear_cards(cards)
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
    return DreamReport(dreamed, len(job.todo) - dreamed, job.output_dir)


def plan_workers(device: str, workers: int, nodes: list[dict],
                 threads: int | None = None) -> WorkerPlan:
    """The workers of a run on a Ray cluster whose nodes have the resources ``nodes`` (one
    dict a node, as Ray's ``ray.nodes()`` "Resources": {"CPU": 8.0, "GPU": 1.0}) for
    ``device`` (as --device or --gpu give it): "auto" means GPUs where the cluster has them
    (also when this machine, its head, has none). A GPU worker reserves a whole GPU. Each
    worker asks for as many CPUs (``threads`` if given) as lets every worker be placed on
    some node at once, the most that does: so none waits for ever, and a GPU worker gets its
    node's CPUs shared among that node's GPUs. Where fewer workers fit than are asked for,
    there are fewer, with a warning. Raises DeepDreamError if GPUs are asked for and there
    are none, or no node can hold even one worker."""
    gpus = sum(int(n.get("GPU", 0)) for n in nodes)
    gpu = device.startswith("cuda") or device.isdigit() or (device == "auto" and gpus > 0)
    if gpu and gpus == 0:
        raise DeepDreamError("--ray on GPUs, but Ray sees no GPU: use --device cpu, or join "
                             "a cluster with GPUs (--ray auto or --ray ray://host:port)")
    if gpu and workers > gpus:
        log.warning("%d workers asked for, but Ray has %d GPU(s): one worker per GPU, %d "
                    "workers", workers, gpus, gpus)
        workers = gpus
    hosts = [(int(n.get("CPU", 0)), int(n.get("GPU", 0))) for n in nodes]
    if gpu:
        hosts = [(c, g) for c, g in hosts if g > 0]

    def fitting(cpus: int) -> int:    # how many workers of ``cpus`` CPUs the nodes hold
        return sum(min(g if gpu else workers, c // cpus if cpus else workers)
                   for c, g in hosts)

    cpus = threads or next((k for k in range(max((c for c, _ in hosts), default=0), 0, -1)
                            if fitting(k) >= workers), 0 if gpu else 1)
    fit = fitting(cpus)
    if fit == 0:
        sizes = ", ".join(str(c) for c, _ in hosts) or "no"
        raise DeepDreamError(f"no Ray node has {cpus} CPU(s){' and a GPU' if gpu else ''} "
                             f"for a worker (its nodes have {sizes} CPUs): give fewer "
                             "threads, or join a larger cluster")
    if fit < workers:
        log.warning("%d workers asked for, but Ray's nodes hold %d of %d CPU(s) each: %d "
                    "workers", workers, fit, cpus, fit)
    return WorkerPlan(gpu, min(workers, fit), cpus)


def _run_segments(ray, actors, pieces: list[list[int]], warmup: int, retries: int,
                  bar, plan: WorkerPlan, wait_s: float, begin) -> None:
    """Hand the segments to the actors as they start (``begin()`` called before the first
    is handed), a new one to each actor that
    finishes; stop with one line at a segment that failed: its worker kept dying (after
    ``retries`` retries), or it raised one of our errors (not retried: it would fail again);
    or when no actor has started after ``wait_s`` seconds (reported every REPORT_S)."""
    from ray.exceptions import RayActorError, RayTaskError

    waiting = list(pieces)
    starting = {actor.pid.remote(): actor for actor in actors}
    running = {}
    began, started = time.monotonic(), 0
    while running or (waiting and starting):
        waited = time.monotonic() - began
        if not started and waited >= wait_s:
            raise DeepDreamError(_not_started(ray, plan, wait_s))
        timeout = REPORT_S if started else min(REPORT_S, wait_s - waited)
        ready, _ = ray.wait(list(running) + list(starting), num_returns=1, timeout=timeout)
        if not ready:
            if not started:
                log.info("waiting for Ray to start a worker of %d CPU(s)%s: %d s so far",
                         plan.cpus, " and a GPU" if plan.gpu else "",
                         time.monotonic() - began)
            continue
        ready = ready[0]
        if ready in starting:
            actor = starting.pop(ready)
            try:
                pid = ray.get(ready)
            except RayTaskError as e:
                raise _error_of(e, "a Ray worker could not start", False) from None
            except RayActorError as e:
                raise DeepDreamError(f"a Ray worker could not start: {first_line(e)}") \
                    from None
            log.debug("worker %d started", pid)
            if not started:
                begin()
            started += 1
        else:
            actor, piece = running.pop(ready)
            _finished(ray, ready, piece, retries, bar)
        if waiting:
            piece = waiting.pop(0)
            running[actor.dream.remote(piece, warmup)] = (actor, piece)


def _finished(ray, ready, piece: list[int], retries: int, bar) -> None:
    """Count the frames of a segment a worker has finished; raises DeepDreamError if it
    failed."""
    from ray.exceptions import RayActorError, RayTaskError

    try:
        pid, count, seconds = ray.get(ready)
    except RayTaskError as e:
        raise _error_of(e, f"frames {piece[0]}-{piece[-1]} failed on a worker") from None
    except RayActorError as e:
        raise DeepDreamError(
            f"frames {piece[0]}-{piece[-1]} failed {retries + 1} times, their worker "
            f"dying each time (last: {first_line(e)}); the finished frames are kept: "
            "run the same command again to continue") from None
    bar.step(count)
    log.debug("worker %d: frames %d-%d, %d dreamed in %.1f s", pid, piece[0], piece[-1],
              count, seconds)


def _error_of(error, what: str, ours_as_raised: bool = True) -> DeepDreamError:
    """The one-line error of a worker's task that raised ``error`` (Ray's RayTaskError): one
    of ours as it was raised (unless not ``ours_as_raised``); any other, its first line
    after ``what``."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, DeepDreamError) and ours_as_raised:
        return cause
    return DeepDreamError(f"{what}: {first_line(cause or error)}")


def _not_started(ray, plan: WorkerPlan, wait_s: float) -> str:
    """Why no worker started: what each asks for, and what the cluster has free."""
    free, total = ray.available_resources(), ray.cluster_resources()
    kinds = ["CPU", "GPU"] if plan.gpu else ["CPU"]
    have = ", ".join(f"{int(free.get(k, 0))} of {int(total.get(k, 0))} {k}s" for k in kinds)
    return (f"no Ray worker started within {wait_s:g} s: each asks for {plan.cpus} CPU(s)"
            f"{' and a GPU' if plan.gpu else ''}, and Ray has {have} free (other work holds "
            f"them, or a node left); set {WAIT_ENV} to wait longer")


def _wait_seconds() -> float:
    """$DEEPDREAM_RAY_WAIT, else WAIT_S. Raises SettingsError if it is not a number above
    0."""
    text = os.environ.get(WAIT_ENV, "")
    try:
        seconds = float(text) if text else WAIT_S
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise SettingsError(f"{WAIT_ENV} must be a number of seconds above 0, not '{text}'")
    return seconds


def _make_cards_folder(folder: Path) -> None:
    """Make the folder of the workers' files (WORKERS_DIR), marked as ours (CARDS_MARK),
    where there is none: one that is there is the user's (our own were cleared first)."""
    try:
        folder.mkdir()
    except FileExistsError:
        return
    ours.write_json(folder / CARDS_MARK, "ray-workers", {})


def _clear_cards(folder: Path) -> None:
    """Remove the worker files (WORKERS_DIR) of this output folder, each marked as ours:
    this run's at its end, and those a killed run left at the start of the next; and the
    folder, once empty, if it is marked as made by a run of ours (a folder of that name that
    was there before is the user's, and stays)."""
    if not folder.is_dir():
        return
    made = False
    for card in folder.iterdir():
        try:
            if card.name == CARDS_MARK:
                made = ours.read_json(card, "ray-workers") is not None
            else:
                ours.read_json(card, "ray-worker")
                card.unlink(missing_ok=True)
        except DeepDreamError:       # not ours, or not a file
            continue
    if made:
        try:
            (folder / CARDS_MARK).unlink()
            folder.rmdir()
        except OSError:           # something else is in it: leave it
            pass


def _gpu_count() -> int:
    import torch
    return torch.cuda.device_count()


