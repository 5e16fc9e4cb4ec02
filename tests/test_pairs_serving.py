"""Pair tasks after training: the exported student and teacher serve pairs, predict.py reads them (two texts a
line or a tsv's text_a and text_b) and answers bad ones, label_errors.py scores and cleans pair data, and a
siamese student trains under the launcher."""
import json
import random
import re

import numpy as np
import paddle
import pytest

import cleaning
from conftest import FILLER, PAIR_HEADER, main_of, toy_pairs, toy_sentences, write_tsv
from inference import Predictor
from test_distributed import STUDENT as LAUNCHED, assert_close_weights, launch
from test_predict import (STUDENT, assert_export_is_the_teacher, assert_refused, eager_student, export_student,
                          export_teacher, run_predict)

PAIRS = [("这个酒店很好", "房间很差，失望"), ("推荐", "喜欢"), ("价格不错非常满意", "我们觉得很好"), ("糟糕", "退货")]


@pytest.fixture
def exported_pair_student(pair_task, tmp_path):
    return export_student(*pair_task, tmp_path)


def test_exported_pair_student_gives_the_eager_probabilities(exported_pair_student):
    checkpoint, export_dir = exported_pair_student
    model = eager_student(checkpoint)
    predictor = Predictor(str(export_dir), num_threads=2)
    assert predictor.pairs and predictor.predictor.get_input_names() == ["input_ids", "seq_len", "input_ids_b",
                                                                        "seq_len_b"]
    eager = paddle.nn.functional.softmax(model(*map(paddle.to_tensor, predictor.inputs(PAIRS)))).numpy()
    np.testing.assert_allclose(predictor.predict(PAIRS, batch_size=3), eager, rtol=1e-5, atol=1e-6)


def test_exported_pair_teacher_gives_the_eager_probabilities_and_serves_pairs(pair_task, tiny_teacher, tmp_path,
                                                                               capsys):
    checkpoint, export_dir = export_teacher(pair_task[0], tiny_teacher, tmp_path)
    probs = assert_export_is_the_teacher(checkpoint, export_dir, PAIRS)
    _, type_ids = Predictor(str(export_dir)).inputs(PAIRS)
    assert type_ids[0].tolist().count(1) == len(PAIRS[0][1]) + 1  # text_b and its [SEP], the second segment

    path = tmp_path / "pairs.txt"
    path.write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS), encoding="utf-8")
    capsys.readouterr()  # what training printed
    out, _ = run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--format", "json",
                         "--device", "cpu")
    served = [[row["probabilities"][label] for label in ("0", "1")] for row in map(json.loads, out)]
    np.testing.assert_allclose(served, probs, atol=1e-6)


def test_pairs_are_read_two_texts_a_line_and_a_bad_line_is_an_error_row(exported_pair_student, tmp_path, capsys):
    _, export_dir = exported_pair_student
    path = tmp_path / "input.txt"
    path.write_text("推荐\t喜欢\n推荐 喜欢\n推荐\t \n\n推荐\t喜欢\t满意\n这个酒店很好\t房间很差，失望\n" + f"{'好' * 30}\t很好\n",
                    encoding="utf-8")
    out, err = run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--max_chars", "32",
                           "--device", "cpu")
    assert len(out) == 7 and "5 of 7 lines could not be classified" in err
    assert out[1:5] == ["ERROR\tline 2: expected a pair, text_a and text_b separated by a tab; found 1 field",
                        "ERROR\tline 3: empty text_b", "ERROR\tline 4: empty line",
                        "ERROR\tline 5: expected a pair, text_a and text_b separated by a tab; found 3 fields"]
    assert out[6] == "ERROR\tline 7: 33 characters, more than --max_chars 32"  # both texts and their tab
    rows = [json.loads(line) for line in run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path),
                                                     "--format", "json", "--device", "cpu")[0]]
    expected = Predictor(str(export_dir)).predict([PAIRS[1], PAIRS[0]])
    for row, probs in zip([rows[0], rows[5]], expected):
        assert [row["probabilities"][label] for label in ("0", "1")] == pytest.approx(probs.tolist(), abs=1e-5)
    assert rows[2] == {"line": 3, "error": "empty text_b"}


def test_eval_on_a_pair_tsv_prints_accuracy_and_the_f1_of_label_1(exported_pair_student, pair_task, tmp_path,
                                                                  capsys):
    dev = pair_task[0] / "dev.tsv"
    argv = ["--model_dir", str(exported_pair_student[1]), "--text_column", "text_a", "--eval", "--device", "cpu"]
    out, err = run_predict(capsys, *argv, "--input", str(dev))
    gold = [label for label, _, _ in toy_pairs(24, seed=2)]
    predicted = [line.split("\t")[0] for line in out]
    hits = sum(p == g == "1" for p, g in zip(predicted, gold))
    accuracy = np.mean([p == g for p, g in zip(predicted, gold)])
    f1 = 2 * hits / (predicted.count("1") + gold.count("1"))
    assert re.search(rf"accuracy {accuracy:.4f} F1 {f1:.4f} \(label 1\) on 24 labelled lines", err), err
    assert f1 > 0  # a true positive at least: the F1 printed is not the trivial one

    # the header names the columns, in any order; a side left empty is that line's error
    rows = [(b, label, a) for label, a, b in toy_pairs(24, seed=2)]
    rows[3] = (" ", *rows[3][1:])
    write_tsv(tmp_path / "shuffled.tsv", rows, ("text_b", "label", "text_a"))
    out, err = run_predict(capsys, *argv, "--input", str(tmp_path / "shuffled.tsv"))
    assert out[3] == "ERROR\tline 5: empty text_b" and out[:3] + out[4:] == [
        line for i, line in enumerate(run_predict(capsys, *argv, "--input", str(dev))[0]) if i != 3]
    assert "1 of 24 lines could not be classified" in err and "on 23 labelled lines" in err


@pytest.mark.parametrize("lines, argv, message", [
    (["label\ttext_a", "1\t推荐"], ["--text_column", "text_a"],
     r"input.tsv:1: single texts \(no text_b\), where the model classifies pairs \(text_a, text_b\)"),
    (["label\ttext_a\ttext_b", "1\t推荐\t喜欢"], [], r"input.tsv:1: a tsv header .*--text_column text_a"),
    (["text_a\ttext_b", "推荐\t喜欢"], ["--text_column", "text_a", "--eval"], "input.tsv:1: --eval needs a column 'label'"),
])
def test_a_file_predict_cannot_read_as_pairs_is_refused_on_line_1(exported_pair_student, tmp_path, capsys, lines,
                                                                  argv, message):
    assert_refused(exported_pair_student[1], tmp_path / "input.tsv", capsys, lines, argv, message)


def test_a_pair_and_its_sides_swapped_share_a_fold():
    texts = [(f"a{i}", f"b{i}") for i in range(30)] + [(f"b{i}", f"a{i}") for i in range(0, 30, 3)]
    labels = [i % 2 for i in range(len(texts))]
    folds = cleaning.grouped_folds(texts, labels, 3, seed=1)
    assert all(folds[i] == folds[30 + i // 3] for i in range(0, 30, 3))


def label_by_text_a(n, seed):
    """(label, text_a, text_b): a pair task a tiny student learns in a few epochs, text_a's sentiment word
    deciding the label and text_b of filler words only."""
    rng = random.Random(seed)
    return [(label, a, "".join(rng.choices(FILLER, k=rng.randint(1, 6)))) for label, a in toy_sentences(n, seed)]


def test_label_errors_finds_flipped_pair_labels_and_keeps_both_columns(pair_task, tmp_path):
    data_dir, vocab = pair_task
    rows = label_by_text_a(96, seed=1)
    flipped = {5, 17, 40}
    noisy = [(str(1 - int(label)) if i in flipped else label, a, b) for i, (label, a, b) in enumerate(rows)]
    write_tsv(data_dir / "train.tsv", noisy, PAIR_HEADER)
    write_tsv(data_dir / "dev.tsv", label_by_text_a(24, seed=2), PAIR_HEADER)
    out = tmp_path / "issues"
    main_of("label_errors")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out),
                             "--probs_cache", str(tmp_path / "cache"), "--model", "student", *STUDENT,
                             "--max_epoch", "12", "--folds", "3", "--clean", "relabel"])

    header, *issues = [line.split("\t") for line in (out / "label_issues.tsv").read_text(encoding="utf-8").splitlines()]
    assert header == ["line", "label", "suggested_label", "label_quality", "text_a", "text_b"]
    lines = {i + 2 for i in flipped}  # line 1 is the header
    assert lines <= {int(row[0]) for row in issues[:len(flipped) + 2]}  # the planted errors, among the worst
    for row in issues:
        assert tuple(row[4:]) == noisy[int(row[0]) - 2][1:]
    cleaned = (out / "data" / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert cleaned[0] == "\t".join(PAIR_HEADER) and len(cleaned) == 97
    assert all(tuple(cleaned[line - 1].split("\t")) == rows[line - 2] for line in lines)  # relabelled, both texts


def test_a_siamese_student_trains_under_the_launcher_as_in_one_process(pair_task, tmp_path):
    data_dir, vocab = pair_task
    common = ["--data_dir", data_dir, "--vocab_path", vocab, *LAUNCHED, "--max_epoch", "2"]
    launch("student_lstm_small.py", [*common, "--batch_size", "8", "--output_dir", tmp_path / "one"], 1,
           tmp_path / "log1")
    launch("student_lstm_small.py", [*common, "--batch_size", "4", "--output_dir", tmp_path / "two"], 2,
           tmp_path / "log2")
    assert_close_weights(tmp_path / "one" / "last", tmp_path / "two" / "last")
    one, two = (json.loads((tmp_path / run / "summary.json").read_text()) for run in ("one", "two"))
    assert np.allclose([f1 for _, f1 in one["dev_f1"]], [f1 for _, f1 in two["dev_f1"]])


def test_bench_serve_times_a_pair_tasks_student_and_fine_tuned_teacher_on_its_pairs(pair_task, tiny_teacher,
                                                                                     tmp_path):
    """bench_serve.py on a pair task: each model exported from its checkpoint reads the dev pairs (the teacher both
    texts, as fine-tuned) and its exported probabilities are the eager model's."""
    import subprocess
    import sys

    from conftest import ROOT

    data_dir, vocab = pair_task
    student = tmp_path / "student"
    main_of("student_lstm_small")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir",
                                   str(student), *STUDENT])
    teacher, _ = export_teacher(data_dir, tiny_teacher, tmp_path)
    results = tmp_path / "serve.json"
    subprocess.run([sys.executable, "bench/bench_serve.py", "--data_dir", str(data_dir), "--student_checkpoint",
                    str(student / "best"), "--teachers", "m3e-small", "--teacher_checkpoint", str(teacher),
                    "--modes", "exported", "--onednn", "off", "--threads", "1", "--batch_sizes", "1",
                    "--sentences", "8", "--results", str(results)], cwd=ROOT, check=True, capture_output=True)
    with open(results, encoding="utf-8") as f:
        rows = {row["model"]: row for row in json.load(f)["rows"]}
    assert rows.keys() == {"student-h16", "m3e-small"}
    for row in rows.values():
        assert "error" not in row and row["sentences_per_second"] > 0
        assert row["eager_vs_exported"]["max_abs_diff"] < 1e-5 and row["eager_vs_exported"]["same_labels"]
