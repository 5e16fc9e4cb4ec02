import json
import os

import numpy as np
import paddle
import pytest
from visualdl import LogReader

from conftest import assert_same_weights, crash_after_saving, main_of, toy_sentences, write_tsv
from teacher import batchify_fn, encode, load_teacher
from utils import InputError, run_main

TINY = ["--model_type", "ernie-gram", "--batch_size", "8", "--max_seq_length", "32",
        "--device", "cpu", "--num_threads", "2", "--logging_steps", "1"]


def fine_tune(data_dir, teacher, output_dir, *extra):
    main_of("teacher_train_glue")(["--data_dir", str(data_dir), "--model_name_or_path", str(teacher),
                             "--output_dir", str(output_dir), *TINY, *extra])
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def logits(model, tokenizer, texts):
    model.eval()
    ids, type_ids, _ = batchify_fn(tokenizer)([(*e, 0) for e in encode(tokenizer, texts, 32)])
    return model(paddle.to_tensor(ids), paddle.to_tensor(type_ids)).numpy()


def test_fine_tuning_lowers_the_loss_and_logs_to_visualdl(toy_task, tiny_teacher, tmp_path):
    data_dir, _ = toy_task
    out = tmp_path / "teacher"
    summary = fine_tune(data_dir, tiny_teacher, out, "--num_train_epochs", "15", "--learning_rate", "5e-3",
                        "--warmup_proportion", "0.1", "--save_steps", "12")
    logdir = out / "vdl"
    reader = LogReader(file_path=str(logdir / os.listdir(logdir)[0]))
    losses = [r.value for r in reader.get_data("scalar", "train/ce")]
    assert len(losses) == 15 * 6 and np.mean(losses[-6:]) < 0.5 * np.mean(losses[:6])
    lrs = [r.value for r in reader.get_data("scalar", "train/lr")]
    assert max(lrs) == pytest.approx(5e-3, rel=0.05) and lrs[0] < lrs[3] and lrs[-1] < 5e-4  # warm up, decay
    accs = [r.value for r in reader.get_data("scalar", "dev/acc")]
    assert max(accs) == pytest.approx(summary["best_dev_acc"]) and summary["best_dev_acc"] > 0.8
    saved = set(os.listdir(out / "best"))
    assert {"model_state.pdparams", "config.json", "vocab.txt", "tokenizer_config.json",
            "checkpoint.json"} <= saved


def test_both_saved_forms_give_identical_logits(toy_task, tiny_teacher, tmp_path):
    data_dir, _ = toy_task
    out = tmp_path / "teacher"
    fine_tune(data_dir, tiny_teacher, out, "--max_steps", "3", "--learning_rate", "1e-3")
    texts = ["这个酒店很好", "房间糟糕", "推荐"]
    pretrained_dir, tokenizer = load_teacher("ernie-gram", str(out / "best"), ["0", "1"])
    original_style, _ = load_teacher("ernie-gram", str(tiny_teacher), ["0", "1"],
                                     params_path=str(out / "best" / "model_state.pdparams"))
    untouched, _ = load_teacher("ernie-gram", str(tiny_teacher), ["0", "1"])
    expected = logits(pretrained_dir, tokenizer, texts)
    np.testing.assert_allclose(logits(original_style, tokenizer, texts), expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(logits(untouched, tokenizer, texts), expected)  # fine-tuning changed it


def test_early_stop_ends_a_run_that_no_longer_improves(toy_task, tiny_teacher, tmp_path):
    data_dir, _ = toy_task
    summary = fine_tune(data_dir, tiny_teacher, tmp_path / "teacher", "--num_train_epochs", "20",
                        "--learning_rate", "1e-9", "--save_steps", "2", "--early_stop_patience", "2")
    with open(tmp_path / "teacher" / "last" / "checkpoint.json", encoding="utf-8") as f:
        state = json.load(f)["state"]
    assert state["global_step"] == summary["best_step"] + 4 and state["evals_since_best"] == 2


def test_wrong_checkpoints_and_class_counts_stop_with_a_clear_error(toy_task, tiny_teacher, tmp_path, capsys):
    data_dir, _ = toy_task
    out = tmp_path / "teacher"
    fine_tune(data_dir, tiny_teacher, out, "--max_steps", "1")
    with pytest.raises(InputError, match="not a checkpoint directory"):
        fine_tune(data_dir, tiny_teacher, tmp_path / "other", "--init_from_ckpt", str(tmp_path / "missing"))
    with pytest.raises(InputError, match="no such checkpoint file"):
        load_teacher("ernie-gram", str(tiny_teacher), ["0", "1"], params_path=str(tmp_path / "missing.pdparams"))

    three = tmp_path / "three"
    three.mkdir()
    rows = [(str(i % 3), text) for i, (_, text) in enumerate(toy_sentences(30, seed=3))]
    write_tsv(three / "train.tsv", rows)
    write_tsv(three / "dev.tsv", rows[:9])
    with pytest.raises(InputError, match=r"trained on labels \['0', '1'\], the data has \['0', '1', '2'\]"):
        fine_tune(three, out / "best", tmp_path / "other")
    with pytest.raises(InputError, match="does not fit the model: .*classifier.*shape"):
        load_teacher("ernie-gram", str(tiny_teacher), ["0", "1", "2"],
                     params_path=str(out / "best" / "model_state.pdparams"))

    argv = ["--data_dir", str(data_dir), "--model_name_or_path", str(tmp_path / "nowhere"),
            "--output_dir", str(tmp_path / "other"), *TINY]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: main_of("teacher_train_glue")(argv))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"error: {tmp_path / 'nowhere'}: cannot load a ernie-gram model")
    assert not (tmp_path / "other").exists()


def test_a_hub_name_that_cannot_load_points_to_the_offline_teacher_in_one_line(toy_task, tmp_path, capsys,
                                                                                monkeypatch):
    data_dir, _ = toy_task
    argv = ["--data_dir", str(data_dir), "--model_type", "bert", "--model_name_or_path", "no-such-teacher-zh",
            "--output_dir", str(tmp_path / "out"), *TINY[2:]]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: main_of("teacher_train_glue")(argv))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("error: no-such-teacher-zh: cannot load a bert model")
    assert error.endswith("offline? fetch a local teacher (m3e-small) with bash ../shared/tools/get_offline_teacher.sh "
                          "DIR and give --model_type bert --model_name_or_path DIR")
    with pytest.raises(InputError) as local:  # a local directory is not a hub name: no offline route
        load_teacher("bert", str(tmp_path), ["0", "1"])
    assert "offline?" not in str(local.value)

    def multi_line(*args, **kwargs):  # as PaddleNLP's connection errors are
        raise OSError("There was a specific connection error when trying to load x:\nHTTPError 503")
    monkeypatch.setattr("paddlenlp.transformers.BertTokenizer.from_pretrained", multi_line)
    with pytest.raises(InputError) as connection:
        load_teacher("bert", "no-such-teacher-zh", ["0", "1"])
    assert "\n" not in str(connection.value) and "load x: HTTPError 503);" in str(connection.value)



def test_resume_after_a_crash_gives_the_uninterrupted_run_with_dropout(toy_task, tiny_teacher, tmp_path):
    config = json.loads((tiny_teacher / "config.json").read_text(encoding="utf-8"))
    config["hidden_dropout_prob"] = config["attention_probs_dropout_prob"] = 0.2
    (tiny_teacher / "config.json").write_text(json.dumps(config), encoding="utf-8")
    data_dir, _ = toy_task
    run = ("--num_train_epochs", "2", "--save_steps", "4", "--learning_rate", "1e-3", "--num_threads", "1")
    whole = fine_tune(data_dir, tiny_teacher, tmp_path / "whole", *run)
    with crash_after_saving(step=4):
        fine_tune(data_dir, tiny_teacher, tmp_path / "crashed", *run)
    resumed = fine_tune(data_dir, tiny_teacher, tmp_path / "crashed", *run,
                        "--init_from_ckpt", str(tmp_path / "crashed" / "last"))
    assert resumed["dev_acc"] == whole["dev_acc"]
    assert_same_weights(tmp_path / "whole" / "last", tmp_path / "crashed" / "last")


def test_a_linear_schedule_is_not_stretched_on_resume(toy_task, tiny_teacher, tmp_path):
    """The teacher's learning rate decays to 0 over --num_train_epochs: resumed with more, the schedule would
    jump back up midway (Paddle restores its step, not its length), so it is refused before anything changes."""
    data_dir, _ = toy_task
    fine_tune(data_dir, tiny_teacher, tmp_path / "teacher", "--num_train_epochs", "1")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "teacher").rglob("*")}
    with pytest.raises(InputError, match=r"teacher/last: saved by a run with --max_epoch 1 \(now 2\)"):
        fine_tune(data_dir, tiny_teacher, tmp_path / "teacher", "--num_train_epochs", "2",
                  "--init_from_ckpt", str(tmp_path / "teacher" / "last"))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "teacher").rglob("*")} == before


def test_student_and_teacher_checkpoints_are_not_taken_for_each_other(toy_task, tiny_teacher, tmp_path):
    data_dir, vocab = toy_task
    fine_tune(data_dir, tiny_teacher, tmp_path / "teacher", "--max_steps", "1")
    student_argv = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--max_steps", "1", "--device", "cpu",
                    "--emb_dim", "8", "--hidden_size", "8"]
    with pytest.raises(InputError, match="teacher/last: a teacher checkpoint, where a student one is needed"):
        main_of("student_lstm_small")([*student_argv, "--output_dir", str(tmp_path / "s2"),
                                 "--init_from_ckpt", str(tmp_path / "teacher" / "last")])
    main_of("student_lstm_small")([*student_argv, "--output_dir", str(tmp_path / "student")])
    with pytest.raises(InputError, match="student/last: a student checkpoint, where a teacher one is needed"):
        fine_tune(data_dir, tiny_teacher, tmp_path / "t2", "--init_from_ckpt", str(tmp_path / "student" / "last"))
    assert not (tmp_path / "s2").exists() and not (tmp_path / "t2").exists()
