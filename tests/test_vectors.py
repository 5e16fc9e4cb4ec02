"""Pretrained word vectors (issue 43): the word2vec reader, --init_embeddings and tools/get_word_vectors.sh,
on tiny vector files the tests write."""
import json
import os
import subprocess

import numpy as np
import pytest

import trainer
from conftest import FILLER, NEGATIVE, POSITIVE, ROOT, main_of
from utils import InputError, file_sha256, run_main
from vectors import read_vectors

TINY = ["--emb_dim", "16", "--hidden_size", "16", "--batch_size", "8", "--device", "cpu", "--num_threads", "2"]


def some_vectors(words, dim, seed=0):
    rng = np.random.default_rng(seed)
    return {w: rng.normal(size=dim).astype(np.float32) for w in words}


def write_binary(path, vectors, newlines=True):
    """word2vec's C binary: "count dim", then word, space, dim float32 (and a newline, as word2vec.c writes)."""
    dim = len(next(iter(vectors.values())))
    with open(path, "wb") as f:
        f.write(f"{len(vectors)} {dim}\n".encode())
        for word, vector in vectors.items():
            f.write(word.encode("utf-8") + b" " + vector.astype("<f4").tobytes() + (b"\n" if newlines else b""))
    return path


def write_text(path, vectors):
    dim = len(next(iter(vectors.values())))
    lines = [f"{len(vectors)} {dim}"] + [" ".join([w, *map(repr, v.tolist())]) + " " for w, v in vectors.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


WRITERS = {"binary": write_binary, "binary without newlines": lambda p, v: write_binary(p, v, newlines=False),
           "text": write_text}


@pytest.mark.parametrize("fmt", WRITERS)
def test_reads_the_vectors_of_the_words_asked_for_in_either_format(fmt, tmp_path):
    vectors = some_vectors(["很好", "酒店", "</s>", "3.5"], dim=4)
    path = WRITERS[fmt](tmp_path / "vectors.bin", vectors)
    found, dim = read_vectors(str(path), ["酒店", "3.5", "从未见过"])
    assert dim == 4 and found.keys() == {"酒店", "3.5"}
    for word, vector in found.items():
        assert vector.dtype == np.float32 and np.array_equal(vector, vectors[word])


def garble(tmp_path, fmt, edit):
    path = WRITERS[fmt](tmp_path / "vectors", some_vectors(["很好", "酒店", "服务"], dim=3))
    path.write_bytes(edit(path.read_bytes()))
    return str(path)


@pytest.mark.parametrize("fmt, edit, message", [
    ("binary", lambda b: b[:-7], "record 3 of 3 (byte 44): truncated (not a complete word2vec binary file)"),
    ("binary", lambda b: b.replace(b"3 3\n", b"4 3\n"), "record 4 of 4 (byte 64): truncated"),
    ("binary", lambda b: b + b"junk", "4 bytes after the 3 records the header announces"),
    ("binary", lambda b: b"3 3\n" + b"x" * 2000,
     "record 1 of 3 (byte 4): no word ending in a space within 1000 bytes"),
    ("binary", lambda b: b.replace("酒店".encode(), b"\xff" * 6),
     "record 2 of 3 (byte 24): the word is not valid UTF-8"),
    ("text", lambda b: b.rsplit(b"\n", 2)[0] + b"\n", "2 lines of vectors, the header announces 3 (truncated?)"),
    ("text", lambda b: b.replace("店 ".encode(), "店 oops ".encode()), ":3: not a word and 3 numbers"),
    ("text", lambda b: b.replace(b" \n", b" 1.0\n", 1), ":2: 4 numbers after the word, the header says 3"),
    ("text", lambda b: b.replace(b" \n", b" \nextra 1 2 3\n"), ":5: more lines than the 3 the header announces"),
    ("text", lambda b: b.replace(b"3 3\n", b"word2vec\n"), ":1: expected word2vec's header 'count dim'"),
    ("text", lambda b: b.replace(b" \n", b" nan\n").replace(b"3 3", b"3 4"),
     "line 2: '很好' has values that are not finite numbers"),
])
def test_a_garbled_or_truncated_file_is_one_error_naming_the_file_and_where(fmt, edit, message, tmp_path):
    path = garble(tmp_path, fmt, edit)
    with pytest.raises(InputError) as error:
        read_vectors(path, ["很好", "酒店", "服务"])
    assert str(error.value).startswith(path) and message in str(error.value)


def test_vectors_of_another_dim_are_refused_naming_both(tmp_path):
    path = str(write_binary(tmp_path / "v.bin", some_vectors(["很好"], dim=4)))
    with pytest.raises(InputError, match="4-dimensional vectors, the student's embedding has 16 "
                                         r"\(--emb_dim 16\); give --emb_dim 4"):
        read_vectors(path, ["很好"], dim=16)


def first_weights(monkeypatch):
    """The student's embedding table as training starts (trainer.fit's model), in the returned list."""
    seen, fit = [], trainer.fit
    monkeypatch.setattr(trainer, "fit", lambda model, *a, **k: seen.append(model.embedder.weight.numpy()) or fit(
        model, *a, **k))
    return seen


@pytest.mark.parametrize("task", ["toy_task", "pair_task"])
def test_init_embeddings_starts_the_rows_of_the_words_in_the_file_and_the_checkpoint_names_it(
        task, tmp_path, monkeypatch, request):
    data_dir, vocab = request.getfixturevalue(task)
    vectors = some_vectors(POSITIVE + NEGATIVE + FILLER + ["不在训练里"], dim=16)
    path = str(write_text(tmp_path / "vectors.txt", vectors))
    out = tmp_path / "run"
    seen = first_weights(monkeypatch)
    main_of("student_lstm_small")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out),
                                   "--init_embeddings", path, "--max_steps", "1", *TINY])
    with open(out / "best" / "checkpoint.json", encoding="utf-8") as f:
        meta = json.load(f)
    rows = {word: i for i, word in enumerate(meta["vocab"])}
    found = [word for word in vectors if word in rows]  # jieba cuts some toy words in two (很好: 很 好)
    table = seen[0]
    assert len(found) >= 10 and all(np.array_equal(table[rows[word]], vectors[word]) for word in found)
    others = [i for word, i in rows.items() if word not in vectors and word != "[PAD]"]
    assert np.abs(table[others]).max() <= 0.1 and np.abs(table[others]).min() > 0  # --init_scale's uniform start
    assert not table[rows["[PAD]"]].any()
    record = meta["init_embeddings"]
    assert record["sha256"] == file_sha256(path) and record["path"] == os.path.abspath(path)
    assert (record["dim"], record["words_found"], record["vocab_words"]) == (16, len(found), len(rows) - 2)
    assert 0 < record["training_words_share"] < 1


def test_a_resumed_run_keeps_its_record_and_does_not_read_the_file_again(toy_task, tmp_path):
    data_dir, vocab = toy_task
    path = write_binary(tmp_path / "vectors.bin", some_vectors(POSITIVE, dim=16))
    out = tmp_path / "run"
    argv = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out),
            "--init_embeddings", str(path), *TINY]
    main_of("student_lstm_small")([*argv, "--max_steps", "2"])
    sha = file_sha256(path)
    path.write_bytes(b"gone")  # read again, it would be refused
    main_of("student_lstm_small")([*argv, "--max_steps", "4", "--init_from_ckpt", str(out / "last")])
    with open(out / "last" / "checkpoint.json", encoding="utf-8") as f:
        meta = json.load(f)
    assert meta["state"]["global_step"] == 4 and meta["init_embeddings"]["sha256"] == sha


@pytest.mark.parametrize("script", ["student_lstm_small", "teacher_student_distill"])
def test_another_emb_dim_is_one_error_saying_both_and_writes_nothing(script, toy_task, tmp_path, capsys):
    data_dir, vocab = toy_task
    path = write_binary(tmp_path / "vectors.bin", some_vectors(POSITIVE, dim=8))
    out = tmp_path / "run"
    # distillation refuses it before the teacher is read (its logits take minutes): there is none here
    teacher = ["--teacher_dir", str(tmp_path / "no_teacher")] if script == "teacher_student_distill" else []
    argv = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out),
            "--init_embeddings", str(path), *teacher, *TINY]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: main_of(script)(argv))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {path}: 8-dimensional vectors, the student's embedding has 16 (--emb_dim 16); give --emb_dim 8")
    assert not out.exists()


SCRIPT = os.path.join(ROOT, "tools", "get_word_vectors.sh")


def fetch(dest, tmp_path, pip):
    """Run the fetch script with `pip` (shell) standing in for `python -m pip download ... -d DIR PIN`."""
    fake = tmp_path / "python"
    fake.write_text(f'#!/usr/bin/env bash\nwhile [ "$1" != "-d" ]; do shift; done\n{pip}\n')
    fake.chmod(0o755)
    return subprocess.run(["bash", SCRIPT, str(dest)], env={**os.environ, "PYTHON": str(fake)},
                          capture_output=True, text=True)


def test_fetch_reuses_what_it_fetched(tmp_path):
    dest = tmp_path / "vectors"
    dest.mkdir()
    (dest / "words.vector").write_bytes(b"1 1\n")
    done = fetch(dest, tmp_path, "exit 1")  # never called
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == str(dest / "words.vector")


@pytest.mark.parametrize("pip, error", [
    ("exit 1", "error: pip could not download synonyms==3.8.0 (offline, or no package index reachable)"),
    ('echo tampered > "$2/synonyms-3.8.0.tar.gz"', "error: synonyms-3.8.0.tar.gz has sha256 "),
])
def test_fetch_fails_with_one_error_and_leaves_nothing(pip, error, tmp_path):
    dest = tmp_path / "vectors"
    done = fetch(dest, tmp_path, pip)
    assert done.returncode == 1 and done.stderr.splitlines()[-1].startswith(error)
    assert not dest.exists()
