"""teacher_student_distill.py and its library (transfer.py, losses.py): the losses, the transfer set, the
teacher-logits cache and its key, and distillation end to end on a tiny teacher. Over 350 lines because the
cache's guarantees (reuse, locking, ranks, damaged entries, full disks) each need a test."""
import errno
import json
import logging
import os
import re
import shutil
import sys
from types import SimpleNamespace

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from visualdl import LogReader

import transfer
from conftest import main_of
from losses import DISTILL_LOSSES, distill_loss, make_compute_loss
from checkpoint import WEIGHTS, read_checkpoint_meta
from teacher import Teacher
from utils import InputError, file_sha256, manifest_key, run_main

TINY_STUDENT = ["--emb_dim", "16", "--hidden_size", "16", "--batch_size", "16", "--device", "cpu",
                "--num_threads", "2", "--log_freq", "1"]


def distill(fine_tuned, output_dir, cache, *extra):
    data_dir, vocab, base, best = fine_tuned
    main_of("teacher_student_distill")(["--data_dir", str(data_dir), "--vocab_path", str(vocab),
                                  "--model_name", str(base), "--teacher_dir", str(best / "model_state.pdparams"),
                                  "--output_dir", str(output_dir), "--logits_cache", str(cache),
                                  *TINY_STUDENT, *extra])
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def test_every_distill_loss_the_flag_offers_is_a_loss_of_its_own():
    """--distill_loss's choices are the registry's keys: a name added to one and not the other cannot train on
    another loss unnoticed (the if-chain before fell through to the teacher's argmax)."""
    from args import build_parser

    (action,) = [a for a in build_parser("distill")._actions if "--distill_loss" in a.option_strings]
    assert sorted(action.choices) == sorted(DISTILL_LOSSES)
    with pytest.raises(KeyError):
        distill_loss(paddle.zeros([1, 2]), paddle.zeros([1, 2]), "ce", 1.0)


def test_losses_match_a_hand_computation():
    s = np.array([[1.0, -1.0, 0.5], [0.2, 0.3, -2.0]], dtype="float32")
    t = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype="float32")
    st, tt = paddle.to_tensor(s), paddle.to_tensor(t)
    assert float(distill_loss(st, tt, "mse", 1.0)) == pytest.approx(np.mean((s - t) ** 2), rel=1e-6)

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    T = 2.0
    p, q = softmax(t / T), softmax(s / T)
    kl = T * T * np.sum(p * (np.log(p) - np.log(q))) / len(s)
    assert float(distill_loss(st, tt, "kl", T)) == pytest.approx(kl, rel=1e-5)
    hard = -np.mean(np.log(softmax(s))[np.arange(2), t.argmax(-1)])
    assert float(distill_loss(st, tt, "hard", 1.0)) == pytest.approx(hard, rel=1e-5)

    class Args:
        alpha, distill_loss, temperature = 0.25, "mse", 1.0

    model = lambda ids, n: st  # noqa: E731 (the student's logits, whatever the input)
    labels = paddle.to_tensor([2, -1])  # the second sentence is augmented: no gold label
    loss, terms = make_compute_loss(Args)(model, (None, None, tt, labels))
    ce = -np.log(softmax(s[:1]))[0, 2]
    assert float(terms["ce"]) == pytest.approx(ce, rel=1e-5)
    assert float(loss) == pytest.approx(0.25 * ce + 0.75 * np.mean((s - t) ** 2), rel=1e-5)
    assert float(F.mse_loss(st, tt)) == pytest.approx(float(terms["mse"]))


def test_a_new_loss_is_one_function_and_one_registry_line(monkeypatch):
    """Its function, and its line in losses.DISTILL_LOSSES (which --distill_loss reads: tests/test_layout.py), are
    all it takes: the flag accepts it and the distillation trains on it, logged under its name."""
    import args as args_module
    import losses

    def cosine(student_logits, teacher_logits, temperature):
        return (1 - F.cosine_similarity(student_logits, teacher_logits, axis=-1)).mean()

    monkeypatch.setitem(losses.DISTILL_LOSSES, "cosine", cosine)
    monkeypatch.setattr(args_module, "DISTILL_LOSSES", tuple(losses.DISTILL_LOSSES))
    args = args_module.parse_args("distill", ["--teacher_dir", "t", "--distill_loss", "cosine", "--alpha", "0"])
    s, t = paddle.to_tensor([[1.0, 0.0], [0.5, 0.5]]), paddle.to_tensor([[0.0, 1.0], [1.0, 1.0]])
    loss, terms = make_compute_loss(args)(lambda ids, n: s, (None, None, t, paddle.to_tensor([0, -1])))
    assert list(terms) == ["cosine"] and float(loss) == pytest.approx(0.5)  # cosines 0 and 1


def cache_entries(cache):
    return sorted(e for e in os.listdir(cache) if not e.startswith(".")) if os.path.isdir(cache) else []


def test_distillation_moves_the_student_to_the_teacher_and_caches_its_logits(fine_tuned, tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "student"
    run_args = ("--n_iter", "2", "--max_epoch", "10", "--optimizer", "adam", "--lr", "1e-2", "--dropout_prob", "0.0")
    summary = distill(fine_tuned, out, cache, *run_args)
    (entry,) = cache_entries(cache)
    with open(cache / entry / "manifest.json", encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["augmentation"]["n_iter"] == 2 and manifest["contents"] == "logits"
    stored = np.load(cache / entry / "outputs.npz", allow_pickle=True)
    assert len(stored["logits"]) == len(stored["sentences"]) > 48  # originals + augmented copies

    logdir = out / "vdl"
    reader = LogReader(file_path=str(logdir / [f for f in os.listdir(logdir) if f.startswith("vdlrecords")][0]))
    mse = [r.value for r in reader.get_data("scalar", "train/mse")]
    assert np.mean(mse[-5:]) < 0.3 * np.mean(mse[:5])
    assert "train/ce" not in reader.get_tags()["scalar"]  # alpha 0: the loss is the MSE, charted once
    teacher_log = logdir / "teacher"
    teacher_acc = LogReader(file_path=str(teacher_log / os.listdir(teacher_log)[0])).get_data("scalar", "dev/acc")
    assert len(teacher_acc) == 2 and summary["best_dev_acc"] >= teacher_acc[0].value - 0.15

    # nothing changed: reused, without loading the teacher, and the same student comes out;
    # the augmentation, the data or the teacher changed: rebuilt
    def no_teacher(*args):
        raise AssertionError("the teacher was loaded although its logits are cached")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("teacher.load_teacher", no_teacher)
        distill(fine_tuned, tmp_path / "reused", cache, *run_args)
    assert cache_entries(cache) == [entry]
    first, reused = (paddle.load(str(d / "best" / "model_state.pdparams")) for d in (out, tmp_path / "reused"))
    assert all(np.array_equal(first[k].numpy(), reused[k].numpy()) for k in first)
    again = ("--n_iter", "2", "--max_epoch", "1", "--overwrite_output_dir")
    distill(fine_tuned, tmp_path / "again", cache, *again, "--p_mask", "0.3")
    assert len(cache_entries(cache)) == 2
    data_dir, _, _, best = fine_tuned
    with open(data_dir / "train.tsv", "a", encoding="utf-8") as f:
        f.write("1\t这个酒店非常满意\n")
    distill(fine_tuned, tmp_path / "again", cache, *again)
    assert len(cache_entries(cache)) == 3
    state = paddle.load(str(best / "model_state.pdparams"))
    key = next(k for k in state if k.startswith("classifier"))
    state[key] = state[key] + 0.01
    paddle.save(state, str(best / "model_state.pdparams"))
    distill(fine_tuned, tmp_path / "again", cache, *again)
    assert len(cache_entries(cache)) == 4

    for damaged in cache.glob("*/outputs.npz"):
        damaged.write_bytes(b"truncated")
    with pytest.raises(InputError, match="damaged cache entry .*delete it"):
        distill(fine_tuned, tmp_path / "damaged", cache, *run_args)
    assert not (tmp_path / "damaged").exists()


def test_a_teacher_checkpoint_without_its_weights_serves_only_their_cached_logits(fine_tuned, tmp_path):
    """Its checkpoint.json records the weights' SHA-256, so the cache key is the same without them: the logits
    computed on one machine train students on another; anything new to label is refused before it is cached."""
    data_dir, vocab, base, best = fine_tuned
    assert read_checkpoint_meta(str(best))["weights_sha256"] == file_sha256(str(best / WEIGHTS))
    weightless = tmp_path / "weightless"
    shutil.copytree(best, weightless, ignore=shutil.ignore_patterns(WEIGHTS))
    cache, flags = tmp_path / "cache", ("--n_iter", "1", "--max_epoch", "1")

    def run(teacher_dir, output_dir, *extra, model_name=base):
        main_of("teacher_student_distill")(["--data_dir", str(data_dir), "--vocab_path", str(vocab),
                                            "--model_name", str(model_name), "--teacher_dir", str(teacher_dir),
                                            "--output_dir", str(output_dir), "--logits_cache", str(cache),
                                            *TINY_STUDENT, *flags, *extra])

    run(best, tmp_path / "with")
    (entry,) = cache_entries(cache)
    run(weightless, tmp_path / "without", model_name=tmp_path / "elsewhere")  # another machine's --model_name
    assert cache_entries(cache) == [entry]
    with_weights, without = (paddle.load(str(tmp_path / d / "best" / WEIGHTS)) for d in ("with", "without"))
    assert all(np.array_equal(with_weights[k].numpy(), without[k].numpy()) for k in with_weights)  # one machine
    with pytest.raises(InputError, match="teacher's weights are not here"):
        run(weightless, tmp_path / "new_set", "--p_mask", "0.3")
    assert cache_entries(cache) == [entry] and not (tmp_path / "new_set").exists()


def test_online_teacher_logits_train_the_same_way(fine_tuned, tmp_path):
    out, shared_logdir = tmp_path / "online", tmp_path / "shared_vdl"
    other_run = shared_logdir / "teacher" / "vdlrecords.other_run.log"  # another run's teacher line
    other_run.parent.mkdir(parents=True)
    other_run.write_bytes(b"")
    flags = ("--n_iter", "1", "--max_epoch", "2", "--alpha", "0.5", "--max_steps", "5")
    summary = distill(fine_tuned, out, tmp_path / "cache", *flags, "--teacher_logits", "online",
                      "--logdir", str(shared_logdir))
    # the same student as from the cached logits: the same batches and steps, the teacher's logits computed per
    # batch instead of once (other batch shapes: equal within float tolerance, not bit for bit)
    cached = distill(fine_tuned, tmp_path / "cached", tmp_path / "cache", *flags)
    assert [s for s, _ in summary["dev_acc"]] == [s for s, _ in cached["dev_acc"]]
    assert np.allclose([a for _, a in summary["dev_acc"]], [a for _, a in cached["dev_acc"]])
    online, offline = (paddle.load(str(d / "last" / "model_state.pdparams")) for d in (out, tmp_path / "cached"))
    for k in online:
        np.testing.assert_allclose(online[k].numpy(), offline[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
    (line,) = set((shared_logdir / "teacher").glob("vdlrecords.*.log")) - {other_run}
    reader = LogReader(file_path=str(line))
    assert [r.id for r in reader.get_data("scalar", "dev/acc")] == [0, 5]  # to the run's real end
    assert other_run.exists()


def test_a_teacher_of_other_labels_or_shape_is_refused(fine_tuned, tmp_path):
    data_dir, vocab, base, best = fine_tuned
    missing = tmp_path / "missing" / "model_state.pdparams"
    with pytest.raises(InputError, match=f"^{missing}: no such file or directory"):  # the name once
        distill((data_dir, vocab, base, tmp_path / "missing"), tmp_path / "s", tmp_path / "cache")
    three = tmp_path / "three"
    three.mkdir()
    for split in ("train", "dev"):
        text = (data_dir / f"{split}.tsv").read_text(encoding="utf-8").replace("\n1\t", "\n2\t", 3)
        (three / f"{split}.tsv").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=r"trained on labels \['0', '1'\], the data has \['0', '1', '2'\]"):
        distill((three, vocab, base, best), tmp_path / "s", tmp_path / "cache")
    assert not (tmp_path / "s").exists()


def test_the_cache_key_follows_every_augmentation_setting_and_the_code(fine_tuned, tmp_path, monkeypatch):
    from args import parse_args
    from data import Augmenter

    data_dir, vocab, base, best = fine_tuned
    args = parse_args("distill", ["--data_dir", str(data_dir), "--teacher_dir", str(best), "--model_name", str(base)])
    teacher = Teacher(args, ["0", "1"], False)

    def key():
        return json.dumps(transfer.cache_manifest(args, teacher, ["t"], [], ["d"]), sort_keys=True)

    plain = key()

    class WithSwaps(Augmenter):  # a new rule, with its own option, as a future change would add
        def __init__(self, sentences, p_mask=0.1, p_pos=0.1, p_ng=0.25, ngram_range=(2, 10), p_swap=0.0):
            super().__init__(sentences, p_mask, p_pos, p_ng, ngram_range)
            self.p_swap = p_swap

    monkeypatch.setattr(transfer, "Augmenter", WithSwaps)
    args.p_swap = 0.0
    with_option = key()
    args.p_swap = 0.2
    assert len({plain, with_option, key()}) == 3  # the option joined the key, and its value counts
    assert json.loads(key())["augmentation"]["p_swap"] == 0.2

    monkeypatch.setattr(transfer, "Augmenter", Augmenter)
    assert key() == plain
    monkeypatch.setattr(transfer, "join_words", lambda words, mask_token="[MASK]": " ".join(words))
    assert key() != plain  # an edit to the code that makes the teacher's text


def test_the_neighbour_rules_key_reads_its_vectors_content_and_reader_not_their_path(fine_tuned, tmp_path,
                                                                                   monkeypatch):
    """An entry serves any machine (the vectors' path differs between them), is never reused for other vectors
    or a changed reader, and a rule that is off keys as before whatever its other flags say."""
    from args import parse_args

    data_dir, vocab, base, best = fine_tuned
    common = ["--data_dir", str(data_dir), "--teacher_dir", str(best), "--model_name", str(base)]
    teacher = Teacher(parse_args("distill", common), ["0", "1"], False)
    here, there = tmp_path / "here.bin", tmp_path / "there" / "v.bin"
    there.parent.mkdir()
    for path in (here, there):
        path.write_bytes(b"the same bytes")

    def key(*flags):
        args = parse_args("distill", [*common, *flags])
        return manifest_key(transfer.cache_manifest(args, teacher, ["t"], [], ["d"]))

    def neighbours(path):
        return key("--p_nn", "0.3", "--nn_vectors", str(path))

    assert neighbours(here) == neighbours(there) != key()
    there.write_bytes(b"other bytes")
    assert neighbours(here) != neighbours(there)
    assert key("--nn_k", "5", "--nn_vectors", str(here)) == key()  # the rule off
    before = neighbours(here)
    monkeypatch.setattr(transfer, "vectors", sys.modules["students"])  # stands for an edited vectors reader
    assert neighbours(here) != before and key("--nn_vectors", str(here)) == key()


def test_the_cache_key_holds_model_name_only_where_the_teacher_reads_it(fine_tuned, tmp_path):
    """A checkpoint directory brings its own config and tokenizer: its entries serve any --model_name (a path
    differs between machines). A bare weights file reads its architecture and tokenizer from --model_name."""
    from args import parse_args

    data_dir, vocab, base, best = fine_tuned
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(best / WEIGHTS, bare / WEIGHTS)

    def key(teacher_dir, model_name):
        args = parse_args("distill", ["--data_dir", str(data_dir), "--teacher_dir", str(teacher_dir),
                                      "--model_name", str(model_name)])
        return manifest_key(transfer.cache_manifest(args, Teacher(args, ["0", "1"], False), ["t"], [], ["d"]))

    assert key(best, base) == key(best, tmp_path / "elsewhere")
    assert key(bare / WEIGHTS, base) != key(bare / WEIGHTS, tmp_path / "elsewhere")
    assert key(bare / WEIGHTS, base) != key(best, base)


def test_runs_needing_the_same_cache_entry_at_once_compute_it_once(tmp_path):
    import threading
    import time
    from types import SimpleNamespace

    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.5)  # the second run asks while the first computes
        return {"logits": np.ones((2, 2), dtype="float32")}

    args = SimpleNamespace(logits_cache=str(tmp_path))
    results = []
    runs = [threading.Thread(target=lambda: results.append(
        transfer.cached_teacher_outputs(args, {"k": 1}, compute))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(calls) == 1 and len(results) == 2
    np.testing.assert_array_equal(results[0]["logits"], results[1]["logits"])
    assert len(cache_entries(tmp_path)) == 1


def test_under_the_launcher_each_rank_labels_every_other_batch(fine_tuned, monkeypatch):
    from args import parse_args
    from data import segment

    data_dir, vocab, base, best = fine_tuned
    args = parse_args("distill", ["--data_dir", str(data_dir), "--teacher_dir", str(best), "--model_name", str(base)])
    teacher = Teacher(args, ["0", "1"], False)
    sentences = segment([line.split("\t")[1] for line in (data_dir / "dev.tsv").read_text().splitlines()[1:]])
    whole = teacher.logits(sentences, 4)
    monkeypatch.setattr("teacher.world", lambda: (1, 2))  # rank 1 of 2
    monkeypatch.setattr(paddle.distributed, "all_reduce", lambda tensor: None)  # its own share only
    share = teacher.logits(sentences, 4)
    order = np.argsort([len(ids) for ids, _ in teacher.encode(sentences)], kind="stable")
    mine = np.concatenate([order[i:i + 4] for i in range(4, len(order), 8)])  # batches 1, 3, 5 of 6
    assert sorted(np.flatnonzero(np.any(share != 0, axis=1))) == sorted(mine)
    np.testing.assert_array_equal(share[mine], whole[mine])


def test_repeated_unlabelled_lines_are_labelled_once(fine_tuned, tmp_path, caplog):
    from args import parse_args

    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("键盘手感一流\n屏幕很清楚\n键盘手感一流\n 屏幕很清楚 \n电池不耐用\n", encoding="utf-8")
    args = parse_args("distill", ["--teacher_dir", "t", "--unlabeled_path", str(unlabeled)])
    assert transfer.unlabeled_sentences(args, pairs=False) == ["键盘手感一流", "屏幕很清楚", "电池不耐用"]
    args.keep_duplicate_unlabeled = True
    assert len(transfer.unlabeled_sentences(args, pairs=False)) == 5

    flags = ("--unlabeled_path", str(unlabeled), "--n_iter", "0", "--max_steps", "1")
    with caplog.at_level(logging.INFO, logger="distill_lstm"):
        once = distill(fine_tuned, tmp_path / "once", tmp_path / "cache", *flags)
    assert once["transfer_set"]["sentences"] == 48 + 3
    assert f"{unlabeled}: 2 repeated lines dropped, 3 kept (--keep_duplicate_unlabeled keeps them)" in caplog.text
    kept = distill(fine_tuned, tmp_path / "kept", tmp_path / "cache", *flags, "--keep_duplicate_unlabeled")
    assert kept["transfer_set"]["sentences"] == 48 + 5


def test_unlabelled_lines_without_repeats_keep_their_cache_key(tmp_path):
    """The key the code computed before repeated lines were dropped, for a file without any: the cached logits
    of the published runs stay valid. (It moves with the code that makes the teacher's inputs and with jieba's
    and PaddleNLP's releases, by design: such a change gives new logits. It moved for pairs, issue 42: segment,
    the augmentation and the teacher's encoding read a pair's sides; the manifest's other fields did not. It moved
    for the neighbour rule, issue 43: the augmentation's code and settings; the rules' draws did not, test_augment. A checkpoint directory's key lost --model_name, issue 38; not this one's.)"""
    from args import parse_args

    weights = tmp_path / "model_state.pdparams"
    weights.write_bytes(b"weights")
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("键盘手感一流\n屏幕很清楚\n\n电池不耐用\n", encoding="utf-8")
    args = parse_args("distill", ["--teacher_dir", str(weights), "--unlabeled_path", str(unlabeled)])
    teacher = SimpleNamespace(weights_sha256=file_sha256(str(weights)), model_type="ernie-gram", max_seq_length=128,
                              self_contained=False)  # a bare weights file: it reads --model_name, still in the key
    manifest = transfer.cache_manifest(args, teacher, ["这个酒店很好", "房间很差"],
                                                      transfer.unlabeled_sentences(args, pairs=False), ["服务不错"])
    assert manifest_key({**manifest, "contents": "logits"}) == "940e9dd473d34e57d57c"


def test_a_refused_distillation_leaves_no_cache_directory_nor_lock(fine_tuned, tmp_path, monkeypatch):
    cache = tmp_path / "new" / "cache"
    for flag, missing in [("--unlabeled_path", "missing.txt"), ("--teacher_dir", "missing"),
                          ("--vocab_path", "missing_vocab.txt")]:  # refused before the teacher runs
        with pytest.raises(InputError, match="missing"):
            distill(fine_tuned, tmp_path / "student", cache, flag, str(tmp_path / missing))
        assert not (tmp_path / "new").exists() and not (tmp_path / "student").exists()

    def damaged(self, sentences, batch_size):
        raise InputError("teacher: the teacher's logits are not finite numbers (damaged weights?)")

    monkeypatch.setattr(Teacher, "logits", damaged)  # refused while the lock is held
    with pytest.raises(InputError, match="not finite"):
        distill(fine_tuned, tmp_path / "student", cache)
    assert not (tmp_path / "new").exists()
    cache.mkdir(parents=True)  # a directory the user had stays, with what it held
    (cache / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="not finite"):
        distill(fine_tuned, tmp_path / "student", cache)
    assert os.listdir(cache) == ["notes.txt"]


def test_a_full_disk_while_caching_the_logits_is_one_error_and_leaves_nothing(fine_tuned, tmp_path, monkeypatch,
                                                                             capsys):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    cache = tmp_path / "cache"
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: distill(fine_tuned, tmp_path / "student", cache, "--n_iter", "1"))
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.rstrip("\n").split("\n")[-1]  # after the progress bars
    assert re.fullmatch(rf"error: {re.escape(str(cache))}: no space left on device writing the teacher's logits "
                        r"\(needs about [\d.]+ kB, [\d.]+ [kMGT]B free\)", last_line), last_line
    assert not cache.exists() and not (tmp_path / "student").exists()


def test_the_teacher_reads_text_through_its_own_vocabulary(fine_tuned, tmp_path):
    """A --model_name of the same shapes but another vocabulary (the characters' ids reversed) is not the
    fine-tuned teacher's: its checkpoint directory gives the tokenizer. A bare weights file, as the original's
    --teacher_dir, still takes architecture and tokenizer from --model_name."""
    import shutil

    from args import parse_args
    from data import segment

    data_dir, _, base, best = fine_tuned
    reversed_vocab = tmp_path / "reversed_vocab"
    shutil.copytree(base, reversed_vocab)
    lines = (base / "vocab.txt").read_text(encoding="utf-8").splitlines()  # 5 special tokens, then the characters
    (reversed_vocab / "vocab.txt").write_text("\n".join(lines[:5] + lines[:4:-1]) + "\n", encoding="utf-8")
    bare = tmp_path / "bare" / "model_state.pdparams"
    bare.parent.mkdir()
    shutil.copy(best / "model_state.pdparams", bare)
    sentences = segment([line.split("\t")[1] for line in (data_dir / "dev.tsv").read_text().splitlines()[1:]])

    def logits(teacher_dir, model_name):
        args = parse_args("distill", ["--data_dir", str(data_dir), "--teacher_dir", str(teacher_dir),
                                      "--model_name", str(model_name)])
        return Teacher(args, ["0", "1"], False).logits(sentences, 8)

    own = logits(best, base)
    np.testing.assert_array_equal(logits(best, reversed_vocab), own)
    np.testing.assert_array_equal(logits(best / "model_state.pdparams", reversed_vocab), own)
    np.testing.assert_array_equal(logits(bare, base), own)
    assert not np.allclose(logits(bare, reversed_vocab), own)  # what the wrong vocabulary gives


def test_a_resumed_distillation_checks_its_checkpoint_before_the_teacher_runs(toy_task, pair_task, tmp_path, capsys):
    """A checkpoint it cannot resume from is refused in a moment, not after the teacher's logits (minutes)."""
    data_dir, vocab = toy_task
    pairs_dir, pairs_vocab = pair_task
    for task_dir, task_vocab, out in ((data_dir, vocab, "run_alone"), (pairs_dir, pairs_vocab, "run_pairs")):
        main_of("student_lstm_small")(["--data_dir", str(task_dir), "--vocab_path", str(task_vocab), "--output_dir",
                                       str(tmp_path / out), "--max_steps", "1", *TINY_STUDENT])
    for checkpoint, message in [(tmp_path / "run_alone" / "best", "holds weights only (best/ does)"),
                                (tmp_path / "run_pairs" / "last", "pairs")]:
        argv = ["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--teacher_dir", str(tmp_path / "no_teacher"),
                "--output_dir", str(tmp_path / "distilled"), "--init_from_ckpt", str(checkpoint), *TINY_STUDENT]
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            run_main(lambda: main_of("teacher_student_distill")(argv))
        error = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and error.startswith(f"error: {checkpoint}") and message in error
        assert "no_teacher" not in error and not (tmp_path / "distilled").exists()
