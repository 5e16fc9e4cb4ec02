"""reproduce.sh's and quick_run.sh's bookkeeping, with a stand-in for Python that records each job it is asked
to run."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAND_IN = """#!/bin/bash
if [ "$1" = "-" ]; then exit 0; fi  # the summary table at the end
echo "$*" >> "$(dirname "$0")/jobs.txt"
"""


def stand_in(tmp_path):
    python = tmp_path / "python"
    python.write_text(STAND_IN, encoding="utf-8")
    python.chmod(0o755)
    return python


def test_finished_jobs_are_reused_and_stopped_ones_continue_from_last(tmp_path):
    python = stand_in(tmp_path)
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


def test_the_quick_run_trains_on_a_slice_into_a_new_directory_and_touches_every_stage(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev"):
        (data / f"{split}.tsv").write_text("label\ttext_a\n" + "1\t好\n" * 50, encoding="utf-8")
    out = tmp_path / "quick"
    env = {**os.environ, "PYTHON": str(stand_in(tmp_path)), "OUT": str(out), "DATA_DIR": str(data),
           "TEACHER": "m3e", "TRAIN_ROWS": "30", "DEV_ROWS": "10"}
    done = subprocess.run(["bash", "quick_run.sh"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    jobs = (tmp_path / "jobs.txt").read_text(encoding="utf-8").splitlines()
    assert [job.split()[0] for job in jobs] == ["teacher_train_glue.py", "teacher_student_distill.py",
                                                "export_model.py", "predict.py"]
    assert all(f"--data_dir {out / 'data'}" in job and "--max_steps 20" in job for job in jobs[:2])
    assert f"--teacher_dir {out / 'teacher' / 'best'}" in jobs[1] and f"--logits_cache {out}" in jobs[1]
    assert len((out / "data" / "train.tsv").read_text(encoding="utf-8").splitlines()) == 1 + 30
    assert len((out / "data" / "dev.tsv").read_text(encoding="utf-8").splitlines()) == 1 + 10
    assert "accuracies mean nothing" in done.stdout and f"export            {out / 'export'}" in done.stdout

    again = subprocess.run(["bash", "quick_run.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr == f"error: {out} exists; give OUT=DIR a new directory\n"
    assert len((tmp_path / "jobs.txt").read_text(encoding="utf-8").splitlines()) == 4  # nothing run again
    elsewhere = {**env, "OUT": str(tmp_path / "other"), "DATA_DIR": str(tmp_path / "none")}
    missing = subprocess.run(["bash", "quick_run.sh"], cwd=ROOT, env=elsewhere, capture_output=True, text=True)
    assert missing.returncode == 2 and f"{tmp_path / 'none' / 'train.tsv'}: no such file" in missing.stderr
    assert not (tmp_path / "other").exists()



def test_task_lcqmc_runs_the_pair_recipes_on_lcqmc_and_prints_f1(tmp_path):
    out, cache = tmp_path / "runs", tmp_path / "cache"
    env = {key: value for key, value in os.environ.items() if key not in ("DATA_DIR", "N_ITER", "UNLABELED")}
    env.update({"PYTHON": str(stand_in(tmp_path)), "OUT": str(out), "CPU": "1", "TASK": "lcqmc", "TEACHER": "m3e",
                "DISTILL_LSTM_CACHE": str(cache)})
    subprocess.run(["bash", "reproduce.sh"], cwd=ROOT, env=env, check=True, capture_output=True)
    jobs = (tmp_path / "jobs.txt").read_text(encoding="utf-8").splitlines()
    assert [job.split()[:2] for job in jobs] == [["teacher_train_glue.py", "@recipes/teacher_lcqmc.txt"],
                                                 ["student_lstm_small.py", "@recipes/student_lcqmc.txt"],
                                                 ["teacher_student_distill.py", "@recipes/distill_lcqmc.txt"]]
    assert all("--task_name lcqmc " in job and "--data_dir ../shared/data/lcqmc " in job for job in jobs)
    assert "--n_iter" not in jobs[2] and "--unlabeled_path" not in jobs[2]  # the recipe's copies; no unlabelled pairs
    subprocess.run(["bash", "reproduce.sh"], cwd=ROOT, env={**env, "N_ITER": "3"}, check=True, capture_output=True)
    assert (tmp_path / "jobs.txt").read_text(encoding="utf-8").splitlines()[-1].count(" --n_iter 3 ") == 1

    # bench_pairs.py's finished teacher is reused, and the table (real Python) has accuracy and F1
    teacher = cache / "teacher" / "lcqmc"
    for run, score in ((teacher, 0.8), (out / "student", 0.6), (out / "distilled", 0.7)):
        run.mkdir(parents=True, exist_ok=True)
        summary = {"best_dev_acc": score, "best_dev_f1": score + 0.01, "dev_unseen_acc": score - 0.1,
                   "dev_unseen_f1": score - 0.09}
        (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    done = subprocess.run(["bash", "reproduce.sh"], cwd=ROOT, env={**env, "PYTHON": sys.executable}, check=True,
                          capture_output=True, text=True)
    assert f"reusing {teacher}" in done.stdout
    assert "| model | dev acc | dev F1 | dev, unseen acc | dev, unseen F1 | wall | published test acc |" in done.stdout
    assert "| Bi-LSTM distilled | 0.7000 | 0.7100 | 0.6000 | 0.6100 | " in done.stdout
    assert "| about 0.87 (BERT-base / ERNIE 1.0) |" in done.stdout and "LCQMC's test set, not dev" in done.stdout
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["teacher"]["dev_unseen_f1"] == 0.8 - 0.09

    wrong = subprocess.run(["bash", "reproduce.sh"], cwd=ROOT, env={**env, "TASK": "qqp"}, capture_output=True,
                           text=True)
    assert wrong.returncode == 2 and wrong.stderr == "error: TASK=qqp: chnsenticorp or lcqmc\n"
