"""Makes samples/sample.mp4, the README's movie to dream: 3 s, 320x180, 25 fps, H.264 and AAC,
two shots (a slow zoom into scikit-image's astronaut photograph, public domain; a slow pan
across its cat, CC0) and a few generated tones, so that the project ships nothing of anyone
else's. ``python scripts/make_sample.py [OUT.mp4]`` (default: samples/sample.mp4, which it
replaces; any other existing file is refused)."""
from __future__ import annotations

import math
import os
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from deepdream.cli import common as cli
from deepdream.errors import DeepDreamError
from deepdream.io.video import ffmpeg_exe

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.mp4"
SIZE, FPS, RATE = (320, 180), 25, 44100
# (photograph, frames, crop box at the first frame, at the last): left, top, right, bottom,
# each 16:9 like SIZE. The astronaut is 512x512, the cat 451x300.
SHOTS = [("astronaut", 40, (0, 0, 512, 288), (92, 24, 348, 168)),
         ("chelsea", 35, (0, 40, 384, 256), (67, 40, 451, 256))]
# (start s, length s, Hz): a rising C major arpeggio, one note on the cut at 1.6 s
TONES = [(0.0, 0.7, 261.63), (0.8, 0.7, 329.63), (1.6, 0.6, 392.00), (2.3, 0.7, 523.25)]


def frames():
    """Every frame of the movie, RGB (180, 320, 3) uint8, in order."""
    import skimage.data
    for name, count, first, last in SHOTS:
        photo = Image.fromarray(getattr(skimage.data, name)())
        for i in range(count):
            t = 0.5 - 0.5 * math.cos(math.pi * i / (count - 1))       # eased 0 -> 1
            box = tuple(a + (b - a) * t for a, b in zip(first, last))
            yield np.asarray(photo.resize(SIZE, Image.Resampling.LANCZOS, box=box))


def tones(seconds: float) -> np.ndarray:
    """The sound track: TONES as sines with a soft attack and decay, int16 mono samples."""
    t = np.arange(round(seconds * RATE)) / RATE
    sound = np.zeros_like(t)
    for start, length, hz in TONES:
        on = (t >= start) & (t < start + length)
        local = t[on] - start
        envelope = np.minimum(local / 0.02, 1) * np.exp(-3 * local / length)
        sound[on] += 0.4 * envelope * np.sin(2 * np.pi * hz * local)
    return np.round(sound * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())


def make_sample(out: Path) -> None:
    """Write the sample movie to ``out`` (the picture and the sound are the same each time).
    Raises DeepDreamError if ``out`` exists and is not samples/sample.mp4, or if ffmpeg
    fails; a failed run leaves ``out`` as it was."""
    if out.exists() and out.resolve() != SAMPLE:
        raise DeepDreamError(f"{out} exists: give a new file name (only {SAMPLE} is remade)")
    count = sum(shot[1] for shot in SHOTS)
    with tempfile.TemporaryDirectory(prefix=".make_sample-", dir=out.parent) as tmp:
        wav, part = Path(tmp) / "tones.wav", Path(tmp) / out.name
        write_wav(wav, tones(count / FPS))
        command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "%dx%d" % SIZE, "-r", str(FPS),
                   "-i", "-", "-i", str(wav), "-map", "0:v", "-map", "1:a",
                   "-c:v", "libx264", "-preset", "slow", "-crf", "23", "-pix_fmt", "yuv420p",
                   "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-shortest",
                   "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
                   "-flags:a", "+bitexact", "-movflags", "+faststart", str(part)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for frame in frames():
                process.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass                                  # ffmpeg stopped: its message says why
        _, err = process.communicate()
        if process.returncode:
            lines = err.decode(errors="replace").strip().splitlines()
            raise DeepDreamError("ffmpeg could not write the sample: " +
                                 (lines[-1] if lines else f"exit code {process.returncode}"))
        os.replace(part, out)


def main(argv=None) -> int:
    p = cli.ArgumentParser(prog="scripts/make_sample.py",
                           description="Make the README's sample movie from scikit-image's "
                                       "public-domain photographs and generated tones.")
    p.add_argument("out", nargs="?", default=str(SAMPLE), help="the movie to write")
    args = p.parse_args(argv)
    make_sample(Path(args.out))
    print(f"{args.out} written")
    return 0


if __name__ == "__main__":
    cli.run(main)
