import re

import numpy as np
import pytest

from conftest import main_of, toy_sentences, write_tsv, write_vocab
from data import (LengthGroupedBatchSampler, build_word_dict, lean_vocab, load_local_splits, load_splits,
                  load_vocab, segment, unseen_rows, vocab_words)
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


def test_numeric_labels_are_compared_as_numbers(tmp_path):
    # a label column pandas saved as floats: 1.0 beside 1 made a four-class model ['0', '0.0', '1', '1.0']
    write_tsv(tmp_path / "train.tsv", [("1", "好"), ("1.0", "很好"), ("0", "差"), ("0.0", "很差"), (" +1 ", "推荐")])
    write_tsv(tmp_path / "dev.tsv", [("1.00", "好"), ("-0", "差")])
    splits, labels = load_local_splits(str(tmp_path))
    assert labels == ["0", "1"]
    assert [ex["label"] for ex in splits["train"]] == [1, 1, 0, 0, 1]
    assert [ex["label"] for ex in splits["dev"]] == [1, 0]
    write_tsv(tmp_path / "train.tsv", [("10", "好"), ("9.50", "差"), ("0.5", "一般"), (".5", "还行")])
    write_tsv(tmp_path / "dev.tsv", [("9.5", "差")])
    assert load_local_splits(str(tmp_path))[1] == ["0.5", "9.5", "10"]  # by value, each in one spelling


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


def test_a_training_set_of_one_class_is_refused(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("1", "好"), ("1", "很好")])
    write_tsv(tmp_path / "dev.tsv", [("1", "好")])
    with pytest.raises(InputError, match="train.tsv: every row has label '1'; a classifier needs at least two"):
        load_local_splits(str(tmp_path))


def test_a_failed_download_says_to_use_local_files(monkeypatch):
    import data

    def offline(*args, **kwargs):
        raise ConnectionError("Max retries exceeded with url: https://bj.bcebos.com/...")

    monkeypatch.setattr(data, "load_dataset", offline)
    with pytest.raises(InputError, match="chnsenticorp: download failed .*offline\\? .*--data_dir"):
        data.load_online_splits("chnsenticorp")


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


def test_lean_vocab_gives_every_training_word_a_row(tmp_path):
    vocab = load_vocab(str(write_vocab(tmp_path / "v.txt", ["好", "差", "从未见过"])))
    lean = lean_vocab(vocab, [["差", "好", "2021年"], ["好", "新词", "新词", "[UNK]"]])
    # the dictionary's words in its order, then training words it lacks by count; unseen dropped
    assert vocab_words(lean) == ["[PAD]", "[UNK]", "好", "差", "新词", "2021年"]
    assert lean.to_indices(["从未见过", "新词"]) == [1, 4]  # only a word never seen falls back to [UNK]
    assert vocab_words(lean_vocab(vocab, [["差", "好", "新词"], ["好", "新词"]], min_freq=2)) == [
        "[PAD]", "[UNK]", "好", "新词"]


@pytest.mark.parametrize("content, message", [
    ("[UNK]\n[PAD]\n好\n", "v.txt:1: the vocabulary must start with \\[PAD\\], found '\\[UNK\\]'"),
    ("", "v.txt: empty vocabulary file"),
    ("\n\n", "v.txt: empty vocabulary file"),
    ("[PAD]\n[UNK]\n好\n差\n好\n", "v.txt:5: '好' again \\(first on line 3\\)"),
    ("[PAD]\n[UNK]\n好\n[PAD]\n", "v.txt:4: '\\[PAD\\]' again \\(first on line 1\\)"),
    ("[PAD]\n[UNK]\n\n好\n", "v.txt:3: empty word"),
    ("[PAD]\n好\n", "v.txt: no \\[UNK\\] line"),
])
def test_bad_vocabulary_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "v.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_vocab(str(path))


def test_vocabulary_errors_and_windows_files(tmp_path):
    with pytest.raises(InputError, match="no such vocabulary file"):
        load_vocab(str(tmp_path / "missing.txt"))
    path = tmp_path / "v.txt"
    path.write_bytes("[PAD]\n[UNK]\n好\n".encode() + "差".encode("gbk") + b"\n")
    with pytest.raises(InputError, match="v.txt:4: not valid UTF-8"):
        load_vocab(str(path))
    path.write_bytes("\ufeff[PAD]\r\n[UNK]\r\n好\r\n差\r\n".encode())  # saved by Notepad: BOM, CRLF
    assert vocab_words(load_vocab(str(path))) == ["[PAD]", "[UNK]", "好", "差"]


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
    main_of("build_vocab")(["--data_dir", str(data_dir), "--vocab_path", str(out)])
    words = out.read_text(encoding="utf-8").splitlines()
    assert words[:2] == ["[PAD]", "[UNK]"] and len(words) == len(set(words)) > 300_000
    assert {"很差", "失望", "酒店"} <= set(words[2:40])  # the corpus's words come before jieba's
    assert load_vocab(str(out)).to_indices("失望") == words.index("失望")

    (data_dir / "train.tsv").write_bytes(b"label\ttext_a\n1\t\xff\n0\t\xff\n")
    out.unlink()
    with pytest.raises(InputError, match="train.tsv:2: not valid UTF-8"):
        main_of("build_vocab")(["--data_dir", str(data_dir), "--vocab_path", str(out)])
    assert list(tmp_path.glob("dict.txt*")) == []


@pytest.mark.parametrize("job, argv, message", [
    ("student", ["--max_epoch", "0"], "--max_epoch/--num_train_epochs: must be at least 1"),
    ("student", ["--lr", "0"], "--lr/--learning_rate: must be above 0, got 0"),
    ("teacher", ["--learning_rate=-5e-5"], "--lr/--learning_rate: must be above 0"),
    ("student", ["--seed", "-1"], "--seed: must be 0 or more"),
    ("student", ["--dropout_prob", "2"], "--dropout_prob: must be in \\[0, 1\\), got 2"),
    ("distill", ["--teacher_dir", "t", "--alpha", "1.5"], "--alpha: must be in \\[0, 1\\]"),
    ("distill", ["--teacher_dir", "t", "--temperature", "0"], "--temperature: must be above 0"),
    ("distill", ["--teacher_dir", "t", "--ngram_range", "5", "2"], "--ngram_range: MIN 5 is above MAX 2"),
    ("distill", ["--teacher_dir", "t", "--p_mask", "0.6", "--p_pos", "0.6"], "add up to more than 1"),
    ("distill", ["--teacher_dir", "t", "--n_iter", "-1"], "--n_iter: must be 0 or more"),
    ("vocab", ["--data_dir", "d"], "the following arguments are required: --vocab_path"),
])
def test_args_refuse_impossible_values(capsys, job, argv, message):
    from args import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args(job, argv)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_default_output_dirs_follow_the_task():
    from args import parse_args

    args = parse_args("student", ["--vocab_size", "1256608"])  # the original's flag still parses
    assert args.output_dir == "small_models/chnsenticorp" and args.logdir == "small_models/chnsenticorp/vdl"
    # a local task is named after its folder, so it never lands on a ChnSentiCorp run
    assert parse_args("student", ["--data_dir", "data/tnews/"]).output_dir == "small_models/tnews"
    assert parse_args("distill", ["--data_dir", "x/tnews", "--teacher_dir", "t"]).output_dir == "distilled_models/tnews"
    assert parse_args("teacher", ["--data_dir", "x", "--task_name", "News"]).output_dir == "teacher/news"


@pytest.mark.parametrize("script", ["student_lstm_small.py", "teacher_train_glue.py", "teacher_student_distill.py",
                                    "export_model.py", "predict.py", "build_vocab.py"])
def test_help_and_argument_errors_come_before_paddle_is_imported(script):
    """--help shows the defaults, and neither it nor a bad flag waits for Paddle's import (seconds)."""
    import subprocess
    import sys

    probe = ("import runpy, sys; sys.argv = sys.argv[1:]\n"
             "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "finally:\n    print('paddle imported' if 'paddle' in sys.modules else 'no paddle', file=sys.stderr)")
    for flag, code in (("--help", 0), ("--no_such_flag", 2)):
        done = subprocess.run([sys.executable, "-c", probe, script, flag], capture_output=True, text=True)
        assert done.returncode == code and done.stderr.strip().endswith("no paddle"), done.stderr
    help_text = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True).stdout
    assert ("(default: " in help_text or script == "export_model.py") and "Warning" not in help_text


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


@pytest.mark.parametrize("job, name", [("teacher", "teacher"), ("student", "student"), ("distill", "distill"),
                                       ("tinybert", "tinybert")])
def test_each_recipe_is_a_valid_command_of_its_job(job, name):
    from args import RECIPES, parse_args, recipe

    extra = ["--teacher_dir", "t"] if job in ("distill", "tinybert") else []
    args = parse_args(job, [f"@{RECIPES}/{name}.txt", *extra])
    assert recipe(name)[0].startswith("--") and "#" not in " ".join(recipe(name))  # comments are not flags
    if job != "tinybert":  # the transformer student reads the teacher's tokens, at the teacher's length
        assert args.max_seq_length == 256


def test_dev_unseen_holds_the_dev_texts_train_does_not(tmp_path, caplog):
    from types import SimpleNamespace

    rows = toy_sentences(8, seed=0)
    write_tsv(tmp_path / "train.tsv", rows[:6])
    write_tsv(tmp_path / "dev.tsv", [rows[0], rows[6], (rows[1][0], f" {rows[1][1]} "), rows[7]])
    splits, _ = load_splits(SimpleNamespace(data_dir=str(tmp_path)))
    assert unseen_rows(splits["dev"], splits["train"]) == [1, 3]  # word for word, spaces around a text dropped
    assert [ex["text"] for ex in splits["dev_unseen"]] == [rows[6][1], rows[7][1]]

    write_tsv(tmp_path / "dev.tsv", rows[:2])
    splits, _ = load_splits(SimpleNamespace(data_dir=str(tmp_path)))
    assert "dev_unseen" not in splits and "every dev text is also in train" in caplog.text


PAIR = ("label", "text_a", "text_b")


def test_pair_files_read_each_text_as_the_pair_and_check_both_sides(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("1", "怎么开证明", "证明怎么开"), ("0", "今天天气", "明天下雨吗")], header=PAIR)
    write_tsv(tmp_path / "dev.tsv", [("0", " 明天下雨吗", "今天天气 "), ("1", "花呗怎么还", "怎么还花呗")], header=PAIR)
    splits, labels = load_local_splits(str(tmp_path))
    assert labels == ["0", "1"] and splits["dev"][0]["text"] == ("明天下雨吗", "今天天气")  # sides stripped
    assert unseen_rows(splits["dev"], splits["train"]) == [1]  # a train pair with its sides swapped is seen

    for rows, message in [([("1", "问", " ")], "train.tsv:3: empty text_b"),
                          ([("1", "", "问")], "train.tsv:3: empty text_a"),
                          ([("1", "问")], "train.tsv:3: expected 3 tab-separated fields")]:
        write_tsv(tmp_path / "train.tsv", [("0", "今天天气", "明天下雨吗"), *rows], header=PAIR)
        with pytest.raises(InputError, match=message):
            load_local_splits(str(tmp_path))


def test_a_single_text_file_in_a_pair_task_is_refused_and_the_reverse(tmp_path):
    import data

    write_tsv(tmp_path / "train.tsv", [("1", "怎么开证明", "证明怎么开"), ("0", "今天天气", "明天下雨吗")], header=PAIR)
    write_tsv(tmp_path / "dev.tsv", [("1", "怎么开证明")])
    with pytest.raises(InputError, match=r"dev.tsv: single texts \(no text_b\), where .*train.tsv has pairs"):
        load_local_splits(str(tmp_path))
    write_tsv(tmp_path / "dev.tsv", [("1", "怎么开证明", "证明怎么开")], header=PAIR)
    single = write_tsv(tmp_path / "other.tsv", [("1", "好")])
    splits, labels = load_local_splits(str(tmp_path))
    with pytest.raises(InputError, match=r"other.tsv: single texts \(no text_b\), where the task has pairs"):
        data.load_eval_sets([("other", str(single))], labels, pairs=True)


def test_lcqmc_online_gives_pairs(monkeypatch):
    import data
    from paddlenlp.datasets import MapDataset

    def lcqmc(name, splits):
        assert name == "lcqmc"
        ds = MapDataset([{"query": "花呗怎么还", "title": "怎么还花呗", "label": 1}], label_list=["0", "1"])
        return ds, ds

    monkeypatch.setattr(data, "load_dataset", lcqmc)
    splits, labels = data.load_online_splits("LCQMC")
    assert labels == ["0", "1"] and splits["dev"][0] == {"text": ("花呗怎么还", "怎么还花呗"), "label": 1}
