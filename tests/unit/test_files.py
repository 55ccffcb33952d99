"""The one atomic write: all or nothing, permissions from the umask, no temporary file left behind."""
import os

import pytest

from helpers.files import atomic_path, write_text


def test_a_written_file_appears_whole_with_the_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    old = os.umask(0o022)
    try:
        write_text(target, "a,b\n1,2\n")
    finally:
        os.umask(old)
    assert target.read_text() == "a,b\n1,2\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]


def test_a_failed_write_leaves_the_earlier_file_untouched(tmp_path):
    target = tmp_path / "model.pth"
    target.write_text("good")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_a_folder_is_not_a_file_to_write(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_text(tmp_path, "x")
    assert list(tmp_path.iterdir()) == []
