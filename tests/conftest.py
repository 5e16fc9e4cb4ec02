"""Small data the tests make: a toy sentiment task whose label is decided by one word."""
import contextlib
import os
import random
import runpy

import numpy as np
import pytest

POSITIVE = ["很好", "喜欢", "满意", "推荐", "不错"]
NEGATIVE = ["很差", "失望", "糟糕", "退货", "垃圾"]
FILLER = ["这个", "酒店", "房间", "服务", "价格", "书", "手机", "屏幕", "早餐", "我们", "觉得", "非常"]


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main_of(script):
    """The main(argv) of a root script (main_of("predict")), as `python predict.py ...` runs it, in this
    process: the script is run from its file, never imported (nothing imports a script:
    tests/test_layout.py), so tests patch the library modules its main calls."""
    return runpy.run_path(os.path.join(ROOT, f"{script}.py"), run_name=script)["main"]


def toy_sentences(n, seed):
    """(label, text) pairs: fillers around one sentiment word that decides the label."""
    rng = random.Random(seed)
    return [(str(i % 2), toy_text(rng, i % 2)) for i in range(n)]


def toy_text(rng, label):
    words = rng.choices(FILLER, k=rng.randint(1, 8))
    words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
    return "".join(words)


PAIR_HEADER = ("label", "text_a", "text_b")


def toy_pairs(n, seed):
    """(label, text_a, text_b): a toy matching task, label 1 when the two texts' sentiment words agree."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        side = rng.randint(0, 1)
        other = side if i % 2 else 1 - side
        rows.append((str(i % 2), toy_text(rng, side), toy_text(rng, other)))
    return rows


def write_tsv(path, rows, header=("label", "text_a")):
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def write_vocab(path, words):
    path.write_text("\n".join(["[PAD]", "[UNK]", *words]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def toy_task(tmp_path):
    """A data dir with train (48) / dev (24) sentences and a vocab of the toy words."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_tsv(data_dir / "train.tsv", toy_sentences(48, seed=1))
    write_tsv(data_dir / "dev.tsv", toy_sentences(24, seed=2))
    vocab = write_vocab(tmp_path / "vocab.txt", POSITIVE + NEGATIVE + FILLER + ["从未见过"])
    return data_dir, vocab


@pytest.fixture
def pair_task(tmp_path):
    """A data dir of toy pairs, train (256: a siamese student learns the task from them, not from 64) / dev (24),
    and the toy words' vocab."""
    data_dir = tmp_path / "pairs"
    data_dir.mkdir()
    write_tsv(data_dir / "train.tsv", toy_pairs(256, seed=1), PAIR_HEADER)
    write_tsv(data_dir / "dev.tsv", toy_pairs(24, seed=2), PAIR_HEADER)
    vocab = write_vocab(tmp_path / "vocab.txt", POSITIVE + NEGATIVE + FILLER)
    return data_dir, vocab


@pytest.fixture
def tiny_teacher(tmp_path):
    """A randomly initialised two-layer ERNIE-Gram with a character vocabulary of the toy
    words, saved as PaddleNLP's save_pretrained does (what --model_name_or_path takes)."""
    import paddle
    from paddlenlp.transformers import (ErnieGramConfig, ErnieGramForSequenceClassification,
                                        ErnieGramTokenizer)

    chars = sorted({c for w in POSITIVE + NEGATIVE + FILLER for c in w})
    vocab_file = tmp_path / "tiny_vocab.txt"
    vocab_file.write_text("\n".join(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", *chars]) + "\n",
                          encoding="utf-8")
    config = ErnieGramConfig(vocab_size=5 + len(chars), embedding_size=16, hidden_size=16,
                             num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                             max_position_embeddings=64, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0, num_classes=2)
    paddle.seed(0)
    model_dir = tmp_path / "tiny_ernie_gram"
    ErnieGramForSequenceClassification(config).save_pretrained(str(model_dir))
    ErnieGramTokenizer(str(vocab_file)).save_pretrained(str(model_dir))
    return model_dir


@contextlib.contextmanager
def crash_after_saving(step):
    """Within the block, training raises KeyboardInterrupt right after saving the checkpoint of
    `step`: a crash in-process (tests/test_kill_resume.py kills a process for real)."""
    import trainer

    save = trainer.evaluate_and_save

    def save_then_crash(*args, **kwargs):
        save(*args, **kwargs)
        if args[-2]["global_step"] == step:  # evaluate_and_save(..., args, meta, state, extras)
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "evaluate_and_save", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            yield


def assert_same_weights(*checkpoints):
    """The checkpoints' model_state.pdparams hold the same tensors, bit for bit."""
    import paddle

    first, *others = (paddle.load(os.path.join(c, "model_state.pdparams")) for c in checkpoints)
    for other in others:
        assert first.keys() == other.keys()
        assert all(np.array_equal(first[k].numpy(), other[k].numpy()) for k in first)


@pytest.fixture
def fine_tuned(toy_task, tiny_teacher, tmp_path):
    """The tiny teacher fine-tuned for a few steps on the toy task: (data_dir, vocab, base, best)."""
    data_dir, vocab = toy_task
    out = tmp_path / "teacher"
    main_of("teacher_train_glue")(["--data_dir", str(data_dir), "--model_name_or_path", str(tiny_teacher),
                             "--model_type", "ernie-gram", "--output_dir", str(out), "--batch_size", "8",
                             "--max_seq_length", "32", "--learning_rate", "5e-3", "--num_train_epochs", "15",
                             "--device", "cpu", "--num_threads", "2"])
    return data_dir, vocab, tiny_teacher, out / "best"
