"""kill -9 between checkpoints, then --init_from_ckpt last: the same weights and dev curve as a
run never interrupted, with dropout on (the random state is part of last/)."""
import json
import os
import signal
import subprocess
import sys
import time

from conftest import assert_same_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DROPOUT = ["--dropout_prob", "0.3", "--word_dropout", "0.2", "--num_threads", "1", "--device", "cpu",
           "--emb_dim", "16", "--hidden_size", "16", "--batch_size", "8", "--lr", "1e-2", "--save_steps", "3"]


def saved_step(output_dir):
    try:
        with open(os.path.join(output_dir, "last", "checkpoint.json"), encoding="utf-8") as f:
            return json.load(f)["state"]["global_step"]
    except (OSError, ValueError):  # not written yet, or being replaced
        return 0


def run(script, argv):
    subprocess.run([sys.executable, script, *argv], cwd=ROOT, check=True, capture_output=True)


def run_killed_at(script, argv, output_dir, step):
    """Start the script, SIGKILL it once last/ holds `step` or a later one."""
    process = subprocess.Popen([sys.executable, script, *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while saved_step(output_dir) < step and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"


def assert_same_run(whole, resumed):
    curves = []
    for directory in (whole, resumed):
        with open(os.path.join(directory, "summary.json"), encoding="utf-8") as f:
            curves.append(json.load(f)["dev_acc"])
    assert curves[0] == curves[1]
    assert_same_weights(whole / "last", resumed / "last")


def test_student_killed_and_resumed_is_the_uninterrupted_run(toy_task, tmp_path):
    data_dir, vocab = toy_task
    common = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--max_epoch", "40", *DROPOUT]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run("student_lstm_small.py", [*common, "--output_dir", str(whole)])
    run_killed_at("student_lstm_small.py", [*common, "--output_dir", str(killed)], killed, step=12)
    assert not (killed / "summary.json").exists()
    run("student_lstm_small.py", [*common, "--output_dir", str(killed), "--init_from_ckpt", str(killed / "last")])
    assert_same_run(whole, killed)
    assert sorted(os.listdir(killed)) == [".distill_lstm.lock", "best", "last", "summary.json", "vdl"]  # no debris


def test_distillation_killed_and_resumed_is_the_uninterrupted_run(toy_task, tiny_teacher, tmp_path):
    data_dir, vocab = toy_task
    teacher = tmp_path / "teacher"
    run("teacher_train_glue.py", ["--data_dir", str(data_dir), "--model_name_or_path", str(tiny_teacher),
                                  "--model_type", "ernie-gram", "--output_dir", str(teacher), "--max_steps", "4",
                                  "--batch_size", "8", "--max_seq_length", "32", "--device", "cpu"])
    common = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--model_name", str(tiny_teacher),
              "--teacher_dir", str(teacher / "best"), "--logits_cache", str(tmp_path / "cache"),
              "--n_iter", "2", "--max_epoch", "15", "--optimizer", "adam", *DROPOUT]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run("teacher_student_distill.py", [*common, "--output_dir", str(whole)])
    run_killed_at("teacher_student_distill.py", [*common, "--output_dir", str(killed)], killed, step=12)
    run("teacher_student_distill.py", [*common, "--output_dir", str(killed), "--init_from_ckpt",
                                       str(killed / "last")])
    assert_same_run(whole, killed)
