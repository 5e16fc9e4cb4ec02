import errno
import json
import os
import re

import paddle
import pytest
from visualdl import LogReader

import trainer
from conftest import assert_same_weights, crash_after_saving, main_of
from utils import InputError, run_main

TINY = ["--emb_dim", "16", "--hidden_size", "16", "--batch_size", "8", "--device", "cpu",
        "--num_threads", "2", "--log_freq", "1"]


def train(toy_task, output_dir, *extra):
    data_dir, vocab = toy_task
    main_of("student_lstm_small")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir",
                             str(output_dir), *TINY, *extra])
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def read_scalars(logdir, tag):
    reader = LogReader(file_path=os.path.join(logdir, os.listdir(logdir)[0]))
    return [(r.id, r.value) for r in reader.get_data("scalar", tag)]


def test_learns_a_separable_toy_task_and_logs_to_visualdl(toy_task, tmp_path):
    out = tmp_path / "run"
    summary = train(toy_task, out, "--max_epoch", "12", "--lr", "1e-2", "--dropout_prob", "0.0")
    assert summary["best_dev_acc"] >= 0.95

    with open(out / "best" / "checkpoint.json", encoding="utf-8") as f:
        meta = json.load(f)
    assert meta["labels"] == ["0", "1"] and meta["vocab"][:2] == ["[PAD]", "[UNK]"]
    assert "从未见过" not in meta["vocab"]  # in the dictionary, never in training: no row
    assert meta["model"]["vocab_size"] == len(meta["vocab"]) and meta["args"]["hidden_size"] == 16
    # best/ is what export and predict need; last/ adds what resuming needs
    assert set(os.listdir(out / "best")) == {"model_state.pdparams", "checkpoint.json"}
    assert set(os.listdir(out / "last")) == {"model_state.pdparams", "model_state.pdopt", "rng_state.pkl",
                                             "checkpoint.json"}

    losses = read_scalars(out / "vdl", "train/ce")
    assert len(losses) == 12 * 6 and losses[-1][1] < losses[0][1]
    assert [v for _, v in read_scalars(out / "vdl", "train/lr")] == pytest.approx([1e-2] * 72)
    logged = read_scalars(out / "vdl", "dev/acc")
    assert max(v for _, v in logged) == pytest.approx(summary["best_dev_acc"])
    assert [step for step, _ in summary["dev_acc"]] == [step for step, _ in logged]


def test_linear_schedule_decays_the_learning_rate_to_zero(toy_task, tmp_path):
    out = tmp_path / "run"
    train(toy_task, out, "--max_epoch", "2", "--lr", "1e-2", "--lr_schedule", "linear")
    lrs = [v for _, v in read_scalars(out / "vdl", "train/lr")]
    # logged after each of the 12 steps: 1e-2 * (1 - step / 12)
    assert lrs == pytest.approx([1e-2 * (1 - step / 12) for step in range(1, 13)], abs=1e-7)


def test_resume_continues_from_the_saved_step(toy_task, tmp_path):
    out = tmp_path / "run"
    train(toy_task, out, "--max_epoch", "1", "--save_steps", "4")
    with open(out / "last" / "checkpoint.json", encoding="utf-8") as f:
        saved = json.load(f)["state"]
    assert (saved["epoch"], saved["global_step"]) == (1, 6)  # 48 sentences / batch 8
    assert [step for step, _ in saved["dev_acc"]] == [4, 6]

    # a checkpoint written before the state had a field still resumes, the field at its default
    with open(out / "last" / "checkpoint.json", encoding="utf-8") as f:
        meta = json.load(f)
    del meta["state"]["dev_acc"]
    with open(out / "last" / "checkpoint.json", "w", encoding="utf-8") as f:
        json.dump(meta, f)
    train(toy_task, out, "--max_epoch", "3", "--init_from_ckpt", str(out / "last"))
    with open(out / "last" / "checkpoint.json", encoding="utf-8") as f:
        state = json.load(f)["state"]
    assert (state["epoch"], state["global_step"]) == (3, 18)
    assert [step for step, _ in state["dev_acc"]] == [12, 18]  # default --save_steps: epoch ends only
    steps = [step for step, _ in read_scalars(out / "vdl", "train/ce")]
    assert steps == list(range(1, 19))  # the resumed run appended steps 7..18 to the same log


def test_resume_refuses_a_checkpoint_of_another_shape(toy_task, tmp_path):
    out = tmp_path / "run"
    train(toy_task, out, "--max_epoch", "1")
    with pytest.raises(InputError, match="does not fit the model: .*shape"):
        train(toy_task, tmp_path / "other", "--max_epoch", "2", "--hidden_size", "8",
              "--init_from_ckpt", str(out / "last"))
    with pytest.raises(InputError, match="best: holds weights only .* resume from the run's last/"):
        train(toy_task, tmp_path / "other", "--init_from_ckpt", str(out / "best"))
    with pytest.raises(InputError, match="not a checkpoint directory"):
        train(toy_task, tmp_path / "other", "--init_from_ckpt", str(tmp_path))
    (out / "last" / "model_state.pdparams").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="model_state.pdparams: not a Paddle checkpoint"):
        train(toy_task, tmp_path / "other", "--init_from_ckpt", str(out / "last"))
    assert not (tmp_path / "other").exists()  # none of the refused runs left a directory


def test_resume_refuses_other_schedule_flags_but_a_constant_rate_may_train_longer(toy_task, tmp_path):
    out = tmp_path / "run"
    train(toy_task, out, "--max_epoch", "1", "--lr", "1e-3")
    with pytest.raises(InputError, match=r"last: saved by a run with --lr 0.001 \(now 0.002\), --batch_size 8 "
                                         r"\(now 4\); resume it with the flags it was started with"):
        train(toy_task, out, "--max_epoch", "2", "--lr", "2e-3", "--batch_size", "4",
              "--init_from_ckpt", str(out / "last"))
    with pytest.raises(InputError, match=r"--lr_schedule constant \(now linear\)"):
        train(toy_task, out, "--lr", "1e-3", "--lr_schedule", "linear", "--init_from_ckpt", str(out / "last"))
    train(toy_task, out, "--max_epoch", "2", "--lr", "1e-3", "--init_from_ckpt", str(out / "last"))
    with open(out / "last" / "checkpoint.json", encoding="utf-8") as f:
        assert json.load(f)["state"]["epoch"] == 2


def test_a_used_output_dir_is_refused_unless_resumed_or_overwritten(toy_task, tmp_path):
    out = tmp_path / "run"
    train(toy_task, out, "--max_epoch", "1")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(InputError, match="run: already holds best, last, notes.txt, summary.json .*"
                                         "--init_from_ckpt .*--overwrite_output_dir"):
        train(toy_task, out, "--max_epoch", "1")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing touched

    # --overwrite_output_dir replaces the run (checkpoints, summary, VisualDL records), not the user's file
    summary = train(toy_task, out, "--max_epoch", "2", "--overwrite_output_dir")
    assert [step for step, _ in summary["dev_acc"]] == [6, 12]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert len(list((out / "vdl").glob("vdlrecords.*.log"))) == 1


def test_summary_never_outlives_the_best_checkpoint_it_describes(toy_task, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(toy_task, out, "--max_epoch", "1")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "write_summary", crash)  # killed before the summary
    with pytest.raises(KeyboardInterrupt):
        train(toy_task, out, "--max_epoch", "1", "--seed", "3", "--overwrite_output_dir")
    assert not (out / "summary.json").exists()  # the old one described a best/ that is gone


def test_a_run_stopped_before_its_first_checkpoint_is_not_offered_for_resuming(toy_task, tmp_path):
    out = tmp_path / "run"
    (out / "vdl").mkdir(parents=True)
    with pytest.raises(InputError, match="run: already holds vdl; it has no checkpoint; replace it with "
                                         "--overwrite_output_dir"):
        train(toy_task, out, "--max_epoch", "1")


def test_a_second_run_is_kept_out_while_the_first_holds_the_directory(toy_task, tmp_path):
    import filelock

    out = tmp_path / "run"
    out.mkdir()
    with filelock.FileLock(str(out / ".distill_lstm.lock")):
        with pytest.raises(InputError, match="another run is writing there"):
            train(toy_task, out, "--max_epoch", "1")
    train(toy_task, out, "--max_epoch", "1")  # the lock file alone does not make the directory used


def test_unwritable_output_or_log_dir_is_one_error_and_leaves_nothing(toy_task, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="a_file/run: cannot write there"):
        train(toy_task, blocker / "run", "--max_epoch", "1")
    with pytest.raises(InputError, match="a_file/vdl: cannot write there"):
        train(toy_task, tmp_path / "new" / "run", "--max_epoch", "1", "--logdir", str(blocker / "vdl"))
    assert sorted(os.listdir(tmp_path)) == ["a_file", "data", "vocab.txt"]


def test_resume_after_a_crash_gives_the_uninterrupted_run_with_dropout(toy_task, tmp_path):
    """The random state saved in last/ makes dropout draw what the uninterrupted run drew."""
    run = ("--max_epoch", "3", "--save_steps", "4", "--dropout_prob", "0.3", "--word_dropout", "0.2",
           "--lr", "1e-2", "--num_threads", "1")
    whole = train(toy_task, tmp_path / "whole", *run)
    with crash_after_saving(step=8):
        train(toy_task, tmp_path / "crashed", *run)
    with open(tmp_path / "crashed" / "last" / "checkpoint.json", encoding="utf-8") as f:
        before_stop = json.load(f)["state"]["seconds_in_epoch"]  # epoch 2's steps 7 and 8
    resumed = train(toy_task, tmp_path / "crashed", *run, "--init_from_ckpt", str(tmp_path / "crashed" / "last"))
    assert resumed["dev_acc"] == whole["dev_acc"]
    assert_same_weights(tmp_path / "whole" / "last", tmp_path / "crashed" / "last")
    assert before_stop > 0 and resumed["epoch_seconds"][1] > before_stop  # the resumed epoch's time counts them


def test_bad_data_exits_with_one_error_and_writes_nothing(toy_task, tmp_path, capsys):
    data_dir, vocab = toy_task
    with open(data_dir / "dev.tsv", "a", encoding="utf-8") as f:
        f.write("1\t好\textra\n")
    out = tmp_path / "run"
    argv = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out), *TINY]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: main_of("student_lstm_small")(argv))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {data_dir / 'dev.tsv'}:26: expected 2 tab-separated fields (label, text_a), found 3")
    assert not out.exists()


def test_a_full_disk_at_a_checkpoint_is_one_error_and_the_run_resumes_exactly(toy_task, tmp_path, capsys):
    run = ("--max_epoch", "2", "--save_steps", "4", "--dropout_prob", "0.3", "--lr", "1e-2", "--num_threads", "1")
    whole = train(toy_task, tmp_path / "whole", *run)
    out, save, saves_of_last = tmp_path / "full", paddle.save, []

    def disk_full_at_the_second_save_of_last(obj, path, *args, **kwargs):
        if f"{os.sep}last.tmp" in path and path.endswith("model_state.pdparams"):
            saves_of_last.append(path)
            if len(saves_of_last) == 2:  # step 6's: last/ holds step 4's
                raise OSError(errno.ENOSPC, "No space left on device")
        return save(obj, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paddle, "save", disk_full_at_the_second_save_of_last)
        with pytest.raises(SystemExit) as exit_info:
            run_main(lambda: train(toy_task, out, *run))
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.rstrip("\n").split("\n")[-1]  # after the progress bars
    assert re.fullmatch(rf"error: {re.escape(str(out))}: no space left on device writing the checkpoint last/ "
                        r"\(needs about [\d.]+ kB, [\d.]+ [kMGT]B free\)", last_line), last_line
    assert not [name for name in os.listdir(out) if ".tmp" in name]  # nothing half-written
    resumed = train(toy_task, out, *run, "--init_from_ckpt", str(out / "last"))
    assert resumed["dev_acc"] == whole["dev_acc"]
    assert_same_weights(tmp_path / "whole" / "last", out / "last")


NO_DEVICE = {"gpu": "--device gpu: this Paddle is a CPU build (paddle.device.is_compiled_with_cuda() is False); "
                    "install paddlepaddle-gpu or give --device cpu",
             "xpu": "--device xpu: this Paddle has no XPU support (paddle.device.is_compiled_with_xpu() is False); "
                    "install paddlepaddle-xpu or give --device cpu"}


@pytest.mark.parametrize("script, device, extra", [
    ("student_lstm_small", "gpu", []), ("teacher_train_glue", "gpu", []),
    ("teacher_student_distill", "gpu", ["--teacher_dir", "t"]), ("tinybert_distill", "gpu", ["--teacher_dir", "t"]),
    ("label_errors", "gpu", []), ("student_lstm_small", "xpu", [])])
def test_a_device_paddle_was_not_built_for_is_one_error_before_anything_is_written(toy_task, tmp_path, capsys,
                                                                                  monkeypatch, script, device, extra):
    import importlib

    import paddle

    for built in ("is_compiled_with_cuda", "is_compiled_with_xpu"):  # this test's Paddle, whatever its build
        monkeypatch.setattr(paddle.device, built, lambda: False)
    data_dir, _ = toy_task
    out = tmp_path / "run"
    argv = ["--data_dir", str(data_dir), "--output_dir", str(out), "--device", device, *extra]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: importlib.import_module(script).main(argv))
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and captured.out == "" and captured.err.strip() == f"error: {NO_DEVICE[device]}"
    assert not out.exists()
