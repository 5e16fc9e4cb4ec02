"""Pair tasks (text matching, LCQMC's layout) through the pipeline: siamese students, the teacher's
[CLS] a [SEP] b [SEP], distillation on pairs, F1 beside accuracy, and a checkpoint of the other kind refused."""
import json
import os

import numpy as np
import paddle
import pytest
from visualdl import LogReader

from conftest import main_of
from utils import InputError

TINY = ["--emb_dim", "16", "--hidden_size", "16", "--batch_size", "8", "--device", "cpu", "--num_threads", "2",
        "--log_freq", "1"]


def summary_of(output_dir):
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def scalars(logdir, tag):
    reader = LogReader(file_path=os.path.join(logdir, sorted(f for f in os.listdir(logdir) if "vdlrecords" in f)[0]))
    return [r.value for r in reader.get_data("scalar", tag)]


def test_f1_is_of_the_positive_class():
    from data import positive_class
    from trainer import confusion_matrix, scores

    predicted, gold = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1])
    confusion = confusion_matrix(predicted, gold, 2)
    assert confusion.tolist() == [[1, 1], [1, 2]]  # [gold, predicted]
    assert scores(confusion, 1) == pytest.approx({"acc": 3 / 5, "f1": 2 * 2 / (3 + 3)})  # TP 2, FP 1, FN 1
    assert scores(confusion_matrix(predicted, gold, 2) + confusion_matrix([0], [1], 2), 1)["f1"] == pytest.approx(
        2 * 2 / (3 + 4))  # batches add up
    assert scores(confusion_matrix(np.zeros(3, int), np.zeros(3, int), 2), 1)["f1"] == 0.0  # no positives at all
    assert scores(confusion, None) == {"acc": 3 / 5}
    assert positive_class(["0", "1"], pairs=True) == 1
    assert positive_class(["0", "1"], pairs=False) is None  # single texts: accuracy only
    assert positive_class(["0", "1", "2"], pairs=True) is None


@pytest.mark.parametrize("student", ["bilstm", "gru", "textcnn", "bow"])
@pytest.mark.parametrize("pair_op", ["mul", "add"])
def test_every_student_reads_pairs_with_one_encoder_and_padding_never_changes_the_logits(student, pair_op):
    from students import build_student

    paddle.seed(0)
    model = build_student({"student": student, "vocab_size": 20, "num_classes": 2, "emb_dim": 8, "hidden_size": 8,
                           "pair_op": pair_op})
    model.eval()
    assert not any("_b" in name for name, _ in model.named_parameters())  # both sides share every layer
    a, b = [3, 4, 5], [6, 7]
    alone = model(paddle.to_tensor([a]), paddle.to_tensor([3]), paddle.to_tensor([b]), paddle.to_tensor([2]))
    # the same pair beside a longer one: both sides padded (0) to the batch's widths
    batch = model(paddle.to_tensor([a + [0] * 5, list(range(2, 10))]), paddle.to_tensor([3, 8]),
                  paddle.to_tensor([b + [0] * 6, list(range(10, 18))]), paddle.to_tensor([2, 8]))
    np.testing.assert_allclose(batch.numpy()[0], alone.numpy()[0], rtol=1e-5, atol=1e-6)
    swapped = model(paddle.to_tensor([b]), paddle.to_tensor([2]), paddle.to_tensor([a]), paddle.to_tensor([3]))
    assert not np.allclose(swapped.numpy(), alone.numpy())  # [h1, h2, ...]: the order is an input


def test_a_student_without_a_pair_op_is_refused_for_a_pair_task():
    from types import SimpleNamespace

    import students

    class Single(paddle.nn.Layer):
        def __init__(self, vocab_size, num_classes):
            super().__init__()

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(students.STUDENTS, "single", Single)
        vocab = students.vocab_from_words(["[PAD]", "[UNK]", "好"])
        with pytest.raises(InputError, match="--student single reads single texts"):
            students.student_config(SimpleNamespace(student="single", pair_op="mul"), vocab, 2, pairs=True)


def test_a_student_alone_learns_the_toy_matching_task_and_reports_f1(pair_task, tmp_path):
    data_dir, vocab = pair_task
    out = tmp_path / "alone"
    main_of("student_lstm_small")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out),
                                   *TINY, "--max_epoch", "8", "--batch_size", "16", "--lr", "1e-2", "--optimizer", "adam",
                                   "--seed", "1", "--dropout_prob", "0.0"])
    summary = summary_of(out)
    assert summary["best_dev_acc"] >= 0.9
    assert 0 < summary["best_dev_f1"] <= 1 and len(summary["dev_f1"]) == len(summary["dev_acc"])
    best = dict(map(tuple, summary["dev_acc"]))
    assert max(best.values()) == summary["best_dev_acc"]  # accuracy chooses the checkpoint
    assert dict(map(tuple, summary["dev_f1"]))[summary["best_step"]] == summary["best_dev_f1"]
    assert scalars(out / "vdl", "dev/f1") == pytest.approx([f1 for _, f1 in summary["dev_f1"]])  # float32 there
    assert scalars(out / "vdl", "dev/best_f1")[-1] == pytest.approx(summary["best_dev_f1"])
    with open(out / "best" / "checkpoint.json", encoding="utf-8") as f:
        meta = json.load(f)
    assert meta["pairs"] is True and meta["model"]["pair_op"] == "mul"


def test_a_checkpoint_of_the_other_kind_of_text_is_refused(pair_task, toy_task, tmp_path):
    data_dir, vocab = pair_task
    single_dir, _ = toy_task
    out = tmp_path / "pairs_run"
    common = ["--vocab_path", str(vocab), *TINY, "--max_epoch", "1"]
    main_of("student_lstm_small")(["--data_dir", str(data_dir), "--output_dir", str(out), *common])
    with pytest.raises(InputError, match=r"last: trained on pairs \(text_a, text_b\), the data has single texts"):
        main_of("student_lstm_small")(["--data_dir", str(single_dir), "--output_dir", str(tmp_path / "single"),
                                       *common, "--max_epoch", "2", "--init_from_ckpt", str(out / "last")])


def test_teacher_reads_a_pair_as_cls_a_sep_b_sep_and_is_distilled_into_a_siamese_student(
        pair_task, tiny_teacher, tmp_path):
    from teacher import encode, load_teacher

    data_dir, vocab = pair_task
    _, tokenizer = load_teacher("ernie-gram", str(tiny_teacher), ["0", "1"])
    (ids, types), = encode(tokenizer, [("很好", "失望")], 32, progress=False)
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "很", "好", "[SEP]", "失", "望", "[SEP]"]
    assert types == [0, 0, 0, 0, 1, 1, 1]

    teacher = tmp_path / "teacher"
    main_of("teacher_train_glue")(["--data_dir", str(data_dir), "--model_name_or_path", str(tiny_teacher),
                                   "--model_type", "ernie-gram", "--output_dir", str(teacher), "--batch_size", "8",
                                   "--max_seq_length", "48", "--learning_rate", "5e-3", "--num_train_epochs", "4",
                                   "--device", "cpu", "--num_threads", "2"])
    teacher_summary = summary_of(teacher)
    assert "best_dev_f1" in teacher_summary and "dev_unseen_f1" in teacher_summary
    with open(teacher / "best" / "checkpoint.json", encoding="utf-8") as f:
        assert json.load(f)["pairs"] is True

    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("很好的书\t喜欢这个\n失望\t很差的酒店\n", encoding="utf-8")
    out = tmp_path / "distilled"
    main_of("teacher_student_distill")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--teacher_dir",
                                        str(teacher / "best"), "--output_dir", str(out), *TINY, "--max_epoch", "2",
                                        "--n_iter", "2", "--unlabeled_path", str(unlabeled),
                                        "--logits_cache", str(tmp_path / "cache"), "--pair_op", "add"])
    summary = summary_of(out)
    assert summary["teacher_dev_acc"] == pytest.approx(teacher_summary["best_dev_acc"], abs=1e-6)
    assert summary["teacher_dev_f1"] == pytest.approx(teacher_summary["best_dev_f1"], abs=1e-6)
    # 256 training pairs, 2 unlabelled ones, and up to 2 augmented copies of each training pair
    assert 258 < summary["transfer_set"]["sentences"] <= 258 + 512 and summary["transfer_set"]["gold_labelled"] == 256
    assert {"best_dev_f1", "dev_unseen_acc", "dev_unseen_f1"} <= set(summary)
    with open(out / "best" / "checkpoint.json", encoding="utf-8") as f:
        assert json.load(f)["model"]["pair_op"] == "add"

    unlabeled.write_text("很好的书 喜欢这个\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unlabeled.txt:1: expected a pair, text_a and text_b separated by a tab"):
        main_of("teacher_student_distill")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--teacher_dir",
                                            str(teacher / "best"), "--output_dir", str(tmp_path / "other"), *TINY,
                                            "--unlabeled_path", str(unlabeled), "--logits_cache", str(tmp_path / "cache")])
