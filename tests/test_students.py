"""The student family: each trains alone, distils, resumes, exports and predicts, through one factory."""
import json

import numpy as np
import paddle
import pytest

import args as args_module
import students
from conftest import assert_same_weights, crash_after_saving, main_of
from inference import Predictor
from students import STUDENTS, build_student
from test_distill import distill
from test_student import train
from checkpoint import WEIGHTS, load_state_strict, read_checkpoint_meta
from utils import InputError

SMALL = {"bilstm": [], "gru": [], "textcnn": ["--num_filters", "8", "--window_sizes", "2", "3"], "bow": []}
PADDLENLP_BOW = ["--pooling", "sum", "--fc_hidden_size", "8"]  # its second layer goes through every job too


def test_every_student_has_its_flag_value_and_one_class():
    assert list(args_module.STUDENTS) == list(STUDENTS) == list(SMALL)


@pytest.mark.parametrize("name, extra", [*((n, {}) for n in STUDENTS if n != "textcnn"),
                                         ("textcnn", {"num_filters": 4, "window_sizes": [2, 5]}),
                                         ("bow", {"pooling": "sum", "fc_hidden_size": 6})])
def test_logits_do_not_depend_on_padding(name, extra):
    """A sentence gets the same logits alone and in a batch of longer ones (the padding is ignored)."""
    paddle.seed(0)
    model = build_student({"student": name, "vocab_size": 50, "num_classes": 3, "emb_dim": 8, "hidden_size": 8,
                           **extra})
    model.eval()
    sentences = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14], [3]]
    alone = [model(paddle.to_tensor([s]), paddle.to_tensor([len(s)])).numpy()[0] for s in sentences]
    width = max(map(len, sentences)) + 4
    padded = paddle.to_tensor([s + [0] * (width - len(s)) for s in sentences])
    batched = model(padded, paddle.to_tensor([len(s) for s in sentences])).numpy()
    np.testing.assert_allclose(batched, np.stack(alone), rtol=1e-5, atol=1e-6)


def test_a_checkpoint_without_a_student_type_is_a_bilstm():
    """Checkpoints written before the family existed record no type: they are Bi-LSTMs."""
    model = build_student({"vocab_size": 10, "num_classes": 2, "emb_dim": 4, "hidden_size": 4})
    assert isinstance(model, students.BiLSTM)


@pytest.mark.parametrize("name, shape", [*((n, SMALL[n]) for n in STUDENTS if n != "bilstm"),  # the Bi-LSTM's:
                                         ("bow", PADDLENLP_BOW)])                             # test_student.py
def test_each_student_learns_resumes_exports_and_predicts(name, shape, toy_task, tmp_path):
    learns_resumes_exports_and_predicts(name, shape, toy_task, tmp_path)


class MaxWords(students.Student):
    """A fifth student, as a user would add one: the max of the sentence's word embeddings."""

    def __init__(self, vocab_size, num_classes, emb_dim=300, hidden_size=300, dropout_prob=0.0, init_scale=0.1,
                 padding_idx=0, word_dropout=0.0, unk_id=1):
        super().__init__(vocab_size, emb_dim, dropout_prob, init_scale, padding_idx, word_dropout, unk_id)
        self.add_head(emb_dim, hidden_size, num_classes)

    def encode(self, embedded, seq_len):
        positions = paddle.arange(paddle.shape(embedded)[1], dtype=seq_len.dtype)
        words = (positions.unsqueeze(0) < seq_len.unsqueeze(1)).unsqueeze(-1)
        return students.max_over_time(paddle.where(words, embedded, paddle.full_like(embedded, -1e4)))


def test_a_fifth_student_is_one_class_and_one_registry_line(toy_task, tmp_path, monkeypatch):
    """Its class, and its line in students.STUDENTS (which --student reads: tests/test_layout.py), are all it takes
    to train, resume, distil's factory, export and predict."""
    monkeypatch.setitem(students.STUDENTS, "maxwords", MaxWords)
    monkeypatch.setattr(args_module, "STUDENTS", tuple(students.STUDENTS))  # what registry_keys reads from the line
    learns_resumes_exports_and_predicts("maxwords", [], toy_task, tmp_path)


def learns_resumes_exports_and_predicts(name, shape, toy_task, tmp_path):
    run = ("--student", name, *shape, "--max_epoch", "10", "--save_steps", "6", "--lr", "1e-2",
           "--dropout_prob", "0.1", "--word_dropout", "0.1", "--num_threads", "1")
    whole = train(toy_task, tmp_path / "whole", *run)
    assert whole["best_dev_acc"] >= 0.9
    meta = read_checkpoint_meta(tmp_path / "whole" / "best")
    assert meta["model"]["student"] == name and meta["args"]["student"] == name

    with crash_after_saving(step=30):
        train(toy_task, tmp_path / "crashed", *run)
    with pytest.raises(InputError, match=f"a {name} checkpoint; resume it with --student {name}"):
        train(toy_task, tmp_path / "crashed", "--init_from_ckpt", str(tmp_path / "crashed" / "last"))
    resumed = train(toy_task, tmp_path / "crashed", *run, "--init_from_ckpt", str(tmp_path / "crashed" / "last"))
    assert resumed["dev_acc"] == whole["dev_acc"]
    assert_same_weights(tmp_path / "whole" / "last", tmp_path / "crashed" / "last")

    main_of("export_model")(["--checkpoint", str(tmp_path / "whole" / "best"), "--output_dir", str(tmp_path / "export")])
    model = build_student(meta["model"])
    load_state_strict(model, str(tmp_path / "whole" / "best" / WEIGHTS))
    model.eval()
    counts = students.parameter_counts(model)  # the family table's column
    assert whole["parameters"] == counts and counts["embedding"] == model.embedder.weight.size
    texts = ["这个酒店很好", "房间很差，失望", "推荐", "价格不错非常满意我们觉得"]
    predictor = Predictor(str(tmp_path / "export"), num_threads=1)
    ids, lengths = predictor.inputs(texts)
    eager = paddle.nn.functional.softmax(model(paddle.to_tensor(ids), paddle.to_tensor(lengths))).numpy()
    np.testing.assert_allclose(predictor.predict(texts, batch_size=3), eager, rtol=1e-5, atol=1e-6)


def test_each_student_distils(fine_tuned, tmp_path):
    for name in STUDENTS:
        summary = distill(fine_tuned, tmp_path / name, tmp_path / "cache", "--student", name, *SMALL[name],
                          "--n_iter", "1", "--max_epoch", "10", "--optimizer", "adam", "--lr", "1e-2",
                          "--dropout_prob", "0.0")
        meta = json.loads((tmp_path / name / "best" / "checkpoint.json").read_text(encoding="utf-8"))
        assert meta["model"]["student"] == name and summary["best_dev_acc"] >= 0.8, name
        assert summary["parameters"]["embedding"] == len(meta["vocab"]) * meta["model"]["emb_dim"]


def test_unseen_words_read_as_their_characters_with_chars():
    from data import vocab_from_words
    from students import convert_example

    vocab = vocab_from_words(["[PAD]", "[UNK]", "很", "甜", "好"])
    ids, length = convert_example(["很甜", "好吃", "好"], vocab, 10, "chars")
    assert vocab.to_tokens(ids) == ["很", "甜", "[UNK]", "好"] and length == 4  # 吃 has no row: 好吃 stays whole
    assert vocab.to_tokens(convert_example(["很甜", "好"], vocab, 10)[0]) == ["[UNK]", "好"]
    assert vocab.to_tokens(convert_example(["很甜", "好"], vocab, 2, "chars")[0]) == ["很", "甜"]  # then truncated


def test_export_and_predict_follow_the_unseen_words_rule(toy_task, tmp_path):
    data_dir, _ = toy_task
    with open(data_dir / "train.tsv", "a", encoding="utf-8") as f:
        f.write("1\t服 务 员 推荐\n")  # jieba keeps the spaced characters apart: each gets a row
    train(toy_task, tmp_path / "run", "--max_epoch", "1", "--unseen_words", "chars")
    main_of("export_model")(["--checkpoint", str(tmp_path / "run" / "best"), "--output_dir", str(tmp_path / "export")])
    predictor = Predictor(str(tmp_path / "export"), num_threads=1)
    assert predictor.config["unseen_words"] == "chars"
    ids, lengths = predictor.inputs(["服务员推荐"])  # jieba: 服务员 (never seen whole) 推荐
    assert predictor.vocab.to_tokens([int(i) for i in ids[0]]) == ["服", "务", "员", "推荐"] and lengths[0] == 4


def test_max_over_time_is_max_in_values_and_gradient():
    values = np.random.RandomState(0).randn(3, 7, 4).astype("float32")
    grads = []
    for pool in (students.max_over_time, lambda x: x.max(axis=1)):
        x = paddle.to_tensor(values, stop_gradient=False)
        out = pool(x)
        (out * paddle.arange(12, dtype="float32").reshape([3, 4])).sum().backward()  # a distinct weight per output
        grads.append((out.numpy(), x.grad.numpy()))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])
    assert (grads[0][1] != 0).sum() == 3 * 4 - 1  # one position per channel (weight 0 leaves one at zero)
