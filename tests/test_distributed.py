"""Training under paddle.distributed.launch: 2 CPU processes (gloo) against 1, same global batch."""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from data import LengthGroupedBatchSampler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDENT = ["--emb_dim", "16", "--hidden_size", "16", "--device", "cpu", "--num_threads", "1", "--lr", "1e-2",
           "--dropout_prob", "0.0", "--save_steps", "3"]


def launch(script, args, processes, log_dir):
    """Run a script in `processes` processes under Paddle's launcher (or plainly, for 1)."""
    prefix = [sys.executable]
    if processes > 1:
        prefix += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(processes), "--log_dir", str(log_dir)]
    done = subprocess.run([*prefix, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + worker_logs(log_dir)


def worker_logs(log_dir):
    """The end of each rank's output (the launcher's other files there hold its environment)."""
    if not os.path.isdir(log_dir):
        return ""
    return "".join(f"\n--- {f}\n" + open(os.path.join(log_dir, f)).read()[-3000:]
                   for f in sorted(os.listdir(log_dir)) if f.startswith("workerlog"))


def weights(path):
    return {k: v.numpy() for k, v in paddle.load(os.path.join(path, "model_state.pdparams")).items()}


def assert_close_weights(a, b):
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for k in first:
        np.testing.assert_allclose(first[k], second[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_ranks_share_each_global_batch_and_take_the_same_number_of_steps():
    lengths = list(range(1, 30))
    single = LengthGroupedBatchSampler(lengths, 8, shuffle=True, seed=3)
    ranks = [LengthGroupedBatchSampler(lengths, 4, shuffle=True, seed=3, rank=r, ranks=2) for r in (0, 1)]
    for sampler in (single, *ranks):
        sampler.set_epoch(2)
    shares = [list(r) for r in ranks]
    assert len(shares[0]) == len(shares[1]) == len(ranks[0]) == len(single) == 4  # 29 sentences, 8 a step
    for whole, zero, one in zip(single, *shares):
        assert sorted(zero + one) == sorted(whole) and not set(zero) & set(one)


@pytest.mark.parametrize("script", ["student_lstm_small.py"])
def test_two_processes_train_what_one_does_with_the_same_global_batch(script, toy_task, tmp_path):
    data_dir, vocab = toy_task
    common = ["--data_dir", data_dir, "--vocab_path", vocab, *STUDENT, "--max_epoch", "2"]
    launch(script, [*common, "--batch_size", "8", "--output_dir", tmp_path / "one"], 1, tmp_path / "log1")
    launch(script, [*common, "--batch_size", "4", "--output_dir", tmp_path / "two"], 2, tmp_path / "log2")
    assert_close_weights(tmp_path / "one" / "last", tmp_path / "two" / "last")
    one, two = (json.loads((tmp_path / run / "summary.json").read_text()) for run in ("one", "two"))
    assert [s for s, _ in one["dev_acc"]] == [s for s, _ in two["dev_acc"]]  # 6 global batches an epoch
    assert np.allclose([a for _, a in one["dev_acc"]], [a for _, a in two["dev_acc"]])
    # rank 0 alone wrote: one VisualDL log, the lock file released
    assert len(os.listdir(tmp_path / "two" / "vdl")) == 1

    # resumed under the launcher, it ends where the uninterrupted 2-process run of 3 epochs does
    launch(script, [*common, "--batch_size", "4", "--max_epoch", "3", "--output_dir", tmp_path / "three"], 2,
           tmp_path / "log3")
    launch(script, [*common, "--batch_size", "4", "--max_epoch", "3", "--output_dir", tmp_path / "two",
                    "--init_from_ckpt", tmp_path / "two" / "last"], 2, tmp_path / "log4")
    assert_close_weights(tmp_path / "two" / "last", tmp_path / "three" / "last")


def test_distillation_and_the_teacher_under_the_launcher(fine_tuned, tmp_path):
    data_dir, vocab, base, best = fine_tuned
    common = ["--data_dir", data_dir, "--vocab_path", vocab, "--model_name", base, "--teacher_dir", best,
              "--logits_cache", tmp_path / "cache", *STUDENT, "--optimizer", "adam", "--n_iter", "1",
              "--max_epoch", "2"]
    launch("teacher_student_distill.py", [*common, "--batch_size", "8", "--output_dir", tmp_path / "one"], 1,
           tmp_path / "log1")
    launch("teacher_student_distill.py", [*common, "--batch_size", "4", "--output_dir", tmp_path / "two"], 2,
           tmp_path / "log2")
    assert_close_weights(tmp_path / "one" / "last", tmp_path / "two" / "last")
    assert len(os.listdir(tmp_path / "cache")) == 2  # one entry (and its lock file), shared by both runs

    # the teacher's logits labelled by 2 processes, each its share: the entry one process writes, within float
    # tolerance (batches of 4 round otherwise than batches of 8, and CPUs differ in the last bits)
    launch("teacher_student_distill.py", [*common, "--batch_size", "4", "--output_dir", tmp_path / "sharded",
                                          "--logits_cache", tmp_path / "cache2"], 2, tmp_path / "log5")
    (entry,) = [e for e in os.listdir(tmp_path / "cache") if not e.startswith(".")]
    assert sorted(os.listdir(tmp_path / "cache2")) == sorted(os.listdir(tmp_path / "cache"))  # the same key
    single, sharded = (np.load(tmp_path / c / entry / "outputs.npz", allow_pickle=True) for c in ("cache", "cache2"))
    assert single.files == sharded.files
    for name in single.files:
        if single[name].dtype.kind == "f":
            np.testing.assert_allclose(single[name], sharded[name], rtol=1e-5, atol=1e-6, err_msg=name)
        else:  # the sentences themselves
            np.testing.assert_array_equal(single[name], sharded[name], err_msg=name)
    assert len(os.listdir(tmp_path / "two" / "vdl" / "teacher")) == 1  # the reference line, once

    teacher = ["--data_dir", data_dir, "--model_name_or_path", base, "--model_type", "ernie-gram", "--max_seq_length",
               "32", "--num_train_epochs", "1", "--device", "cpu", "--num_threads", "1"]
    launch("teacher_train_glue.py", [*teacher, "--batch_size", "8", "--output_dir", tmp_path / "teacher1"], 1,
           tmp_path / "log6")
    launch("teacher_train_glue.py", [*teacher, "--batch_size", "4", "--output_dir", tmp_path / "teacher2"], 2,
           tmp_path / "log3")
    assert_close_weights(tmp_path / "teacher1" / "last", tmp_path / "teacher2" / "last")  # the tiny teacher: no dropout
    one, two = (json.loads((tmp_path / t / "summary.json").read_text()) for t in ("teacher1", "teacher2"))
    assert np.allclose([a for _, a in one["dev_acc"]], [a for _, a in two["dev_acc"]])


def test_ranks_wait_for_rank_0_working_alone_longer_than_gloo_lets_a_collective_wait(tmp_path):
    """label_errors.py's rank 0 exports and scores each fold alone for minutes while the other ranks wait;
    paddle.distributed.barrier() gives up after gloo's 30 s on CPU (and the job with it), wait_for_ranks
    does not."""
    script = tmp_path / "alone.py"
    script.write_text(  # ends through run_main as every job does: ranks leaving unsynchronised can abort
        "import time, paddle\n"
        "from utils import run_main, wait_for_ranks, world\n"
        "def main():\n"
        "    paddle.set_device('cpu'); paddle.distributed.init_parallel_env()\n"
        "    if world()[0] == 0:\n"
        "        time.sleep(40)\n"
        "    wait_for_ranks('alone')\n"
        "    gathered = []\n"
        "    paddle.distributed.all_gather_object(gathered, world()[0])\n"  # a collective right after: both alive
        "    assert sorted(gathered) == [0, 1], gathered\n"
        "run_main(main)\n")
    launch(script, [], 2, tmp_path / "log")


def test_a_killed_rank_ends_the_job_and_leaves_whole_checkpoints(toy_task, tmp_path):
    import signal
    import time

    from test_kill_resume import saved_step
    from checkpoint import read_checkpoint_meta

    data_dir, vocab = toy_task
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--max_restart", "0",
            "--log_dir", str(tmp_path / "log"), os.path.join(ROOT, "student_lstm_small.py"), "--data_dir",
            str(data_dir), "--vocab_path", str(vocab), *map(str, STUDENT), "--batch_size", "4", "--max_epoch", "60",
            "--output_dir", str(out)]
    launcher = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while saved_step(out) < 6 and launcher.poll() is None:
        time.sleep(0.01)
    workers = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()
    rank1 = [pid for pid in workers if b"PADDLE_TRAINER_ID=1\0" in open(f"/proc/{pid}/environ", "rb").read()]
    os.kill(int(rank1[0]), signal.SIGKILL)
    assert launcher.wait(timeout=120) != 0  # the job ends, with an error
    for checkpoint in ("best", "last"):  # whole: readable metadata, weights of the model's shape
        meta = read_checkpoint_meta(str(out / checkpoint))
        assert meta["state"]["global_step"] >= 3
        paddle.load(str(out / checkpoint / "model_state.pdparams"))
    assert not [e for e in os.listdir(out) if ".tmp" in e]  # no half-written checkpoint left beside them
    # and the run resumes from last/ in one process
    launch("student_lstm_small.py", ["--data_dir", data_dir, "--vocab_path", vocab, *STUDENT, "--batch_size", "8",
                                     "--max_epoch", "2", "--output_dir", out, "--init_from_ckpt", out / "last"],
           1, tmp_path / "log1")


def test_label_errors_under_the_launcher_scores_as_one_process(toy_task, tmp_path):
    data_dir, vocab = toy_task
    common = ["--data_dir", data_dir, "--vocab_path", vocab, "--model", "student", *STUDENT, "--max_epoch", "3",
              "--folds", "2"]
    for processes, batch in ((1, 8), (2, 4)):
        launch("label_errors.py", [*common, "--batch_size", batch, "--output_dir", tmp_path / f"out{processes}",
                                   "--probs_cache", tmp_path / f"cache{processes}"], processes, tmp_path / f"log{processes}")
    folds = []
    for processes in (1, 2):
        cache = tmp_path / f"cache{processes}"
        (entry,) = os.listdir(cache)  # one entry, written by rank 0 alone, the fold runs removed
        assert sorted(os.listdir(cache / entry)) == ["fold0.json", "fold0.npy", "fold1.json", "fold1.npy",
                                                     "manifest.json"]
        folds.append([np.load(cache / entry / f"fold{k}.npy") for k in (0, 1)])
        cost = json.loads((cache / entry / "fold0.json").read_text(encoding="utf-8"))  # what a fold cost, and how
        assert (cost["processes"], cost["threads"]) == (processes, 1) and cost["seconds"] > 0
    for one, two in zip(*folds):
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-5)
    assert (tmp_path / "out2" / "label_issues.tsv").is_file() and len(os.listdir(tmp_path / "out2" / "vdl")) == 2
