"""What a user reads: the progress bar and log lines of a run, in a terminal or a log file, and --help."""
import logging
import os
import re
import subprocess
import sys

import pytest

from args import parse_args, warn_without_recipe
from conftest import ROOT, main_of

STUDENT = ["--emb_dim", "16", "--hidden_size", "16", "--batch_size", "8", "--device", "cpu", "--num_threads", "2"]


def pieces(text):
    """What a terminal shows on one line at a time: the text between line feeds and carriage returns."""
    return [piece for piece in re.split(r"[\r\n]", text) if piece.strip()]


def test_a_log_file_gets_every_line_plain_and_whole(toy_task, tiny_teacher, tmp_path):
    """stderr redirected to a file: no colour codes (PaddleNLP colours its lines), each log line on a
    line of its own (not glued to a half-drawn bar), one bar over the run, and why the run stopped."""
    data_dir, _ = toy_task
    log = tmp_path / "train.log"
    with open(log, "w", encoding="utf-8") as stderr:
        subprocess.run([sys.executable, os.path.join(ROOT, "teacher_train_glue.py"), "--data_dir", str(data_dir),
                        "--model_name_or_path", str(tiny_teacher), "--output_dir", str(tmp_path / "teacher"),
                        "--batch_size", "8", "--max_seq_length", "32", "--num_train_epochs", "3", "--max_steps", "8",
                        "--save_steps", "4", "--device", "cpu", "--num_threads", "2"],
                       stderr=stderr, stdout=subprocess.DEVNULL, check=True, cwd=tmp_path)
    text = log.read_text(encoding="utf-8")
    assert "Loading configuration file" in text and "\x1b[" not in text  # PaddleNLP's line, uncoloured
    evaluations = [piece for piece in pieces(text) if "dev accuracy" in piece]
    assert len(evaluations) == 4 and all(piece.startswith("[") for piece in evaluations)  # steps 4, 6, 8; best
    bars = [piece for piece in pieces(text) if piece.startswith("epoch ")]
    assert {re.search(r"\| *\d+/(\d+) \[", piece)[1] for piece in bars} == {"8"}  # the run's 8 steps, not an epoch's 6
    assert bars[-1].startswith("epoch 2/3: 100%")
    assert "stopped at step 8 by --max_steps, in epoch 2 of 3" in text


def test_a_resumed_run_counts_its_bar_from_the_saved_step(toy_task, tmp_path, capsys):
    data_dir, vocab = toy_task
    common = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(tmp_path / "run"), *STUDENT]
    main_of("student_lstm_small")([*common, "--max_epoch", "1"])
    capsys.readouterr()
    main_of("student_lstm_small")([*common, "--max_epoch", "3", "--init_from_ckpt", str(tmp_path / "run" / "last")])
    shown = capsys.readouterr()
    bars = [piece for piece in pieces(shown.err) if piece.startswith("epoch ")]
    assert bars[0].startswith("epoch 2/3:  33%") and " 6/18 [" in bars[0] and " 18/18 [" in bars[-1]
    assert "VisualDL will add logs" not in shown.out  # its notice when a resumed run appends to its log


def test_a_run_without_a_recipe_says_what_the_recipe_would_change(toy_task, tmp_path, caplog):
    data_dir, vocab = toy_task
    common = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), *STUDENT, "--max_epoch", "1"]
    with caplog.at_level(logging.WARNING, logger="distill_lstm"):
        main_of("student_lstm_small")([*common, "--output_dir", str(tmp_path / "a")])
    assert ("no recipe file: running the original settings --max_seq_length 128 --save_steps 100 --dropout_prob "
            "0.2; @recipes/student.txt gives the recommended --max_seq_length 256 --save_steps 20 --dropout_prob 0.5"
            ) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="distill_lstm"):
        main_of("student_lstm_small")([f"@{ROOT}/recipes/student.txt", *common, "--output_dir", str(tmp_path / "b")])
    assert "no recipe file" not in caplog.text


@pytest.mark.parametrize("job, argv, recipe, original", [
    ("distill", ["--teacher_dir", "t"], "distill", "--optimizer adadelta --lr 1.0"),
    ("label", ["--model", "student"], "student", "--dropout_prob 0.2"),
])
def test_the_warning_names_the_jobs_recipe_and_the_original_settings(job, argv, recipe, original, caplog):
    args = parse_args(job, [*argv, "--device", "cpu"])
    with caplog.at_level(logging.WARNING, logger="distill_lstm"):
        warn_without_recipe(job, args, [*argv, "--device", "cpu"])
        (record,) = caplog.records
        assert original in record.message and f"@recipes/{recipe}.txt gives the recommended" in record.message
        if job == "distill":
            assert "--alpha 0.0" in record.message and "--alpha 0.5" in record.message
        caplog.clear()
        given = [f"@{ROOT}/recipes/{recipe}.txt", *argv, "--device", "cpu"]
        warn_without_recipe(job, parse_args(job, given), given)
        assert not caplog.records


@pytest.mark.parametrize("script, recipe", [("student_lstm_small", "student"), ("teacher_train_glue", "teacher"),
                                            ("teacher_student_distill", "distill"), ("tinybert_distill", "tinybert"),
                                            ("label_errors", "teacher")])
def test_help_describes_the_script_and_its_recipe(script, recipe, capsys):
    with open(os.path.join(ROOT, f"{script}.py"), encoding="utf-8") as f:
        first_line = f.readline().removeprefix('r"""').strip()
    with pytest.raises(SystemExit) as exit_info:
        main_of(script)(["--help"])
    shown = capsys.readouterr().out
    assert exit_info.value.code == 0 and first_line in shown
    assert f"python {script}.py @recipes/{recipe}.txt ..." in shown and "defaults below" in shown


def flag_help(help_text, flag):
    """One flag's entry in --help, its wrapped lines joined."""
    entry = re.search(rf"^  --{flag} .*?(?=^  -)", help_text, re.MULTILINE | re.DOTALL)[0]
    return " ".join(entry.split())


@pytest.mark.parametrize("model, defaults", [
    ("teacher", {"max_epoch": "3", "optimizer": "adamw", "lr": "5e-05"}),
    ("student", {"max_epoch": "20", "optimizer": "adam", "lr": "0.0003", "dropout_prob": "0.2"}),
])
def test_label_errors_help_shows_the_training_defaults_of_its_model(model, defaults, capsys):
    with pytest.raises(SystemExit):
        main_of("label_errors")(["--model", model, "--help"])
    shown = capsys.readouterr().out
    for flag, value in defaults.items():
        assert flag_help(shown, flag).endswith(f"(default: {value})"), flag
