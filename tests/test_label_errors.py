"""label_errors.py: out-of-sample scores by folds, cleanlab's flags, and the cleaned data."""
import json
import os

import numpy as np
import pytest

import cleaning
from conftest import main_of, toy_sentences, write_tsv
from utils import run_main

STUDENT = ["--model", "student", "--emb_dim", "16", "--hidden_size", "16", "--batch_size", "8", "--max_epoch", "12",
           "--lr", "1e-2", "--dropout_prob", "0.0", "--device", "cpu", "--num_threads", "2", "--folds", "3"]


@pytest.fixture
def noisy_task(toy_task, tmp_path):
    """The toy task (96 training rows) with 3 labels flipped, in the qid layout: (data_dir, vocab, flipped file lines)."""
    data_dir, vocab = toy_task
    rows = toy_sentences(96, seed=1)
    flipped = {5, 17, 40}
    noisy = [(str(i), str(1 - int(label)) if i in flipped else label, text) for i, (label, text) in enumerate(rows)]
    write_tsv(data_dir / "train.tsv", noisy, header=("qid", "label", "text_a"))
    return data_dir, vocab, {i + 2 for i in flipped}  # line 1 is the header


def label(noisy_task, output_dir, cache, *extra):
    data_dir, vocab, _ = noisy_task
    main_of("label_errors")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(output_dir),
                       "--probs_cache", str(cache), *STUDENT, *extra])


def read_issues(output_dir):
    header, *lines = (output_dir / "label_issues.tsv").read_text(encoding="utf-8").splitlines()
    assert header == "line\tlabel\tsuggested_label\tlabel_quality\ttext_a"
    return [line.split("\t") for line in lines]


def cached_probabilities(noisy_task, cache):
    """(training labels, out-of-sample probabilities) of label()'s run, read from its cache."""
    from args import parse_args
    from data import load_splits

    data_dir, vocab, _ = noisy_task
    args = parse_args("label", ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--probs_cache", str(cache),
                                *STUDENT])
    splits, label_list = load_splits(args)
    probs, _ = cleaning.out_of_sample_probabilities(args, splits, label_list)
    return np.asarray([ex["label"] for ex in splits["train"]]), probs


def cleanlab_flags(noisy_task, cache, filter_by):
    """Row indices cleanlab flags with `filter_by` on the cached out-of-sample probabilities of label()'s run."""
    from cleanlab.filter import find_label_issues

    labels, probs = cached_probabilities(noisy_task, cache)
    return set(find_label_issues(labels, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence"))


def test_folds_are_stratified_and_reproducible():
    texts, labels = [f"text {i}" for i in range(42)], [0] * 30 + [1] * 12
    folds = cleaning.grouped_folds(texts, labels, 3, seed=1)
    for k in range(3):
        assert sorted(np.asarray(labels)[folds == k].tolist()) == [0] * 10 + [1] * 4
    assert (folds == cleaning.grouped_folds(texts, labels, 3, seed=1)).all()
    assert not (folds == cleaning.grouped_folds(texts, labels, 3, seed=2)).all()


def test_identical_texts_share_a_fold_and_the_folds_stay_balanced():
    """A text's copies, here given different labels (one of them flipped), never straddle folds: a fold's
    model would score a row from its twin's label. The folds stay as even in size and labels as ever."""
    texts, labels = [], []
    for i in range(60):  # 60 texts: 6 three times, 14 twice, 40 once (90 rows, 44 of label 1)
        for copy in range(3 if i % 10 == 0 else 2 if i % 3 == 0 else 1):
            texts.append(f"text {i}")
            labels.append((i + copy) % 2)  # the copies disagree
    for seed in (1, 2, 3):
        folds = cleaning.grouped_folds(texts, labels, 3, seed)
        fold_of_text = {}
        assert all(fold_of_text.setdefault(text, k) == k for text, k in zip(texts, folds))
        assert all(abs(size - 30) <= 1 for size in np.bincount(folds, minlength=3))
        assert all(abs(np.asarray(labels)[folds == k].sum() - 44 / 3) <= 1.5 for k in range(3))
        assert (folds == cleaning.grouped_folds(texts, labels, 3, seed)).all()


def test_planted_wrong_labels_are_found_and_relabelled(noisy_task, tmp_path):
    data_dir, _, flipped = noisy_task
    original = (data_dir / "train.tsv").read_text(encoding="utf-8")
    out = tmp_path / "issues"
    label(noisy_task, out, tmp_path / "cache", "--clean", "relabel")

    issues = read_issues(out)
    found = {int(row[0]) for row in issues}
    assert flipped <= {int(row[0]) for row in issues[:len(flipped) + 2]}  # the planted errors, among the worst
    qualities = [float(row[3]) for row in issues]
    assert qualities == sorted(qualities)  # worst first
    summary = json.loads((out / "label_issues.json").read_text(encoding="utf-8"))
    assert summary["rows"] == 96 and summary["flagged"] == len(issues) and summary["filter_by"] == "confident_learning"
    assert found == {i + 2 for i in cleanlab_flags(noisy_task, tmp_path / "cache", "confident_learning")}
    # every row's probabilities, in train.tsv's order, for cleanlab's other rules
    np.testing.assert_array_equal(np.load(out / "out_of_sample_probs.npy"),
                                  cached_probabilities(noisy_task, tmp_path / "cache")[1])

    assert (data_dir / "train.tsv").read_text(encoding="utf-8") == original  # never modified
    cleaned = (out / "data" / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert cleaned[0] == "qid\tlabel\ttext_a" and len(cleaned) == 97  # the input's layout, every row
    truth = toy_sentences(96, seed=1)
    for line in flipped:
        qid, fixed, text = cleaned[line - 1].split("\t")
        assert (fixed, text) == truth[int(qid)]
    assert os.path.realpath(out / "data" / "dev.tsv") == str(data_dir / "dev.tsv")
    report = json.loads((out / "clean_report.json").read_text(encoding="utf-8"))
    assert {r["line"] for r in report["relabelled"]} == found

    # the cleaned directory is a --data_dir for any script
    main_of("student_lstm_small")(["--data_dir", str(out / "data"), "--vocab_path", str(noisy_task[1]), "--output_dir",
                             str(tmp_path / "clean_run"), "--max_epoch", "1", "--emb_dim", "8", "--hidden_size", "8",
                             "--device", "cpu"])


def test_cached_folds_are_reused_and_drop_removes_the_flagged_rows(noisy_task, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    label(noisy_task, tmp_path / "first", cache)
    (entry,) = [e for e in os.listdir(cache)]
    assert sorted(os.listdir(cache / entry)) == ["fold0.json", "fold0.npy", "fold1.json", "fold1.npy", "fold2.json",
                                                 "fold2.npy", "manifest.json"]

    measured = json.loads((tmp_path / "first" / "label_issues.json").read_text(encoding="utf-8"))["fold_seconds"]
    assert len(measured) == 3 and all(seconds > 0 for seconds in measured)

    monkeypatch.setattr(cleaning, "train_alone", lambda *a: pytest.fail("a cached fold was trained again"))
    # flags added since (here BOW's shape) at the values that keep the old models: the same entry; so is
    # another cleanlab filter (it reads the same probabilities)
    label(noisy_task, tmp_path / "first", cache, "--clean", "drop", "--pooling", "mean", "--fc_hidden_size", "0",
          "--filter_by", "prune_by_noise_rate")
    summary = json.loads((tmp_path / "first" / "label_issues.json").read_text(encoding="utf-8"))
    assert summary["fold_seconds"] == measured  # what the folds cost when trained, not this run's reading
    flagged = {int(row[0]) for row in read_issues(tmp_path / "first")}
    assert summary["filter_by"] == "prune_by_noise_rate" and summary["flagged"] == len(flagged) == len(
        cleanlab_flags(noisy_task, cache, "prune_by_noise_rate"))
    cleaned = (tmp_path / "first" / "data" / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert len(cleaned) == 97 - len(flagged)
    kept_qids = {int(line.split("\t")[0]) for line in cleaned[1:]}
    assert kept_qids == {i for i in range(96)} - {line - 2 for line in flagged}


def test_a_fold_stopped_after_training_is_scored_without_training_again(noisy_task, tmp_path, monkeypatch):
    """A run stopped between a fold's training and its scores (a crash, the end of a session) continues from
    the fold's last checkpoint: its training is not repeated and the scores are the uninterrupted run's."""
    label(noisy_task, tmp_path / "whole", tmp_path / "cache_whole")
    export = cleaning.export_checkpoint

    def crash(checkpoint, output_dir):
        raise KeyboardInterrupt("stopped after the fold's training")

    monkeypatch.setattr(cleaning, "export_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        label(noisy_task, tmp_path / "stopped", tmp_path / "cache")
    (entry,) = [tmp_path / "cache" / e for e in os.listdir(tmp_path / "cache")]
    assert os.path.isdir(entry / "fold0.run" / "last") and not os.path.exists(entry / "fold0.npy")

    monkeypatch.setattr(cleaning, "export_checkpoint", export)
    label(noisy_task, tmp_path / "stopped", tmp_path / "cache")
    cost = json.loads((entry / "fold0.json").read_text(encoding="utf-8"))
    assert cost["resumed_from_step"] == 12 * 8  # every step of 12 epochs over 64 rows in batches of 8: none again
    assert cost["seconds"] > 0 and not os.path.exists(entry / "fold0.run")
    (whole,) = [tmp_path / "cache_whole" / e for e in os.listdir(tmp_path / "cache_whole")]
    for k in range(3):
        np.testing.assert_allclose(np.load(entry / f"fold{k}.npy"), np.load(whole / f"fold{k}.npy"), rtol=1e-5, atol=1e-6)
    assert read_issues(tmp_path / "stopped") == read_issues(tmp_path / "whole")


def test_the_teacher_scores_by_folds(noisy_task, tiny_teacher, tmp_path):
    data_dir, _, _ = noisy_task
    out = tmp_path / "issues"
    main_of("label_errors")(["--data_dir", str(data_dir), "--model_name_or_path", str(tiny_teacher), "--model_type",
                       "ernie-gram", "--output_dir", str(out), "--probs_cache", str(tmp_path / "cache"),
                       "--folds", "2", "--batch_size", "8", "--max_seq_length", "32", "--learning_rate", "5e-3",
                       "--num_train_epochs", "4", "--device", "cpu"])
    summary = json.loads((out / "label_issues.json").read_text(encoding="utf-8"))
    assert summary["model"] == "teacher" and summary["rows"] == 96
    assert sorted(os.listdir(out / "vdl")) == ["fold0", "fold1"]  # each fold's curves


def test_bad_input_is_one_error_and_writes_nothing(noisy_task, tmp_path, capsys):
    data_dir, vocab, _ = noisy_task
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    argv = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--probs_cache", str(tmp_path / "cache"), *STUDENT]
    for extra, message in [(["--output_dir", str(taken)], f"{taken}: holds notes.txt, which label_errors.py did "
                                                          "not write; choose another --output_dir"),
                           (["--output_dir", str(tmp_path / "new"), "--folds", "100"],
                            f"{data_dir}/train.tsv: 96 distinct texts for 100 folds")]:
        with pytest.raises(SystemExit) as exit_info:
            run_main(lambda: main_of("label_errors")([*argv, *extra]))
        assert exit_info.value.code == 2 and capsys.readouterr().err.strip() == f"error: {message}"
    assert os.listdir(taken) == ["notes.txt"] and not (tmp_path / "new").exists() and not (tmp_path / "cache").exists()
    with pytest.raises(SystemExit):
        main_of("label_errors")([*argv, "--folds", "1"])
    assert "--folds: at least 2" in capsys.readouterr().err


def test_word_vectors_key_the_probabilities_by_their_content(tmp_path):
    from args import parse_args

    splits = {"train": [{"label": 0, "text": "好"}, {"label": 1, "text": "差"}], "dev": [{"label": 0, "text": "好"}]}
    vectors = tmp_path / "words.vector"

    def key(content):
        vectors.write_text(content, encoding="utf-8")
        args = parse_args("label", ["--model", "student", "--data_dir", "task", "--init_embeddings", str(vectors)])
        return cleaning.manifest_key(cleaning.probs_manifest(args, splits, ["0", "1"], (0, 1)))

    assert key("1 2\n好 0.1 0.2\n") != key("1 2\n好 0.3 0.2\n")  # same path, other vectors


def test_flags_added_after_caching_keep_the_cache_key_at_their_old_behaviour():
    """A cached entry stays valid when a flag is added (its value that keeps the old models is left out of
    the key); any other value of it is another entry."""
    from args import parse_args

    splits = {"train": [{"label": 0, "text": "好"}, {"label": 1, "text": "差"}], "dev": [{"label": 0, "text": "好"}]}

    def key(*flags, fold_of=(0, 1)):
        args = parse_args("label", ["--model", "student", "--data_dir", "task", *flags])
        return cleaning.manifest_key(cleaning.probs_manifest(args, splits, ["0", "1"], fold_of))

    settings = cleaning.probs_manifest(parse_args("label", ["--model", "student"]), splits, ["0", "1"],
                                           (0, 1))["settings"]
    assert not set(cleaning.KEY_OMITS_AT) & set(settings)
    assert key() == key("--pooling", "mean", "--fc_hidden_size", "0") != key("--fc_hidden_size", "96")
    assert key() == key("--pair_op", "mul") != key("--pair_op", "add")
    assert key() == "d40a3716c5812b1125c9"  # the key of the code that cached the bench's folds (415276a)
    # other folds, other models: entries of the label-stratified folds are not read as the grouped folds'
    assert key() != key(fold_of=(1, 0))
