"""Pretrained word vectors (issue 43): the word2vec reader, --init_embeddings, --add_vector_words, the
nearest-neighbour augmentation rule (--p_nn) and tools/get_word_vectors.sh, on tiny vector files the tests write."""
import collections
import json
import os
import subprocess

import numpy as np
import pytest

import trainer
from args import parse_args
from conftest import FILLER, NEGATIVE, POSITIVE, ROOT, main_of
from data import Augmenter, vocab_from_words
from students import student_inputs
from utils import InputError, file_sha256, run_main
from vectors import nearest_neighbours, read_vectors, vector_words

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
    table, record = seen[0], meta["init_embeddings"]
    # the vectors' directions, at the spread of the random rows (uniform in ±0.1, --init_scale): std 0.1 / sqrt(3)
    assert record["scale"] == pytest.approx(0.1 / np.sqrt(3) / np.stack([vectors[w] for w in found]).std())
    assert len(found) >= 10 and all(np.allclose(table[rows[word]], vectors[word] * record["scale"]) for word in found)
    assert table[[rows[word] for word in found]].std() == pytest.approx(0.1 / np.sqrt(3), rel=1e-5)
    others = [i for word, i in rows.items() if word not in vectors and word != "[PAD]"]
    assert np.abs(table[others]).max() <= 0.1 and np.abs(table[others]).min() > 0  # --init_scale's uniform start
    assert not table[rows["[PAD]"]].any()
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


def test_add_vector_words_gives_the_files_unseen_words_rows_that_keep_their_vectors(toy_task, tmp_path):
    import paddle

    data_dir, vocab = toy_task
    vectors = some_vectors(FILLER + ["惊艳", "超赞"], dim=16)
    path = str(write_binary(tmp_path / "vectors.bin", vectors))
    argv = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--init_embeddings", path, "--max_steps", "4",
            "--optimizer", "adam", "--lr", "1e-2", *TINY]
    main_of("student_lstm_small")([*argv, "--output_dir", str(tmp_path / "plain")])
    main_of("student_lstm_small")([*argv, "--output_dir", str(tmp_path / "added"), "--add_vector_words"])
    metas = {}
    for run in ("plain", "added"):
        with open(tmp_path / run / "last" / "checkpoint.json", encoding="utf-8") as f:
            metas[run] = json.load(f)
    plain, added = (meta["vocab"] for meta in (metas["plain"], metas["added"]))
    assert added[:len(plain)] == plain and added[len(plain):] == ["惊艳", "超赞"]  # the file's order
    assert metas["added"]["init_embeddings"]["words_found_untrained"] == 2
    assert metas["plain"]["init_embeddings"]["words_found_untrained"] == 0
    table = paddle.load(str(tmp_path / "added" / "last" / "model_state.pdparams"))["embedder.weight"].numpy()
    rows = {word: i for i, word in enumerate(added)}
    scale = metas["added"]["init_embeddings"]["scale"]
    for word in ("惊艳", "超赞"):  # no gradient reached them: their scaled vectors still, and new text reads them
        assert np.allclose(table[rows[word]], vectors[word] * scale)
        assert student_inputs([word], vocab_from_words(added), 8)[0] == [rows[word]]
    assert student_inputs(["惊艳"], vocab_from_words(plain), 8)[0] == [plain.index("[UNK]")]
    trained = [w for w in FILLER if w in rows]
    assert trained and not any(np.allclose(table[rows[w]], vectors[w] * scale) for w in trained)


def test_nearest_neighbours_are_the_k_most_similar_words_listed_in_the_files_order(tmp_path):
    rng = np.random.default_rng(3)
    words = [f"词{i}" for i in range(300)]
    # vectors of very different lengths: the neighbours are by angle (cosine), not by distance
    vectors = {w: (rng.normal(size=8) * rng.uniform(0.1, 10)).astype(np.float32) for w in words}
    path = str(write_binary(tmp_path / "v.bin", vectors))
    assert vector_words(path) == words
    found = nearest_neighbours(path, ["词5", "词17", "词5", "不在文件里"], k=4)
    assert found.keys() == {"词5", "词17"}
    unit = {w: v / np.linalg.norm(v) for w, v in vectors.items()}
    for word in found:
        by_similarity = sorted((w for w in words if w != word), key=lambda w: -float(unit[word] @ unit[w]))
        assert set(found[word]) == set(by_similarity[:4])
        assert list(found[word]) == sorted(found[word], key=words.index)
    assert len(nearest_neighbours(path, ["词5"], k=1000)["词5"]) == 299  # every other word, at most


def test_the_neighbour_rule_replaces_words_at_p_nn_by_a_neighbour_drawn_uniformly(tmp_path):
    words = ["酒店", "宾馆", "旅馆", "房间", "客房", "干净", "整洁", "卫生"]
    path = str(write_text(tmp_path / "v.txt", some_vectors(words, dim=6, seed=1)))
    sentence = ["酒店", "房间", "很", "干净"]  # 很 has no vector
    augment = Augmenter([sentence] * 10, p_mask=0.1, p_pos=0.0, p_ng=0.0, p_nn=0.3, nn_k=3, nn_vectors=path)
    neighbours = nearest_neighbours(path, words, 3)
    rng = np.random.default_rng(0)
    masked = replaced = 0
    drawn = collections.Counter()
    for _ in range(4000):
        new = augment(sentence, rng)
        assert new[2] in ("很", "[MASK]")
        for old, word in zip(sentence, new):
            masked += word == "[MASK]"
            if word not in (old, "[MASK]"):
                assert word in neighbours[old]
                replaced += 1
        drawn.update(new[:1])
    assert masked / 16000 == pytest.approx(0.1, abs=0.01)
    assert replaced / 12000 == pytest.approx(0.3, abs=0.015)  # of the three words with vectors
    shares = np.array([drawn[w] for w in neighbours["酒店"]]) / sum(drawn[w] for w in neighbours["酒店"])
    assert shares == pytest.approx([1 / 3] * 3, abs=0.04)
    pair = (sentence, sentence[::-1])
    sides = [augment(pair, rng) for _ in range(200)]  # a pair: each side on its own
    assert all(len(new) == 2 and all(w in (o, "[MASK]", *neighbours.get(o, ())) for side, o_side in zip(new, pair)
                                     for w, o in zip(side, o_side)) for new in sides)
    assert any(new[0][0] != "酒店" and new[1][-1] == "酒店" for new in sides)


@pytest.mark.parametrize("argv, message", [
    (["--p_nn", "0.2"], "--p_nn 0.2: give the word vectors its neighbours come from (--nn_vectors FILE)"),
    (["--p_mask", "0.5", "--p_pos", "0.3", "--p_nn", "0.3", "--nn_vectors", "v.bin"],
     "--p_mask 0.5 + --p_pos 0.3 + --p_nn 0.3: a word's chances add up to more than 1"),
    (["--add_vector_words"], "--add_vector_words: give the vectors whose words it adds (--init_embeddings FILE)"),
])
def test_a_neighbour_or_vector_flag_without_what_it_needs_is_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args("distill", ["--teacher_dir", "t", *argv])
    assert exit_info.value.code == 2 and capsys.readouterr().err.strip().endswith(f"error: {message}")


def test_distillation_draws_neighbours_into_its_transfer_set_and_its_cache_key_reads_the_vectors(
        fine_tuned, tmp_path, capsys):
    data_dir, vocab, base, best = fine_tuned
    new_words = ["惊艳", "超赞", "失落", "糟透"]
    path = tmp_path / "vectors.bin"
    write_binary(path, some_vectors(POSITIVE + NEGATIVE + FILLER + new_words, dim=16))
    cache = tmp_path / "cache"

    def distill(output_dir, *extra):
        main_of("teacher_student_distill")([
            "--data_dir", str(data_dir), "--vocab_path", str(vocab), "--model_name", str(base),
            "--teacher_dir", str(best / "model_state.pdparams"), "--output_dir", str(output_dir),
            "--logits_cache", str(cache), "--n_iter", "3", "--max_steps", "2", *TINY, *extra])

    flags = ["--p_nn", "0.5", "--nn_k", "5", "--nn_vectors", str(path)]
    distill(tmp_path / "s1", *flags)
    def entries():
        return [name for name in os.listdir(cache) if not name.startswith(".")]  # not the locks

    (entry,) = entries()
    with open(cache / entry / "manifest.json", encoding="utf-8") as f:
        augmentation = json.load(f)["augmentation"]
    assert augmentation["p_nn"] == 0.5 and augmentation["nn_k"] == 5
    assert augmentation["nn_vectors_sha256"] == file_sha256(path)
    stored = np.load(cache / entry / "outputs.npz", allow_pickle=True)["sentences"]
    drawn = {w for s in stored for w in s.split(" ")} & set(new_words)
    assert drawn  # words no training sentence has, drawn in as neighbours: the student has rows for them
    with open(tmp_path / "s1" / "last" / "checkpoint.json", encoding="utf-8") as f:
        assert drawn <= set(json.load(f)["vocab"])

    write_binary(path, some_vectors(POSITIVE + NEGATIVE + FILLER + new_words, dim=16, seed=1))  # same path
    distill(tmp_path / "s2", *flags)
    assert len(entries()) == 2  # other vectors, other neighbours: never the stale entry
    missing = str(tmp_path / "missing.bin")
    capsys.readouterr()
    with pytest.raises(SystemExit):  # refused before the teacher is read: there is none
        run_main(lambda: distill(tmp_path / "s3", "--p_nn", "0.5", "--nn_vectors", missing,
                                 "--teacher_dir", str(tmp_path / "no_teacher")))
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such word-vector file"
    assert not (tmp_path / "s3").exists() and len(entries()) == 2


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
