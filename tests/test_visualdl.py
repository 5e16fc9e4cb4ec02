"""What a user sees in VisualDL: the README's command over a baseline and a distilled run opens on
the scalars, each run under its own readable name, one quantity per tag, drawn curves, and a Hyper
Parameters table that leads with the run's name and its best dev accuracy."""
import json
import os
import subprocess
import sys

import pytest
from visualdl import LogWriter

from conftest import ROOT, main_of
from visualdl_board import (api, check, find_browser, rendered_must_show, rendered_text, screenshot_curves,
                            start_visualdl, stop_visualdl)

TINY = ["--emb_dim", "16", "--hidden_size", "16", "--batch_size", "16", "--device", "cpu", "--num_threads", "2",
        "--max_epoch", "2", "--optimizer", "adam", "--lr", "1e-2", "--log_freq", "1"]


@pytest.fixture
def runs(toy_task, tiny_teacher, tmp_path):
    """runs/student (alone), runs/distilled (with its teacher's reference line), as reproduce.sh lays them out."""
    data_dir, vocab = toy_task
    runs = tmp_path / "runs"
    main_of("teacher_train_glue")(["--data_dir", str(data_dir), "--model_name_or_path", str(tiny_teacher),
                             "--model_type", "ernie-gram", "--output_dir", str(runs / "teacher"), "--max_steps", "2",
                             "--batch_size", "8", "--max_seq_length", "32", "--device", "cpu"])
    common = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), *TINY]
    main_of("student_lstm_small")([*common, "--output_dir", str(runs / "student")])
    main_of("teacher_student_distill")([*common, "--output_dir", str(runs / "distilled"), "--n_iter", "1",
                                  "--model_name", str(tiny_teacher), "--teacher_dir", str(runs / "teacher" / "best"),
                                  "--logits_cache", str(tmp_path / "cache")])
    return runs


def test_the_board_opens_on_named_curves(runs, tmp_path):
    logdirs = [str(runs / name / "vdl") for name in ("student", "distilled")]
    proc, url = start_visualdl(logdirs)
    try:
        names = check(url, proc.names)
        assert sorted(names) == ["alone h16 · student", "distilled h16 · distilled", "teacher · distilled"]
        by_name = dict(zip(api(url, "scalar/tags")["runs"], api(url, "scalar/tags")["tags"]))
        # dev_unseen/acc: one point, the best checkpoint on dev's texts train does not hold
        dev = {"dev/acc", "dev/best_acc", "dev_unseen/acc"}
        assert set(by_name["alone h16 · student"]) == {"train/ce", "train/lr", *dev}
        assert set(by_name["distilled h16 · distilled"]) == {"train/mse", "train/lr", *dev}
        # the table: the run's name first, then what tells runs apart, then the best dev accuracy first
        columns = api(url, "hparams/indicators")
        assert [c["name"] for c in columns["hparams"]] == ["run", "student", "hidden_size"]  # few: metrics in view
        assert [c["name"] for c in columns["metrics"]][0] == "dev/best_acc"
        rows = {row["name"]: row for row in api(url, "hparams/list")}
        for run, name in (("student", "alone h16 · student"), ("distilled", "distilled h16 · distilled")):
            summary = json.loads((runs / run / "summary.json").read_text())
            assert rows[f"{run}/vdl"]["hparams"]["run"] == name
            assert rows[f"{run}/vdl"]["metrics"]["dev/best_acc"] == pytest.approx(summary["best_dev_acc"])
        assert rows["student/vdl"]["hparams"]["hidden_size"] == 16
        if find_browser():  # the page as a browser draws it (apt-get install chromium fonts-noto-cjk)
            assert rendered_text(url + "/app/scalar", rendered_must_show(names, "dev/acc"))
            assert screenshot_curves(url + "/app/scalar", str(tmp_path / "board.png"), runs=3, smoothing=0) > 0
    finally:
        stop_visualdl(proc)


@pytest.mark.skipif(not find_browser(), reason="needs chromium (apt-get install chromium fonts-noto-cjk)")
def test_check_fails_on_a_chart_without_curves(tmp_path):
    """A run whose dev/acc is all NaN (a diverged run): the API lists it, the page draws its chart,
    empty; check_visualdl.py must not call that ok."""
    with LogWriter(logdir=str(tmp_path / "diverged" / "vdl"), display_name="diverged") as writer:
        for step in range(5):
            writer.add_scalar("dev/acc", float("nan"), step)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "check_visualdl.py"),
                           "--logdir", str(tmp_path / "diverged" / "vdl")], capture_output=True, text=True)
    assert done.returncode == 1 and "FAILED: no curve drawn" in done.stderr, done.stderr


@pytest.mark.skipif(not find_browser(), reason="needs chromium (apt-get install chromium fonts-noto-cjk)")
def test_the_page_draws_at_the_smoothing_asked(tmp_path):
    """VisualDL smooths curves by 0.6 unless its page's localStorage says otherwise; the browser
    profile the checks and screenshots use says so before the page draws."""
    with LogWriter(logdir=str(tmp_path / "zigzag" / "vdl"), display_name="zigzag") as writer:
        for step in range(10):
            writer.add_scalar("dev/acc", 0.5 + 0.4 * (step % 2), step)
    proc, url = start_visualdl([str(tmp_path / "zigzag" / "vdl")])
    try:
        for smoothing, slider in ((None, "0.6"), (0, "0")):
            dom = rendered_text(url + "/app/scalar", ["zigzag"], smoothing=smoothing)
            assert f'aria-valuenow="{slider}"' in dom
    finally:
        stop_visualdl(proc)


def test_check_refuses_a_smoothing_the_slider_cannot_show(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "check_visualdl.py"), "--logdir",
                           str(tmp_path), "--smoothing", "1"], capture_output=True, text=True)
    assert done.returncode == 2 and "--smoothing 1.0: not one of 0, 0.01, ..., 0.99" in done.stderr, done.stderr
