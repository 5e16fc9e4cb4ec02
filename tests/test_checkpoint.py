"""What a process killed in the middle of a checkpoint save leaves, and how the next reader or
writer completes or removes it."""
import json
import subprocess
import sys

import pytest

from checkpoint import read_checkpoint_meta
from utils import atomic_path, recover_interrupted_swap


@pytest.fixture
def dead_pid():
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(done.stdout)


def checkpoint(path, step):
    path.mkdir()
    (path / "checkpoint.json").write_text(json.dumps({"state": {"global_step": step}}), encoding="utf-8")
    return path


def test_a_kill_between_the_two_renames_is_completed_by_the_next_reader(tmp_path, dead_pid):
    # atomic_path had renamed last -> last.old<pid> and not yet last.tmp<pid> -> last
    checkpoint(tmp_path / f"last.old{dead_pid}", 10)
    checkpoint(tmp_path / f"last.tmp{dead_pid}", 20)
    assert read_checkpoint_meta(str(tmp_path / "last"))["state"]["global_step"] == 20  # the newer copy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_a_kill_while_writing_leaves_the_previous_checkpoint_and_no_debris(tmp_path, dead_pid):
    checkpoint(tmp_path / "last", 10)
    (tmp_path / f"last.tmp{dead_pid}").mkdir()  # half written: no checkpoint.json yet
    (tmp_path / f"best.tmp{dead_pid}").mkdir()
    assert read_checkpoint_meta(str(tmp_path / "last"))["state"]["global_step"] == 10
    with atomic_path(str(tmp_path / "best")) as tmp:  # the next save of best/ cleans its own leftovers
        checkpoint(tmp_path / tmp.split("/")[-1], 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "last"]


def test_a_kill_while_removing_the_old_copy_is_cleaned(tmp_path, dead_pid):
    checkpoint(tmp_path / "last", 20)
    checkpoint(tmp_path / f"last.old{dead_pid}", 10)
    assert read_checkpoint_meta(str(tmp_path / "last"))["state"]["global_step"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_a_live_process_keeps_its_temporaries(tmp_path):
    checkpoint(tmp_path / "last", 10)
    with atomic_path(str(tmp_path / "last")) as tmp:
        checkpoint(tmp_path / tmp.split("/")[-1], 20)
        recover_interrupted_swap(str(tmp_path / "last"))  # another reader, meanwhile
        assert (tmp_path / tmp.split("/")[-1]).is_dir()
    assert read_checkpoint_meta(str(tmp_path / "last"))["state"]["global_step"] == 20
