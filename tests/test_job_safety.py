"""``python -m deepdream`` never destroys or mixes what a user has: a --work folder of theirs,
the movie's own folder, another movie's job, the input as the output; and every mistake that
can be found before the first frame is extracted is one line, leaving nothing behind."""
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, script
from media import assert_in_sync, make_beep_clip, make_clip, stream_length

FPS = 25
DREAM = ["-l", "conv2/3x3", "-oct", "1", "-itr", "1", "-b", "0"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_beep_clip(tmp_path_factory.mktemp("job") / "clip.mp4", (0.32, 0.84), FPS,
                          duration=1.2)


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def refused(*args, cwd=None):
    """Run the one command expecting a one-line refusal; returns that line."""
    result = script("-m deepdream", *args, cwd=cwd, check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("bookkeeping", [[], ["job.json", "movie.json", "params.json"]],
                         ids=["notes", "files named as ours"])
def test_a_work_folder_of_the_users_keeps_their_files(clip, tiny_model_dir, tmp_path,
                                                      bookkeeping):
    """A folder of the user's, also one holding files named as the job's bookkeeping (a
    job.json without our mark is not a job of ours): the job works in a folder of its own
    inside it, and every file of theirs stays byte for byte."""
    mine = tmp_path / "mywork"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "00000001.png").write_bytes(b"not even a picture")
    for name in bookkeeping:
        (mine / name).write_text('{"movie": {"path": "%s"}, "mine": true}' % clip)
    before = snapshot(mine)
    out = tmp_path / "out.mp4"
    script("-m deepdream", clip, "-o", out, "--work", mine, "-t", tiny_model_dir, *DREAM)
    assert snapshot(mine) == before                   # the job's own folder came and went
    assert sorted(p.name for p in mine.iterdir()) == sorted(["00000001.png", "notes.txt",
                                                             *bookkeeping])
    assert_in_sync(out, clip, FPS)


def test_a_work_folder_the_job_makes_goes_with_its_parents(clip, tiny_model_dir, tmp_path):
    out = tmp_path / "out.mp4"
    script("-m deepdream", clip, "-o", out, "--work", tmp_path / "a" / "b" / "c",
           "-t", tiny_model_dir, *DREAM)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]     # no empty a/, a/b/


def test_the_movies_own_folder_as_work_keeps_the_movie(clip, tiny_model_dir, tmp_path):
    folder = tmp_path / "film"
    folder.mkdir()
    movie = folder / "clip.mp4"
    movie.write_bytes(clip.read_bytes())
    before = snapshot(folder)
    out = tmp_path / "out.mp4"
    script("-m deepdream", movie, "-o", out, "--work", folder, "-t", tiny_model_dir, *DREAM)
    assert snapshot(folder) == before
    assert stream_length(out, "v")[0] == stream_length(movie, "v")[0]


def test_another_movie_into_the_same_output_is_refused(clip, tiny_model_dir, tmp_path):
    other = make_clip(tmp_path / "other.mp4", size="128x48", rate="25", duration=0.4)
    out = tmp_path / "same.mp4"
    script("-m deepdream", clip, "-o", out, "-t", tiny_model_dir, *DREAM, "--keep-frames")
    work = tmp_path / ".same.deepdream"
    before, movie = snapshot(work), out.read_bytes()
    line = refused(other, "-o", out, "-t", tiny_model_dir, *DREAM)
    assert "another movie" in line and "clip.mp4" in line
    assert snapshot(work) == before and out.read_bytes() == movie    # nothing mixed


def test_the_movie_changed_since_its_frames_were_extracted_is_refused(clip, tiny_model_dir,
                                                                     tmp_path):
    movie = tmp_path / "m.mp4"
    movie.write_bytes(clip.read_bytes())
    out = tmp_path / "o.mp4"
    script("-m deepdream", movie, "-o", out, "-t", tiny_model_dir, *DREAM, "--keep-frames")
    make_clip(movie, size="128x48", rate="25", duration=0.4)     # replaced under its name
    line = refused(movie, "-o", out, "-t", tiny_model_dir, *DREAM)
    assert f"the frames of {movie} as it was before it changed" in line


@pytest.mark.parametrize("where", ["input", "inside work"])
def test_an_output_that_would_destroy_something_is_refused_first(clip, tiny_model_dir,
                                                                 tmp_path, where):
    movie = tmp_path / "m.mp4"
    movie.write_bytes(clip.read_bytes())
    work, inside = tmp_path / "w", tmp_path / "w" / "out.mp4"
    args, message = {
        "input": (["-o", movie], f"the output {movie} is the movie itself: give another -o"),
        "inside work": (["-o", inside, "--work", work],
                        f"the output {inside} is inside the work folder {work}, which is "
                        "removed at the end: give another -o or --work")}[where]
    before = snapshot(tmp_path)
    assert refused(movie, *args, "-t", tiny_model_dir, *DREAM) == f"error: {message}"
    assert snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["m.mp4"]


# each mistake, and the words of its refusal that name the flag or file given wrong
MISTAKES = [
    (["-o", "out.webm"], "ffmpeg cannot write out.webm with --codec libx264: "),
    (["-o", "out"], "the output out has no extension"),
    (["-o", "out.xyz"], "from the extension .xyz of out.xyz"),
    (["-l", "no_such_layer"], "the net has no layer or blob named 'no_such_layer'"),
    (["-oct", "40"], "-oct/--octaves 40: a 128x48 frame is too small for 40 octaves"),
    (["-oct", "100"], "-oct/--octaves 100: a 128x48 frame is too small for 100 octaves"),
    (["-sf", "8", "-ef", "3"], "-sf/--start_frame 8 is after -ef/--end_frame 3"),
    (["-sf", "-3"], "-sf/--start_frame is a frame number: 1 or more"),
    (["--seed", "-1"], "--seed must be from 0 to 4294967295"),
    (["-z", "inf"], "-z/--zoom: inf is not a finite number"),
    (["--sheet", "sheet.xyz"], "sheet.xyz: a picture's name must end in .jpg"),
]


@pytest.mark.parametrize("mistake, words", MISTAKES, ids=[" ".join(m) for m, _ in MISTAKES])
def test_mistakes_are_one_line_before_anything_is_extracted(clip, tiny_model_dir, tmp_path,
                                                            mistake, words):
    movie = tmp_path / "m.mp4"
    movie.write_bytes(clip.read_bytes())
    args = DREAM + mistake if "-l" not in mistake else DREAM[2:] + mistake
    start = time.monotonic()
    line = refused(movie, "-t", tiny_model_dir, *args, cwd=tmp_path)
    assert words in line, line
    assert time.monotonic() - start < 60
    assert sorted(os.listdir(tmp_path)) == ["m.mp4"]        # no hidden work folder


def test_two_jobs_on_one_output_one_is_refused_and_the_other_finishes(clip, tiny_model_dir,
                                                                       tmp_path):
    out = tmp_path / "o.mp4"
    # the first dreams long enough (12 steps an octave) for the second to meet its lock
    command = [sys.executable, "-m", "deepdream", str(clip), "-o", str(out), "-t",
               str(tiny_model_dir), "-l", "inception_4c/output", "-oct", "2", "-itr", "12"]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    work = tmp_path / ".o.deepdream"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (work / "frames").exists():
        time.sleep(0.02)
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1 and second.stderr.splitlines()[-1] == (
        f"error: another run is dreaming into {work}: wait for it to finish, or stop it first")
    assert first.wait(300) == 0, first.stderr.read()[-2000:]
    assert stream_length(out, "v")[0] == stream_length(clip, "v")[0]     # every frame
    assert not work.exists()


def test_an_existing_movie_of_yours_is_not_replaced_unasked(clip, tiny_model_dir, tmp_path):
    out = tmp_path / "mine.mp4"
    out.write_bytes(b"a movie of mine")
    assert refused(clip, "-o", out, "-t", tiny_model_dir, *DREAM) == (
        f"error: {out} already exists: give another -o, or --overwrite to replace it")
    assert out.read_bytes() == b"a movie of mine"
    assert sorted(os.listdir(tmp_path)) == ["mine.mp4"]
    script("-m deepdream", clip, "-o", out, "-t", tiny_model_dir, *DREAM, "--overwrite")
    assert stream_length(out, "v")[0] == stream_length(clip, "v")[0]
    frames_dir = tmp_path / "f"                          # stage 3 alike
    script("1_movie2frames.py", clip, frames_dir)
    result = script("3_frames2movie.py", frames_dir, "-o", out, check=False)
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f"error: {out} already exists: give another -o, or --overwrite to replace it"]
    assert stream_length(out, "v")[0] == stream_length(clip, "v")[0]
