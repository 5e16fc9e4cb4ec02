import numpy as np
import pytest

import build_vocab
from conftest import toy_sentences, write_tsv, write_vocab
from data import (LengthGroupedBatchSampler, build_word_dict, lean_vocab, load_local_splits, load_vocab,
                  segment, vocab_words)
from utils import InputError


def test_both_layouts_and_optional_test_split(tmp_path):
    rows = toy_sentences(6, seed=0)
    write_tsv(tmp_path / "train.tsv", rows)
    write_tsv(tmp_path / "dev.tsv", [(str(i), label, text) for i, (label, text) in enumerate(rows)],
              header=("qid", "label", "text_a"))
    splits, labels = load_local_splits(str(tmp_path))
    assert labels == ["0", "1"] and set(splits) == {"train", "dev"}
    assert [ex["label"] for ex in splits["dev"]] == [int(label) for label, _ in rows]
    assert [ex["text"] for ex in splits["dev"]] == [text for _, text in rows]

    write_tsv(tmp_path / "test.tsv", [("7", rows[0][1])], header=("qid", "text_a"))
    splits, _ = load_local_splits(str(tmp_path))
    assert splits["test"][0]["label"] is None and splits["test"][0]["text"] == rows[0][1]


def test_labels_come_from_the_data(tmp_path):
    rows = [(str(i % 15), f"第{i}句话") for i in range(45)]
    write_tsv(tmp_path / "train.tsv", rows)
    write_tsv(tmp_path / "dev.tsv", rows[:15])
    splits, labels = load_local_splits(str(tmp_path))
    assert labels == [str(i) for i in range(15)]  # numeric order: 2 before 10
    assert [ex["label"] for ex in splits["dev"]] == list(range(15))


@pytest.mark.parametrize("dev_lines, message", [
    (["label\ttext_a", "1\t好", "0\t差\t多余"], "dev.tsv:3: expected 2 tab-separated fields"),
    (["label\ttext_a", "1\t好", "2\t一般"], "dev.tsv:3: unknown label '2'"),
    (["label\ttext_a", "1\t  "], "dev.tsv:2: empty text"),
    (["label\ttext_a", "\t好"], "dev.tsv:2: empty label"),
    (["sentiment\treview", "1\t好"], "dev.tsv:1: header"),
    (["text_a", "好"], "dev.tsv:1: the dev split needs a label column"),
    (["label\ttext_a", ""], "dev.tsv: no rows after the header"),
])
def test_bad_rows_name_file_and_line(tmp_path, dev_lines, message):
    write_tsv(tmp_path / "train.tsv", [("0", "差"), ("1", "好")])
    (tmp_path / "dev.tsv").write_text("\n".join(dev_lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_local_splits(str(tmp_path))


def test_bad_encoding_and_missing_file(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("0", "差"), ("1", "好")])
    with pytest.raises(InputError, match="dev.tsv: no such file"):
        load_local_splits(str(tmp_path))
    (tmp_path / "dev.tsv").write_bytes("label\ttext_a\n1\t好\n0\t".encode() + "差".encode("gbk") + b"\n")
    with pytest.raises(InputError, match="dev.tsv:3: not valid UTF-8"):
        load_local_splits(str(tmp_path))


def test_word_dict_lists_corpus_words_then_jieba_words():
    words = build_word_dict([["酒店", "好", "好"], ["房间", "好", "差", "没见过的词"]])
    assert words[:3] == ["[PAD]", "[UNK]", "好"] and len(set(words)) == len(words)
    assert set(words[3:7]) == {"酒店", "房间", "差", "没见过的词"}
    assert len(words) > 300_000  # jieba's bundled dictionary follows


def test_segment_drops_spaces():
    [words] = segment(["酒店 很好\u3000！"])
    assert "".join(words) == "酒店很好！" and all(w.strip() for w in words)


def test_lean_vocab_keeps_only_words_seen_in_training(tmp_path):
    vocab = load_vocab(str(write_vocab(tmp_path / "v.txt", ["好", "差", "从未见过"])))
    lean = lean_vocab(vocab, [["差", "好"], ["好", "新词"]])
    assert vocab_words(lean) == ["[PAD]", "[UNK]", "好", "差"]  # dictionary order, unseen dropped
    assert lean.to_indices(["从未见过", "新词"]) == [1, 1]  # both fall back to [UNK]
    assert vocab_words(lean_vocab(vocab, [["差", "好"], ["好"]], min_freq=2)) == ["[PAD]", "[UNK]", "好"]


def test_vocab_must_start_with_pad(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("[UNK]\n[PAD]\n好\n", encoding="utf-8")
    with pytest.raises(InputError, match="v.txt:1: the vocabulary must start with"):
        load_vocab(str(path))
    with pytest.raises(InputError, match="no such vocabulary file"):
        load_vocab(str(tmp_path / "missing.txt"))
    path.write_bytes("[PAD]\n[UNK]\n好\n".encode() + "差".encode("gbk") + b"\n")
    with pytest.raises(InputError, match="v.txt:4: not valid UTF-8"):
        load_vocab(str(path))


def test_length_grouped_batches():
    lengths = np.random.default_rng(0).integers(1, 200, size=1000)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=16, shuffle=True, seed=3, pool_batches=10)
    epoch0 = list(sampler)
    assert sorted(i for b in epoch0 for i in b) == list(range(1000))
    assert epoch0 == list(sampler)  # a function of (seed, epoch)
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    sampler.set_epoch(0, skip_batches=5)
    assert list(sampler) == epoch0[5:] and len(sampler) == len(epoch0) - 5

    def padding(batches):
        return sum(max(lengths[b]) * len(b) - sum(lengths[b]) for b in batches) / lengths.sum()

    random_batches = np.array_split(np.random.default_rng(1).permutation(1000), len(epoch0))
    assert padding(epoch0) < 0.1 < padding(random_batches)


def test_build_vocab_script_writes_the_dictionary_or_nothing(toy_task, tmp_path):
    data_dir, _ = toy_task
    out = tmp_path / "dict.txt"
    build_vocab.main(["--data_dir", str(data_dir), "--vocab_path", str(out)])
    words = out.read_text(encoding="utf-8").splitlines()
    assert words[:2] == ["[PAD]", "[UNK]"] and len(words) == len(set(words)) > 300_000
    assert {"很差", "失望", "酒店"} <= set(words[2:40])  # the corpus's words come before jieba's
    assert load_vocab(str(out)).to_indices("失望") == words.index("失望")

    (data_dir / "train.tsv").write_bytes(b"label\ttext_a\n1\t\xff\n")
    out.unlink()
    with pytest.raises(InputError, match="train.tsv:2: not valid UTF-8"):
        build_vocab.main(["--data_dir", str(data_dir), "--vocab_path", str(out)])
    assert list(tmp_path.glob("dict.txt*")) == []


def test_args_refuse_non_positive_sizes(capsys):
    from args import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args("student", ["--max_epoch", "0"])
    assert exit_info.value.code == 2 and "--max_epoch/--num_train_epochs: must be at least 1" in capsys.readouterr().err
    args = parse_args("student", ["--vocab_size", "1256608"])  # the original's flag still parses
    assert args.output_dir == "small_models/chnsenticorp" and args.logdir == "small_models/chnsenticorp/vdl"


def test_the_original_commands_parse_unchanged():
    from args import parse_args

    teacher = parse_args("teacher", "--model_type ernie-gram --model_name_or_path ernie-gram-zh --task_name "
                         "ChnSentiCorp --max_seq_length 128 --batch_size 32 --learning_rate 5e-5 "
                         "--num_train_epochs 30 --logging_steps 10 --save_steps 100 "
                         "--output_dir ./teacher/ChnSentiCorp/ --device gpu".split())
    assert (teacher.lr, teacher.max_epoch, teacher.log_freq, teacher.optimizer) == (5e-5, 30, 10, "adamw")
    assert (teacher.lr_schedule, teacher.warmup_proportion, teacher.early_stop_patience) == ("linear", 0.1, 10)
    distill = parse_args("distill", "--task_name chnsenticorp --vocab_size 1256608 --max_epoch 6 --lr 1.0 "
                         "--dropout_prob 0.1 --batch_size 64 --model_name ernie-gram-zh --teacher_dir "
                         "./teacher/ChnSentiCorp/best/model_state.pdparams --vocab_path senta_word_dict.txt "
                         "--output_dir distilled_models --save_steps 10000 --n_iter 1".split())
    assert (distill.optimizer, distill.alpha, distill.n_iter, distill.distill_loss) == ("adadelta", 0.0, 1, "mse")


def test_unlabeled_sentences_skip_blank_lines_and_stop_at_bad_bytes(tmp_path):
    from data import read_lines

    path = tmp_path / "unlabeled.txt"
    path.write_bytes("\ufeff第一句\n\n  第二句  \n".encode())
    assert read_lines(str(path)) == ["第一句", "第二句"]
    path.write_bytes("第一句\n".encode() + b"\xff\n")
    with pytest.raises(InputError, match="unlabeled.txt:2: not valid UTF-8"):
        read_lines(str(path))
    path.write_text("\n \n", encoding="utf-8")
    with pytest.raises(InputError, match="no sentences"):
        read_lines(str(path))
    with pytest.raises(InputError, match="no such file"):
        read_lines(str(tmp_path / "missing.txt"))
