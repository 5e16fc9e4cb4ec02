"""What a process killed in the middle of a checkpoint save leaves, and how the next reader or
writer completes or removes it."""
import json
import subprocess
import sys

import pytest

from checkpoint import read_checkpoint_meta, schedule_changes
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


def test_the_batch_a_resume_compares_is_the_processes_together():
    """--batch_size is each process's share: 2 processes at 4 resume as 1 at 8, not as 1 at 4."""
    assert schedule_changes({"batch_size": 4, "lr": 1e-3}, {"batch_size": 8, "lr": 1e-3}, (2, 1)) == []
    assert schedule_changes({"batch_size": 4}, {"batch_size": 4}, (2, 1)) == [
        "--batch_size 4 in 2 processes (now 4 in 1)"]
    assert schedule_changes({"batch_size": 8, "max_epoch": 1}, {"batch_size": 8, "max_epoch": 3}) == []
    assert schedule_changes({"max_epoch": 1}, {"max_epoch": 3, "lr_schedule": "linear"}) == [
        "--max_epoch 1 (now 3)"]
