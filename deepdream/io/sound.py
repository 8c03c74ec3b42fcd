"""A movie's sound as curves over its timeline: loudness, bass and beats (onsets, each followed by
a decaying pulse), from its first audio stream decoded by ffmpeg in chunks, for settings that
follow the sound (deepdream.run.schedules).

Times are seconds on the movie's timeline as -ss counts them (from the file's start, where
``video.MovieInfo.first_picture`` and a run's frame times are counted). The sound is decoded to
mono at RATE Hz, which keeps the bass and the body of drums and voices, and cut into hops of
HOP seconds on a grid fixed to the timeline (an analysis from a later start has the same hops).

- loudness: RMS in dB of each hop, averaged over 50 ms. Plain RMS rather than a perceptual
  loudness (EBU R 128's K-weighting): that weighting mostly lowers the bass, which has a curve
  of its own here, and it needs a higher rate; the curve is a shape to follow, not a meter.
- bass: RMS in dB below BASS_HZ (a 4th-order Butterworth low-pass), averaged over 100 ms.
- beats: onset times, peaks of the positive spectral flux of the log-magnitude spectrum; the
  curve is 1 at each onset and halves every BEAT_HALF_LIFE seconds.

Each curve is normalised to 0..1 over the analysed sound with percentiles (a click does not
squash the rest); anything below SILENCE_DB is 0."""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import scipy.ndimage as nd
import scipy.signal as sg

from ..errors import SettingsError, VideoError
from . import video

log = logging.getLogger(__name__)

RATE = 8000                 # Hz, the decoded sound's rate
HOP = 80                    # samples: 10 ms
WINDOW = 256                # samples of a spectrum (32 ms), centred on its hop
BASS_HZ = 150.0
SILENCE_DB = -60.0          # dBFS: quieter than this is silence (0 on every curve)
RANGE_DB = 50.0             # a curve spans at most this many dB below its loud end
BEAT_HALF_LIFE = 0.1        # seconds: the beats pulse is 1/8 at 0.3 s after its onset
MIN_FLUX = 1.0              # the least flux rise of an onset (log-magnitude summed over bins)
KINDS = ("loudness", "bass", "beats")

_CHUNK = RATE * 5           # samples read at a time (5 s, 160 kB)
_REACH = WINDOW // 2 - HOP // 2   # samples a hop's spectrum reaches before the hop
_SOS = sg.butter(4, BASS_HZ, "lowpass", fs=RATE, output="sos")
_HANN = np.hanning(WINDOW + 2)[1:-1].astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class SoundCurves:
    """The sound's features per hop from ``start`` (seconds on the timeline, a multiple of the
    hop), raw in dB, with the dB ``levels`` (low, high) that map each to 0..1, and the onset
    times (``beats``, seconds on the timeline, rising)."""
    start: float
    loudness_db: np.ndarray     # (hops,) float32, in steps of 0.01 dB
    bass_db: np.ndarray         # (hops,) float32, in steps of 0.01 dB
    beats: np.ndarray           # (onsets,) float64
    levels: dict[str, tuple[float, float]]   # "loudness"/"bass" -> (dB at 0, dB at 1)

    @property
    def hop(self) -> float:
        return HOP / RATE

    @property
    def duration(self) -> float:
        """Seconds of sound analysed."""
        return len(self.loudness_db) * self.hop

    @property
    def end(self) -> float:
        return self.start + self.duration

    def at(self, kind: str, seconds) -> np.ndarray:
        """Curve ``kind`` (one of KINDS) at ``seconds`` (a number or an array; timeline
        seconds), 0..1: linear between hops' centres, held before the first and after the
        last; the beats pulse is exact at any time."""
        times = np.asarray(seconds, dtype=np.float64)
        if kind == "beats":
            last = np.searchsorted(self.beats, times, side="right") - 1
            since = times - self.beats[np.maximum(last, 0)] if len(self.beats) else times
            return np.where(last >= 0, 0.5 ** (np.maximum(since, 0) / BEAT_HALF_LIFE), 0.0)
        if kind not in self._curves:
            raise ValueError(f"unknown sound curve {kind!r}: one of {', '.join(KINDS)}")
        curve, last = self._curves[kind], len(self.loudness_db) - 1
        place = np.clip((times - self.start) / self.hop - 0.5, 0, last)    # in hops
        below = np.minimum(place.astype(np.int64), max(last - 1, 0))
        after = curve[np.minimum(below + 1, last)]
        return curve[below] + (after - curve[below]) * (place - below)

    @functools.cached_property
    def _curves(self) -> dict[str, np.ndarray]:
        """The loudness and bass curves per hop, 0..1."""
        return {kind: np.clip((raw.astype(np.float64) - self.levels[kind][0]) /
                              (self.levels[kind][1] - self.levels[kind][0]), 0.0, 1.0)
                for kind, raw in (("loudness", self.loudness_db), ("bass", self.bass_db))}


def analyse(movie: str | Path, start: float | None = None,
            end: float | None = None) -> SoundCurves:
    """The sound curves of ``movie``'s first audio stream, from ``start`` (seconds on its
    timeline, taken down to the hop grid; None: 0) to ``end`` (None: its end). Memory stays
    bounded: the sound is read in chunks and only the per-hop features are kept. Raises
    SettingsError if the movie has no sound or its sound is silent, VideoError if ffmpeg
    cannot read it."""
    path = Path(movie)
    if not path.is_file():
        raise VideoError(f"movie not found: {path}")
    first = math.floor(max(0.0, start or 0.0) * RATE / HOP + 1e-9) * HOP   # sample of hop 0
    pre = min(first, RATE // 2)     # decoded before hop 0: warms the filters, feeds spectra
    seek = max(0, math.floor((first - pre) / RATE) - 10)    # whole seconds: a fast seek
    trim = f"atrim=start_sample={first - pre - seek * RATE}"
    if end is not None:
        if end <= first / RATE:
            raise ValueError(f"no sound between {first / RATE:g} s and {end:g} s")
        trim += f":end_sample={math.ceil(end * RATE) - seek * RATE}"
    args = [video.ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats"]
    args += ["-ss", str(seek)] if seek else []
    # the sound placed on the timeline (a late start padded with silence), at RATE, cut
    args += ["-i", video.ffmpeg_path(path), "-map", "0:a:0", "-af",
             f"aresample={RATE}:async=1:first_pts=0,{trim}", "-ac", "1", "-f", "f32le",
             "pipe:1"]
    log.debug("running %s", " ".join(args))
    features = _Features(pre)
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors,
                                   preexec_fn=video.dies_with_us())
        try:
            while chunk := process.stdout.read(_CHUNK * 4):
                features.feed(np.frombuffer(chunk[:len(chunk) // 4 * 4], np.float32))
            process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        errors.seek(0)
        text = errors.read()
    _raise_for_failure(path, process.returncode, text)
    loudness, bass, flux = features.finish()
    loudness, bass = ((_centi(db) / 100).astype(np.float32) for db in (loudness, bass))
    if not len(loudness):
        raise SettingsError(f"{path} has no sound after {first / RATE:g} s to follow")
    if loudness.max() < SILENCE_DB:
        raise SettingsError(f"the sound of {path} is silent (below {SILENCE_DB:g} dBFS "
                            "throughout): it has nothing to follow")
    beats = (np.flatnonzero(_onsets(flux, loudness)) + 0.5) * HOP / RATE + first / RATE
    log.info("sound of %s: %.1f s, %d onsets", path.name, len(loudness) * HOP / RATE,
             len(beats))
    return SoundCurves(first / RATE, loudness, bass, beats,
                       {"loudness": _levels(loudness), "bass": _levels(bass)})


def _raise_for_failure(path: Path, returncode: int, text: str) -> None:
    """The one-line error for an ffmpeg decoding that failed (KeyboardInterrupt if Ctrl-C
    stopped it); nothing if it succeeded."""
    if video._stopped_by_ctrl_c(returncode, text):
        raise KeyboardInterrupt
    if returncode == 0:
        return
    if returncode < 0:
        raise VideoError(f"{video.ffmpeg_exe()} crashed (signal {-returncode}) reading the "
                         f"sound of {path}: try another ffmpeg "
                         "(DEEPDREAM_FFMPEG=/path/to/ffmpeg)")
    if "Stream #" in text and not any(": Audio:" in line for line in text.splitlines()):
        raise SettingsError(f"{path} has no sound: a setting that follows the sound "
                            "(sound:LOW..HIGH) needs a movie with sound")
    lines = [re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\] ", "", line)
             for line in text.strip().splitlines()[-2:]]
    tail = " | ".join(lines) or f"exit code {returncode}"
    raise VideoError(f"ffmpeg cannot read the sound of {path}: {tail}")


class _Features:
    """Per-hop mean squares (whole and low-passed) and spectral flux of a sound fed in chunks,
    keeping only the samples the next hops need. Samples are numbered from hop 0's first;
    ``pre`` of them come before it (zeros stand in for any more that the spectra need)."""

    def __init__(self, pre: int):
        zeros = max(0, HOP + _REACH - pre)            # hop -1's window starts HOP+_REACH early
        self.samples = np.zeros(zeros, np.float32)    # from sample number self.first on
        self.low = self.samples.copy()
        self.first = -zeros - pre
        self.state = np.zeros((_SOS.shape[0], 2))
        self.done = 0                                 # hops computed
        self.previous = None                          # the spectrum of hop done - 1
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def feed(self, chunk: np.ndarray) -> None:
        low, self.state = sg.sosfilt(_SOS, chunk, zi=self.state)
        self.samples = np.concatenate([self.samples, chunk])
        self.low = np.concatenate([self.low, low.astype(np.float32)])
        if self.previous is None:
            self.previous = _spectra(self._window(-1, 1))[0]
        count = (self.first + len(self.samples) - WINDOW + _REACH) // HOP + 1 - self.done
        if count <= 0:
            return
        spectra = _spectra(self._window(self.done, count))
        flux = np.maximum(np.diff(spectra, axis=0, prepend=self.previous[None]), 0).sum(1)
        begin = self.done * HOP - self.first
        hops = (slice(begin, begin + count * HOP), (count, HOP))
        self.parts.append(((self.samples[hops[0]].reshape(hops[1]) ** 2).mean(1),
                           (self.low[hops[0]].reshape(hops[1]) ** 2).mean(1), flux))
        self.done += count
        self.previous = spectra[-1]
        drop = self.done * HOP - _REACH - self.first  # the next window's first sample
        self.samples, self.low, self.first = self.samples[drop:], self.low[drop:], \
            self.first + drop

    def _window(self, hop: int, count: int) -> np.ndarray:
        """The spectrum windows of ``count`` hops from ``hop``, (count, WINDOW)."""
        begin = hop * HOP - _REACH - self.first
        return np.lib.stride_tricks.sliding_window_view(
            self.samples[begin:begin + (count - 1) * HOP + WINDOW], WINDOW)[::HOP]

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(loudness dB, bass dB, flux) per hop, of every whole hop fed."""
        fed = self.first + len(self.samples)
        self.feed(np.zeros(WINDOW + HOP, np.float32))
        energy, bass, flux = (np.concatenate(a)[:max(0, fed // HOP)] for a in zip(*self.parts))
        # no onsets where a window reaches past the end: the sound cut there is no onset
        flux[max(0, (fed + _REACH - WINDOW) // HOP + 1):] = 0
        return (_decibels(nd.uniform_filter1d(energy, 5, mode="nearest")),
                _decibels(nd.uniform_filter1d(bass, 10, mode="nearest")), flux)


def _spectra(windows: np.ndarray) -> np.ndarray:
    """Log-magnitude spectra of sample windows (rows), 0 for silence: log(1 + 1000 |X|) with
    X scaled so that a full-scale sine's peak is 1/2."""
    return np.log1p(1000 * np.abs(np.fft.rfft(windows * _HANN)) / _HANN.sum())


def _centi(decibels: np.ndarray) -> np.ndarray:
    """dB in whole hundredths (the curves' resolution)."""
    return np.round(decibels.astype(np.float64) * 100)


def _decibels(mean_square: np.ndarray) -> np.ndarray:
    """Mean squares in dBFS (a full-scale square wave is 0 dB), silence at -120."""
    return (10 * np.log10(np.maximum(mean_square, 1e-12))).astype(np.float32)


def _levels(decibels: np.ndarray) -> tuple[float, float]:
    """(dB mapped to 0, dB mapped to 1) of a curve: its 98th percentile of what is not silence
    is 1, its 2nd percentile 0, but never more than RANGE_DB below the top or below
    SILENCE_DB; at least 6 dB apart."""
    heard = decibels[decibels > SILENCE_DB]
    high = float(np.percentile(heard, 98)) if len(heard) else SILENCE_DB
    low = max(float(np.percentile(decibels, 2)), high - RANGE_DB, SILENCE_DB)
    return float(min(low, high - 6.0)), float(high)


def _onsets(flux: np.ndarray, loudness: np.ndarray) -> np.ndarray:
    """Which hops an onset is at: a peak of the flux (the largest within 30 ms), above its
    mean over 0.2 s by a margin (a tenth of its 99.5th percentile, and at least MIN_FLUX),
    where the sound is not silent and grows louder, 0.1 s or more after the previous onset."""
    if not len(flux):
        return np.zeros(0, bool)
    margin = max(0.1 * float(np.percentile(flux, 99.5)), MIN_FLUX)
    # the sound 30 ms on is louder than 30 ms before: a sound cut off splashes the spectrum
    # as an onset does, but ends quieter
    rises = np.zeros_like(loudness, bool)
    rises[3:-3] = loudness[6:] > loudness[:-6]
    peaks = ((flux == nd.maximum_filter1d(flux, 7)) & (loudness > SILENCE_DB) & rises &
             (flux > nd.uniform_filter1d(flux, 21) + margin))
    kept, last = np.zeros_like(peaks), -10 ** 9
    for hop in np.flatnonzero(peaks):
        if hop - last >= 0.1 * RATE / HOP:
            kept[hop], last = True, hop
    return kept
