"""reproduce.sh's bookkeeping, with a stand-in for Python that records each job it is asked to run."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAND_IN = """#!/bin/bash
if [ "$1" = "-" ]; then exit 0; fi  # the summary table at the end
echo "$*" >> "$(dirname "$0")/jobs.txt"
"""


def test_finished_jobs_are_reused_and_stopped_ones_continue_from_last(tmp_path):
    python = tmp_path / "python"
    python.write_text(STAND_IN, encoding="utf-8")
    python.chmod(0o755)
    out = tmp_path / "runs"
    (out / "teacher").mkdir(parents=True)
    (out / "teacher" / "summary.json").write_text("{}", encoding="utf-8")  # finished
    (out / "student" / "last").mkdir(parents=True)
    (out / "student" / "last" / "checkpoint.json").write_text("{}", encoding="utf-8")  # stopped
    (out / "distilled" / "vdl").mkdir(parents=True)  # stopped before its first checkpoint
    env = {**os.environ, "PYTHON": str(python), "OUT": str(out), "DATA_DIR": str(tmp_path / "data")}
    subprocess.run(["bash", "reproduce.sh"], cwd=ROOT, env=env, check=True, capture_output=True)
    jobs = (tmp_path / "jobs.txt").read_text(encoding="utf-8").splitlines()
    assert [job.split()[0] for job in jobs] == ["student_lstm_small.py", "teacher_student_distill.py"]
    assert jobs[0].endswith(f"--output_dir {out / 'student'} --init_from_ckpt {out / 'student' / 'last'}")
    assert jobs[1].endswith(f"--output_dir {out / 'distilled'} --overwrite_output_dir")
