"""--eval_sets: labelled sets beside dev, scored by the best checkpoint, never choosing it."""
import os
import shutil

import numpy as np
import pytest
from visualdl import LogReader

from args import parse_args
from conftest import assert_same_weights, main_of, toy_sentences, write_tsv
from test_distill import cache_entries, distill
from test_student import TINY, train
from test_teacher import fine_tune
from utils import run_main


@pytest.fixture
def other_domain(tmp_path):
    """A labelled set of other sentences than dev's, and a copy of dev (its accuracy is known)."""
    return write_tsv(tmp_path / "other.tsv", toy_sentences(30, seed=3))


def hparam_metrics(logdir):
    reader = LogReader(file_path=os.path.join(logdir, sorted(os.listdir(logdir))[0]))
    (record,) = reader.get_data("hyper_parameters", "hparam")
    return [m.name for m in record.hparam.metricInfos]


def test_student_scores_eval_sets_with_the_best_checkpoint_without_choosing_it(toy_task, tmp_path, other_domain):
    data_dir, _ = toy_task
    flags = ["--max_epoch", "6", "--lr", "1e-2", "--save_steps", "2"]
    plain = train(toy_task, tmp_path / "plain", *flags)
    scored = train(toy_task, tmp_path / "scored", *flags, "--eval_sets", f"other={other_domain}",
                   f"dev_copy={data_dir / 'dev.tsv'}")

    # the same run: eval sets change nothing about training or which checkpoint is best
    assert scored["dev_acc"] == plain["dev_acc"] and scored["best_step"] == plain["best_step"]
    assert_same_weights(tmp_path / "plain" / "best", tmp_path / "scored" / "best")
    assert "eval_sets" not in plain
    assert scored["eval_sets"]["dev_copy"] == {"file": str(data_dir / "dev.tsv"), "examples": 24,
                                               "acc": plain["best_dev_acc"]}  # best/, not last/
    assert scored["eval_sets"]["other"]["examples"] == 30 and 0 <= scored["eval_sets"]["other"]["acc"] <= 1

    logdir = tmp_path / "scored" / "vdl"
    reader = LogReader(file_path=str(logdir / os.listdir(logdir)[0]))
    other = [(r.id, r.value) for r in reader.get_data("scalar", "other/acc")]
    assert other == [(scored["best_step"], pytest.approx(scored["eval_sets"]["other"]["acc"]))]
    assert hparam_metrics(logdir) == ["dev/best_acc", "dev_unseen/acc", "other/acc", "dev_copy/acc"]


def overlapping_task(tmp_path):
    """A task whose dev repeats 12 training texts word for word beside 12 texts train does not hold,
    and a file of those 12 alone (their accuracy, scored as an eval set, is what dev_unseen must give)."""
    train_rows = toy_sentences(48, seed=1)
    seen = {text for _, text in train_rows}
    unseen = [row for row in toy_sentences(60, seed=2) if row[1] not in seen][:12]
    data_dir = tmp_path / "overlap"
    data_dir.mkdir()
    write_tsv(data_dir / "train.tsv", train_rows)
    write_tsv(data_dir / "dev.tsv", train_rows[:12] + unseen)
    return data_dir, write_tsv(tmp_path / "unseen.tsv", unseen)


def test_dev_unseen_is_scored_by_the_best_checkpoint_without_choosing_it(toy_task, tmp_path):
    data_dir, unseen = overlapping_task(tmp_path)
    vocab = toy_task[1]
    summary = train((data_dir, vocab), tmp_path / "run", "--max_epoch", "4", "--lr", "1e-2", "--save_steps", "2",
                    "--eval_sets", f"unseen_copy={unseen}")
    assert summary["dev_unseen_examples"] == 12
    assert summary["dev_unseen_acc"] == summary["eval_sets"]["unseen_copy"]["acc"]
    logdir = tmp_path / "run" / "vdl"
    reader = LogReader(file_path=str(logdir / os.listdir(logdir)[0]))
    scored = [(r.id, r.value) for r in reader.get_data("scalar", "dev_unseen/acc")]
    assert scored == [(summary["best_step"], pytest.approx(summary["dev_unseen_acc"]))]  # once, at the best step
    # dev chooses: the same run without the unseen rows scored anywhere picks the same checkpoint
    plain = train((data_dir, vocab), tmp_path / "plain", "--max_epoch", "4", "--lr", "1e-2", "--save_steps", "2")
    assert plain["best_step"] == summary["best_step"] and plain["dev_acc"] == summary["dev_acc"]


def test_distillation_reports_the_teachers_accuracy_on_dev_unseen(fine_tuned, tmp_path):
    data_dir, unseen = overlapping_task(tmp_path)
    summary = distill((data_dir, *fine_tuned[1:]), tmp_path / "run", tmp_path / "cache", "--n_iter", "1",
                      "--max_epoch", "1", "--eval_sets", f"unseen_copy={unseen}")
    assert summary["dev_unseen_examples"] == 12
    assert summary["dev_unseen_acc"] == summary["eval_sets"]["unseen_copy"]["acc"]
    # the teacher's, from its cached dev logits: what the teacher itself says on those 12 texts
    from data import segment
    from teacher import Teacher

    base, best = fine_tuned[2:]
    teacher = Teacher(parse_args("distill", ["--data_dir", str(data_dir), "--teacher_dir", str(best),
                                             "--model_name", str(base)]), ["0", "1"], False)
    rows = [line.split("\t") for line in unseen.read_text(encoding="utf-8").splitlines()[1:]]
    said = teacher.logits(segment([text for _, text in rows]), 4).argmax(-1)
    assert summary["teacher_dev_unseen_acc"] == pytest.approx(np.mean(said == [int(label) for label, _ in rows]))


def test_teacher_scores_eval_sets(toy_task, tiny_teacher, tmp_path):
    data_dir, _ = toy_task
    summary = fine_tune(data_dir, tiny_teacher, tmp_path / "teacher", "--num_train_epochs", "2",
                        "--eval_sets", f"dev_copy={data_dir / 'dev.tsv'}")
    assert summary["eval_sets"]["dev_copy"]["acc"] == summary["best_dev_acc"]


def test_distillation_scores_eval_sets_and_training_seeds_share_the_transfer_set(fine_tuned, tmp_path,
                                                                                   other_domain):
    data_dir = fine_tuned[0]
    cache = tmp_path / "cache"
    flags = ["--n_iter", "2", "--max_epoch", "2", "--eval_sets", f"dev_copy={data_dir / 'dev.tsv'}"]
    first = distill(fine_tuned, tmp_path / "seed1", cache, *flags, "--seed", "1")
    assert first["eval_sets"]["dev_copy"]["acc"] == first["best_dev_acc"]
    distill(fine_tuned, tmp_path / "seed2", cache, *flags, "--seed", "2")
    assert len(cache_entries(cache)) == 1  # a second training seed reused the teacher's logits
    with pytest.raises(AssertionError):
        assert_same_weights(tmp_path / "seed1" / "last", tmp_path / "seed2" / "last")  # but trained anew
    distill(fine_tuned, tmp_path / "data2", cache, *flags, "--seed", "1", "--data_seed", "2")
    assert len(cache_entries(cache)) == 2  # other augmented copies: other logits


def test_a_bad_eval_set_is_one_error_before_training_and_leaves_nothing(toy_task, tmp_path, capsys):
    data_dir, vocab = toy_task
    bad = tmp_path / "bad.tsv"
    shutil.copy(data_dir / "dev.tsv", bad)
    with open(bad, "a", encoding="utf-8") as f:
        f.write("positive\t很好\n")
    unlabelled = write_tsv(tmp_path / "unlabelled.tsv", [(t,) for _, t in toy_sentences(3, 4)], header=("text_a",))
    out = tmp_path / "run"
    argv = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out), *TINY]
    for eval_set, message in [(f"ood={bad}", f"{bad}:26: unknown label 'positive' (train has 0, 1)"),
                              (f"ood={unlabelled}", f"{unlabelled}:1: --eval_sets ood needs a label column"),
                              (f"ood={tmp_path / 'missing.tsv'}", f"{tmp_path / 'missing.tsv'}: no such file")]:
        with pytest.raises(SystemExit) as exit_info:
            run_main(lambda: main_of("student_lstm_small")([*argv, "--eval_sets", eval_set]))
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip() == f"error: {message}"
        assert not out.exists()


@pytest.mark.parametrize("value, message", [
    (["ood"], "expected NAME=FILE, got 'ood'"),
    (["dev=x.tsv"], "'dev' is a split of the task"),
    (["dev_unseen=x.tsv"], "'dev_unseen' is a split of the task"),
    (["a b=x.tsv"], "'a b': a name of letters, digits"),
    (["ood=a.tsv", "ood=b.tsv"], "a name given twice"),
])
def test_eval_set_flags_are_checked(value, message, capsys):
    with pytest.raises(SystemExit):
        parse_args("student", ["--eval_sets", *value])
    assert message in capsys.readouterr().err


def test_export_and_predict_keep_scoring_the_same_file(toy_task, tmp_path, other_domain, capsys):
    """predict.py --eval on the export gives the accuracy the run recorded for the eval set."""
    summary = train(toy_task, tmp_path / "run", "--max_epoch", "3", "--lr", "1e-2",
                    "--eval_sets", f"other={other_domain}")
    main_of("export_model")(["--checkpoint", str(tmp_path / "run" / "best"), "--output_dir", str(tmp_path / "export")])
    capsys.readouterr()
    main_of("predict")(["--model_dir", str(tmp_path / "export"), "--input", str(other_domain),
                  "--text_column", "text_a", "--eval", "--device", "cpu"])
    err = capsys.readouterr().err
    assert f"accuracy {summary['eval_sets']['other']['acc']:.4f} on 30 labelled lines" in err
