"""What a user sees in VisualDL: the README's command over a baseline and a distilled run opens on
the scalars, each run under its own readable name, one quantity per tag, hyper-parameters listed."""
import pytest

from conftest import main_of
from visualdl_board import (api, check, find_browser, rendered_must_show, rendered_text, screenshot,
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
        assert set(by_name["alone h16 · student"]) == {"train/ce", "train/lr", "dev/acc", "dev_unseen/acc"}
        assert set(by_name["distilled h16 · distilled"]) == {"train/mse", "train/lr", "dev/acc", "dev_unseen/acc"}
        hparams = {run["name"]: run["hparams"] for run in api(url, "hparams/list")}
        assert hparams["student/vdl"]["lr"] == 0.01 and hparams["distilled/vdl"]["distill_loss"] == "mse"
        if find_browser():  # the page as a browser draws it (apt-get install chromium fonts-noto-cjk)
            page = rendered_text(url + "/app/scalar")
            assert all(text in page for text in rendered_must_show(names, "dev/acc"))
            assert screenshot(url + "/app/scalar", str(tmp_path / "board.png"), runs=3)
    finally:
        stop_visualdl(proc)
