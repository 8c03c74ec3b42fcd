"""Frame folders: numeric order, every image mode to RGB, rounding, atomic writes."""
import numpy as np
import pytest
from PIL import Image

from deepdream.io import frames
from deepdream.errors import FramesError


def test_frames_in_numeric_order_none_skipped(tmp_path):
    numbers = [1, 2, 9, 10, 99, 100, 999, 1000, 1001]
    for n in reversed(numbers):   # names of mixed widths: 100 must not sort before 1000
        Image.new("RGB", (4, 4)).save(tmp_path / f"{n}.png")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "frame_7.png").write_bytes(b"")
    (tmp_path / ".00000003.png.123.part").write_bytes(b"")
    found = frames.list_frames(tmp_path)
    assert list(found) == numbers
    assert found[1001].name == "1001.png"


def test_mixed_types_need_a_choice(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "00000001.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "00000002.jpg")
    with pytest.raises(FramesError, match="several types"):
        frames.list_frames(tmp_path)
    assert list(frames.list_frames(tmp_path, "jpg")) == [2]


def test_missing_folder(tmp_path):
    with pytest.raises(FramesError, match="not found"):
        frames.list_frames(tmp_path / "nope")


MODES = {
    "gray": (Image.fromarray(np.full((5, 6), 200, np.uint8)), (200, 200, 200)),
    "rgba-opaque": (Image.new("RGBA", (6, 5), (10, 20, 30, 255)), (10, 20, 30)),
    "rgba-transparent": (Image.new("RGBA", (6, 5), (10, 20, 30, 0)), (0, 0, 0)),
    "16-bit": (Image.fromarray(np.full((5, 6), 65535, np.uint16)), (255, 255, 255)),
    "palette": (Image.new("RGB", (6, 5), (0, 128, 255)).convert("P", palette=Image.ADAPTIVE),
                (0, 128, 255)),
}


@pytest.mark.parametrize("mode", MODES)
def test_any_image_mode_reads_as_rgb(tmp_path, mode):
    image, pixel = MODES[mode]
    image.save(tmp_path / "00000001.png")
    array = frames.read_frame(tmp_path / "00000001.png")
    assert array.shape == (5, 6, 3) and array.dtype == np.uint8
    assert tuple(array[2, 3]) == pixel


def test_read_resizes_to_width_keeping_aspect(tmp_path):
    Image.new("RGB", (200, 100)).save(tmp_path / "1.png")
    assert frames.read_frame(tmp_path / "1.png", 50).shape == (25, 50, 3)


@pytest.mark.parametrize("content", [b"", b"garbage" * 10], ids=["empty", "garbage"])
def test_unreadable_frame_is_named(tmp_path, content):
    (tmp_path / "00000004.png").write_bytes(content)
    with pytest.raises(FramesError, match="00000004.png"):
        frames.read_frame(tmp_path / "00000004.png")


def test_to_uint8_rounds_instead_of_truncating():
    np.testing.assert_array_equal(frames.to_uint8(np.array([127.6, 0.4, -3, 300.2])),
                                  [128, 0, 0, 255])


def test_write_frame_is_atomic_and_lossless_for_png(tmp_path):
    image = np.random.default_rng(0).uniform(0, 255, (7, 9, 3))
    path = tmp_path / "00000001.png"
    frames.write_frame(path, image)
    np.testing.assert_array_equal(frames.read_frame(path), frames.to_uint8(image))
    assert [p.name for p in tmp_path.iterdir()] == ["00000001.png"]


def test_background_writes_are_all_on_disk_after_close(tmp_path):
    import time

    io = frames.BackgroundIO(backlog=2)

    def slow_write(path, image):
        time.sleep(0.05)
        frames.write_frame(path, image)

    for n in range(1, 7):
        io.write(slow_write, tmp_path / frames.frame_name(n, "png"), np.full((4, 4, 3), n))
    io.close()
    made = frames.list_frames(tmp_path)
    assert list(made) == list(range(1, 7))
    assert [int(frames.read_frame(p)[0, 0, 0]) for p in made.values()] == list(range(1, 7))


def test_a_failed_background_write_is_raised(tmp_path):
    io = frames.BackgroundIO()
    io.write(frames.write_frame, tmp_path / "missing" / "00000001.png", np.zeros((4, 4, 3)))
    with pytest.raises(FileNotFoundError) as failed:
        io.close()
    assert failed.value.filename == str(tmp_path / "missing" / "00000001.png")


def test_background_reads_run_in_a_reader_thread():
    import threading

    io = frames.BackgroundIO()
    future = io.read(lambda n: (n, threading.current_thread().name), 7)
    number, thread = future.result(timeout=5)
    assert number == 7 and thread.startswith("deepdream-read")
    assert thread != threading.current_thread().name
    io.close()


def test_a_user_file_named_like_a_temporary_one_is_never_removed(tmp_path):
    """Our temporary files live in marked scratch folders: a file of the user's named as an
    older version named them, or a folder named like ours without our mark, is left as it is
    by every atomic write and by the removal of what killed runs left."""
    from deepdream.io import ours
    mine = {".00000003.png.123-456.part": b"mine", ".out.part-host-1.mp4": b"mine too"}
    for name, data in mine.items():
        (tmp_path / name).write_bytes(data)
    unmarked = tmp_path / f"{ours.SCRATCH_PREFIX}somehost-1-abcd"
    unmarked.mkdir()
    (unmarked / "x.png").write_bytes(b"also mine")
    frames.write_frame(tmp_path / "00000003.png", np.zeros((4, 4, 3)))
    ours.remove_dead_scratch(tmp_path)
    assert {n: (tmp_path / n).read_bytes() for n in mine} == mine
    assert (unmarked / "x.png").read_bytes() == b"also mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*mine, unmarked.name, "00000003.png"])


def test_a_scratch_folder_left_by_a_killed_process_is_removed_by_the_next(tmp_path):
    """A process of ours killed while writing leaves its marked scratch folder; the next
    process that writes there removes it (its process is gone), and nothing of a running
    process's."""
    import subprocess
    import sys
    from deepdream.io import ours
    code = ("import os, sys\nfrom pathlib import Path\nfrom deepdream.io import ours\n"
            "with ours.temporary(Path(sys.argv[1]) / 'frame.png') as tmp:\n"
            "    tmp.write_bytes(b'half')\n    os._exit(9)\n")          # killed mid-write
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    left = [p for p in tmp_path.iterdir() if p.name.startswith(ours.SCRATCH_PREFIX)]
    assert len(left) == 1 and ours.dead_scratch(tmp_path) == left
    with ours.scratch(tmp_path) as mine:            # this process's own: alive
        assert not left[0].exists()
        assert ours.dead_scratch(tmp_path) == [] and mine.is_dir()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("links", [True, False], ids=["hard links", "no hard links"])
def test_a_finished_file_never_takes_the_name_of_a_file_that_appeared(tmp_path, monkeypatch,
                                                                      links):
    """``put_in_place`` names a finished file of ours only where no file has the name, also
    when the user's file appears while it is placed: with hard links, as the link is made;
    on a file system without them (os.link refused, as FAT and some network shares refuse
    it), just after the name is seen free, as the name is taken."""
    import errno
    import os
    from pathlib import Path
    from deepdream.io import ours
    real_link, real_lexists, real_open = os.link, os.path.lexists, os.open
    appear = {}

    def arrive(path):                      # the user's file, once, at its moment
        if Path(path) in appear:
            Path(path).write_bytes(appear.pop(Path(path)))

    def link(src, dst, **kwargs):
        if not links:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        arrive(dst)
        return real_link(src, dst, **kwargs)

    def lexists(path):                     # seen free, then it comes
        seen = real_lexists(path)
        arrive(path)
        return seen

    def open_(path, flags, *args, **kwargs):
        arrive(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os.path, "lexists", lexists)
    monkeypatch.setattr(os, "open", open_)
    with ours.scratch(tmp_path) as scratch:
        free, taken = tmp_path / "free.mp4", tmp_path / "taken.mp4"
        for finished in (scratch / "a", scratch / "b"):
            finished.write_bytes(b"ours")
        appear[taken] = b"the user's"
        assert ours.put_in_place(scratch / "a", free)
        assert not ours.put_in_place(scratch / "b", taken)
        assert free.read_bytes() == b"ours" and taken.read_bytes() == b"the user's"
        assert not (scratch / "a").exists() and (scratch / "b").read_bytes() == b"ours"


def test_a_placement_that_fails_leaves_no_empty_file_and_removes_no_other(tmp_path,
                                                                          monkeypatch):
    """Without hard links, a rename that fails after the name was taken by our empty file:
    that empty file goes, and only it -- a file of the user's that took its place stays."""
    import errno
    import os
    from deepdream.io import ours
    real_replace = os.replace

    def no_link(src, dst, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    def failing_replace(src, dst, **kwargs):
        if dst == users:                   # the user's file takes the name first
            (tmp_path / "theirs").write_bytes(b"the user's")
            real_replace(tmp_path / "theirs", users)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "replace", failing_replace)
    ours_path, users = tmp_path / "a.mp4", tmp_path / "b.mp4"
    with ours.scratch(tmp_path) as scratch:
        for name in ("a", "b"):
            (scratch / name).write_bytes(b"ours")
        for finished, path in ((scratch / "a", ours_path), (scratch / "b", users)):
            with pytest.raises(OSError):
                ours.put_in_place(finished, path)
            assert finished.read_bytes() == b"ours"          # left where it is
    assert not ours_path.exists()
    assert users.read_bytes() == b"the user's"
