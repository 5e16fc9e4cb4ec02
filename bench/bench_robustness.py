"""Robustness: in-domain (ChnSentiCorp dev) and out-of-domain accuracy of the teacher and of the
Bi-LSTM alone and distilled, over training seeds, and which part of distillation buys it.

    python bench/bench_robustness.py teacher                          # the fine-tuned teacher, exported
    python bench/bench_robustness.py logits CONFIG                    # its teacher logits, cached (launcher too)
    python bench/bench_robustness.py run CONFIG [--student bilstm] [--seeds 1 7 2021]   # a run per seed
    python bench/bench_robustness.py unseen CONFIG [--student bilstm]  # its checkpoints, unseen words as characters
    python bench/bench_robustness.py lengths CONFIG [--student bilstm] # its checkpoints' accuracy by sentence length
    python bench/bench_robustness.py oov                              # unseen words, script and length, per set
    python bench/bench_robustness.py parameters                       # fill older results' parameter counts
    python bench/bench_robustness.py table                            # the tables, from the results

The out-of-domain set is ../shared/data/ood/shopping5.tsv (2,000 reviews of products ChnSentiCorp
never covers). Runs score it with --eval_sets: the best dev checkpoint, which it never chooses.
The teacher (bench_teacher.py train's) is exported and scored by predict.py --eval, as a user would.
CONFIG is a key of CONFIGS: the recipes of the README and the ablation of distillation, for any
--student of students.py, and TinyBERT's stages with and without augmentation (tinybert_*). Each
run writes bench/results/robustness/<student>-<config>/seed<N>.json (<config>/ for TinyBERT) when it
ends; finished seeds are skipped and an interrupted one continues from its last/ checkpoint (kept in $DISTILL_LSTM_CACHE/robustness),
so a series can span sessions. Distillation runs of every seed share one transfer set (--data_seed)
and its cached teacher logits.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from bench_teacher import (TEACHER_OUTPUT, cpu_model, fetch_offline_teacher, portable, write_results,  # first: sets sys.path
                           write_unseen_dev)
from args import CACHE_DIR, STUDENTS, recipe  # noqa: E402, I001

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
OOD = ("shopping5", os.path.join(SHARED, "ood", "shopping5.tsv"))
UNLABELED = os.path.join(SHARED, "unlabeled", "reviews_unlabeled.txt")
RESULTS = os.path.join(ROOT, "bench", "results", "robustness")
SEEDS = [1, 7, 2021]

# name -> (job, flags after the job's recipe, what it measures). The distillation rows add one
# lever at a time; "distilled" is the README's CPU recipe (reproduce.sh: --n_iter 2, unlabelled reviews).
# Each row trains about as many steps as the recipe (6 epochs of 869 batches: 5,214), so a row differs
# from it in its data, not in its number of updates (at 6 epochs the training sentences alone give
# 900 steps, and dev accuracy was still rising at the last).
TRANSFER = ["--n_iter", "2", "--unlabeled_path", UNLABELED]  # the README's CPU recipe's transfer set (reproduce.sh)
# The ablation and the loss rows were measured before the recipe took --alpha 0.5 (alpha0.5 below won on
# dev): they keep the teacher's targets alone, and "distilled" names the recipe of then.
ALPHA0 = ["--alpha", "0"]
RECIPE = [*ALPHA0, *TRANSFER]
PADDLENLP_BOW = ["--pooling", "sum", "--hidden_size", "128", "--fc_hidden_size", "96"]  # --student bow
CONFIGS = {
    "alone": ("student", [], "trained alone on the gold labels (recipes/student.txt)"),
    "soft_train": ("distill", [*ALPHA0, "--n_iter", "0", "--max_epoch", "35"],
                   "teacher's logits (MSE) on the training sentences alone (35 epochs: 5,250 steps)"),
    "soft_aug": ("distill", [*ALPHA0, "--n_iter", "2", "--max_epoch", "12"],
                 "+ 2 augmented copies of each (mask, same-POS, n-gram; 12 epochs: 5,400 steps)"),
    "distilled": ("distill", RECIPE, "+ 26,910 unlabelled reviews (the README's recipe until alpha0.5)"),
    "augment_unlabeled": ("distill", [*RECIPE, "--augment_unlabeled", "--max_epoch", "3"],
                          "+ augmented copies of the unlabelled reviews too (3 epochs: 5,136 steps)"),
    "kl_t2": ("distill", [*RECIPE, "--distill_loss", "kl", "--temperature", "2"],
              "distilled with KL at temperature 2 instead of MSE"),
    "word_dropout": ("distill", [*RECIPE, "--word_dropout", "0.1"],
                     "distilled with 10% of the words replaced by [UNK] in training (unseen words read as [UNK])"),
    "min_freq2": ("distill", [*RECIPE, "--min_freq", "2"],
                  "distilled with rows only for words seen twice or more in the transfer set (the rarer "
                  "share [UNK] with unseen words, so its row trains)"),
    "hard": ("distill", [*RECIPE, "--distill_loss", "hard"],
             "distilled on the teacher's hard labels (ERNIE's data distillation)"),
    "alpha0.5": ("distill", [*TRANSFER, "--alpha", "0.5"],
                 "+ half the loss cross-entropy on the gold labels of the training sentences (the README's recipe)"),
    "hard_alpha0.5": ("distill", [*RECIPE, "--distill_loss", "hard", "--alpha", "0.5"],
                      "the teacher's hard labels, and the gold ones on the training sentences, half the loss each "
                      "(ERNIE's data distillation interleaves gold and teacher-labelled batches)"),
    # The fastest Bi-LSTM that serves 100x faster than the ernie-gram-zh-shaped teacher at batch 1 on one thread
    # (hidden 128 per direction: 112x in bench/results/serve_headline.json; hidden 300: 41x):
    "distilled_h128": ("distill", [*RECIPE, "--hidden_size", "128"],
                       "distilled with hidden size 128 (100x the ernie-gram-zh-shaped teacher's speed)"),
    "alpha0.5_h128": ("distill", [*TRANSFER, "--alpha", "0.5", "--hidden_size", "128"],
                      "the recipe with hidden size 128 (100x the ernie-gram-zh-shaped teacher's speed)"),
    # On an idle Xeon (bench/results/serve_candidates.json) the Bi-LSTM at 128 served 96x, the Bi-GRU at 100 113x
    "alpha0.5_h100": ("distill", [*TRANSFER, "--alpha", "0.5", "--hidden_size", "100"],
                      "the recipe with hidden size 100 (the Bi-GRU: 113x the ernie-gram-zh-shaped teacher's speed)"),
    # BOW as PaddleNLP's BoW model (tanh of the words' sum, tanh layers of 128 and 96): more head to fit
    # the teacher with than the mean and one layer, whose distillation did not beat BOW alone
    "alone_paddlenlp": ("student", PADDLENLP_BOW, "BOW alone, shaped as PaddleNLP's BoW model"),
    "alpha0.5_paddlenlp": ("distill", [*TRANSFER, "--alpha", "0.5", *PADDLENLP_BOW],
                           "the recipe, BOW shaped as PaddleNLP's BoW model"),
    "hard_paddlenlp": ("distill", [*RECIPE, "--distill_loss", "hard", *PADDLENLP_BOW],
                       "the teacher's hard labels, BOW shaped as PaddleNLP's BoW model"),
    # Tuning a student's recipe on dev (the Bi-LSTM's recipes are every student's starting point):
    "alone_lr1e-3": ("student", ["--lr", "1e-3"], "alone, Adam at 1e-3 (the recipe: 3e-4); tuned on dev"),
    "alone_lr3e-3": ("student", ["--lr", "3e-3"], "alone, Adam at 3e-3 (the recipe: 3e-4); tuned on dev"),
    "alone_distill_opt": ("student", ["--lr", "1e-3", "--dropout_prob", "0.1"],
                          "alone with the distillation recipe's Adam 1e-3 and dropout 0.1 (the recipe: 3e-4, 0.5): "
                          "whether those settings, not the teacher, cost the distilled students the long reviews"),
    "distilled_lr3e-4": ("distill", [*RECIPE, "--lr", "3e-4"],
                         "distilled at Adam 3e-4 (the recipe: 1e-3); tuned on dev"),
    "distilled_lr3e-4_12ep": ("distill", [*RECIPE, "--lr", "3e-4", "--max_epoch", "12"],
                              "distilled at alone's Adam 3e-4 (the recipe: 1e-3), for twice its epochs "
                              "(at 3e-4 it still climbed when 6 ended)"),
    "distilled_drop0.5": ("distill", [*RECIPE, "--dropout_prob", "0.5"],
                          "distilled with dropout 0.5 (alone's; the recipe: 0.1); tuned on dev"),
    # The recipes' dev accuracy still rises at their last steps, and swings 1 point between evaluations
    "alone_linear": ("student", ["--lr_schedule", "linear"],
                     "alone, the learning rate decayed linearly to 0 (the recipe: constant); tuned on dev"),
    "distilled_linear": ("distill", [*RECIPE, "--lr_schedule", "linear"],
                         "distilled, the learning rate decayed linearly to 0 (the recipe: constant); tuned on dev"),
}
# TinyBERT (tinybert_distill.py, its defaults: 2 layers of width 256 from random weights, KL at
# temperature 1, 3 epochs of stage 2): stage 2 alone or after one epoch of stage 1, on the training
# sentences or with their 2 augmented copies (the transfer set, and cached logits, of soft_aug).
# Stage 1 runs the teacher on every batch: one epoch of it costs at least a teacher pass.
CONFIGS.update({
    "tinybert_s2": ("tinybert", ["--n_iter", "0", "--stage1_epochs", "0"],
                    "TinyBERT (2 layers, width 256): stage 2 alone, on the training sentences"),
    "tinybert": ("tinybert", ["--n_iter", "0", "--stage1_epochs", "1"], "stage 1 (one epoch), then stage 2"),
    "tinybert_s2_aug": ("tinybert", ["--n_iter", "2", "--stage1_epochs", "0"],
                        "stage 2 alone, + 2 augmented copies of each sentence"),
    "tinybert_aug": ("tinybert", ["--n_iter", "2", "--stage1_epochs", "1"],
                     "stages 1 and 2, + 2 augmented copies of each sentence"),
    # Stage 2's best step was at or near its last in every run of tinybert_s2: does it want more epochs?
    "tinybert_s2_6ep": ("tinybert", ["--n_iter", "0", "--stage1_epochs", "0", "--max_epoch", "6"],
                        "stage 2 alone for 6 epochs (the default: 3), on the training sentences"),
    # Stage 2 trains at the fine-tuning recipe's AdamW 1e-4, made for a pretrained student: from random weights?
    "tinybert_s2_lr5e-4": ("tinybert", ["--n_iter", "0", "--stage1_epochs", "0", "--lr", "5e-4"],
                           "stage 2 alone at AdamW 5e-4 (the default: 1e-4), on the training sentences"),
    "tinybert_s2_lr1e-3": ("tinybert", ["--n_iter", "0", "--stage1_epochs", "0", "--lr", "1e-3"],
                           "stage 2 alone at AdamW 1e-3 (the default: 1e-4), on the training sentences"),
    # 5e-4 was the best of the three on seed 1 (0.9000; 1e-3 0.8933, 1e-4 0.8850): with the augmented transfer set?
    "tinybert_s2_aug_lr5e-4": ("tinybert", ["--n_iter", "2", "--stage1_epochs", "0", "--lr", "5e-4"],
                               "stage 2 alone at AdamW 5e-4, + 2 augmented copies of each sentence"),
    # ... 0.9250 on seed 1 (1e-4: 0.9067): and the two-stage student at that rate (both stages)?
    "tinybert_aug_lr5e-4": ("tinybert", ["--n_iter", "2", "--stage1_epochs", "1", "--lr", "5e-4"],
                            "stages 1 and 2 at AdamW 5e-4, + 2 augmented copies of each sentence"),
    # ... its stage 1 (one epoch) still lowered the attention-score loss at its end: the default 3 epochs?
    "tinybert_aug_lr5e-4_s1x3": ("tinybert", ["--n_iter", "2", "--stage1_epochs", "3", "--lr", "5e-4"],
                                 "3 epochs of stage 1 (as the default), then stage 2, at AdamW 5e-4, augmented"),
    # The width the teacher's layers fit (m3e-small: 512): what --init_from_teacher buys, for ~2x less speed
    "tinybert_init": ("tinybert", ["--n_iter", "0", "--stage1_epochs", "1", "--hidden_size", "512", "--init_from_teacher"],
                      "stages 1 and 2, 2 layers of width 512 started from the teacher's layers 2 and 4"),
})
SCRIPTS = {"student": "student_lstm_small.py", "distill": "teacher_student_distill.py",
           "tinybert": "tinybert_distill.py"}
WORD_JOBS = ("student", "distill")  # the jobs of students.py's students (--student, a recipe file)


def run_name(student, config):
    """Where a configuration's runs go: <student>-<config>, or <config> for TinyBERT (no --student)."""
    return f"{student}-{config}" if CONFIGS[config][0] in WORD_JOBS else config


def run_dir(name, seed):
    """Where a run of <student>-<config> (or a TinyBERT config) and seed trains: kept in the cache."""
    return os.path.join(CACHE_DIR, "robustness", name, f"seed{seed}")


def teacher_dir(args):
    if not os.path.isfile(os.path.join(args.teacher_run, "summary.json")):  # best/ alone: still training
        sys.exit(f"{args.teacher_run}: no finished teacher; run `python bench/bench_teacher.py train` first")
    return os.path.join(args.teacher_run, "best")


def command(args, config, seed, output_dir):
    job, flags, _ = CONFIGS[config]
    cmd = [sys.executable, SCRIPTS[job], "--task_name", "chnsenticorp"]
    if job in WORD_JOBS:
        cmd += [*recipe(job), "--student", args.student]
    cmd += [*flags, "--data_dir", os.path.join(SHARED, "chnsenticorp"), "--eval_sets", "=".join(OOD),
            "--seed", str(seed), "--device", "cpu", "--num_threads", str(args.num_threads), "--output_dir", output_dir]
    if job != "student":
        cmd += ["--model_name", fetch_offline_teacher(),
                "--teacher_dir", os.path.join(teacher_dir(args), "model_state.pdparams")]
    for last in (os.path.join(output_dir, "last"), os.path.join(output_dir, "stage1", "last")):  # TinyBERT's stages
        if os.path.isdir(last):
            return cmd + ["--init_from_ckpt", last]  # an interrupted run continues
    return cmd + ["--overwrite_output_dir"]  # the bench's own scratch directory


def measured_unseen(path):
    """Whether a run's results file exists with its dev-unseen accuracy: runs from before it was measured
    train again (the same seed and recipe) and their file is rewritten from the new run."""
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        return "dev_unseen_acc" in json.load(f)


def stage1_losses(output_dir):
    """{"stage1_losses": {term: [first, middle, last logged value]}} of a TinyBERT run's stage 1 (its VisualDL
    log: how near the teacher's layers it came), or {} for a run without one. The logs stay in the cache;
    these numbers go to the committed results."""
    from visualdl import LogReader

    logs = sorted(glob.glob(os.path.join(output_dir, "vdl", "stage1", "vdlrecords.*.log")))
    if not logs:
        return {}
    reader = LogReader(file_path=logs[-1])
    terms = {}
    for tag in sorted(t for t in reader.get_tags().get("scalar", []) if t.startswith("train/") and t != "train/lr"):
        values = [r.value for r in reader.get_data("scalar", tag)]
        terms[tag.split("/", 1)[1]] = [values[0], values[len(values) // 2], values[-1]]
    return {"stage1_losses": terms}


def run(args):
    for seed in args.seeds:
        name = run_name(args.student, args.config)
        path = os.path.join(RESULTS, name, f"seed{seed}.json")
        if measured_unseen(path):
            print(f"{path}: done, skipped")
            continue
        output_dir = run_dir(name, seed)
        cmd = command(args, args.config, seed, output_dir)
        print("running:", " ".join(cmd[1:]), flush=True)
        if not os.path.isfile(os.path.join(output_dir, "summary.json")):
            subprocess.run(cmd, cwd=ROOT, check=True)
        with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        write_results(path, {
            "student": args.student, "config": args.config, "seed": seed, "dev_acc": summary["best_dev_acc"],
            "dev_unseen_acc": summary["dev_unseen_acc"], "ood_acc": summary["eval_sets"][OOD[0]]["acc"],
            "best_step": summary["best_step"], "teacher_dev_acc": summary.get("teacher_dev_acc"),
            "teacher_dev_unseen_acc": summary.get("teacher_dev_unseen_acc"), "transfer_set": summary.get("transfer_set"),
            "parameters": summary.get("parameters"),
            "dev_curve": summary["dev_acc"], **stage1_losses(output_dir),
            # over every session a resumed run spanned (this process may have run only its last part)
            "epoch_seconds": summary["epoch_seconds"], "train_minutes": sum(summary["epoch_seconds"]) / 60,
            "threads": args.num_threads, "cpu": cpu_model(),
            "teacher": "m3e-small (offline), fine-tuned by bench_teacher.py train",
            "command": " ".join(cmd[1:])})


def transfer(args, config):
    """(splits, transfer_targets()) of a distillation configuration, read with its runs' own flags:
    the cache entry they use, its teacher logits computed there if it has none."""
    from args import parse_args
    from data import load_splits
    from teacher_student_distill import transfer_targets
    from utils import init_runtime

    flags = command(args, config, SEEDS[0], run_dir(run_name(args.student, config), SEEDS[0]))[2:]
    distill_args = parse_args("distill", flags)
    init_runtime(distill_args)
    splits, label_list = load_splits(distill_args)
    return splits, transfer_targets(distill_args, splits, label_list)


def logits(args):
    """Fill the teacher-logits cache of a distillation configuration's transfer set, training
    nothing: its seeds then train side by side on one thread each (the teacher's pass gains from
    both cores, a Bi-LSTM seed little), instead of seed 1 training alone on two. Runs under
    paddle.distributed.launch too (each process labels its share)."""
    transfer(args, args.config)


def predict_accuracy(model_dir, path, num_threads):
    """predict.py --eval's accuracy on a labelled tsv."""
    done = subprocess.run([sys.executable, "predict.py", "--model_dir", model_dir, "--input", path,
                           "--text_column", "text_a", "--eval", "--device", "cpu", "--num_threads",
                           str(num_threads)], cwd=ROOT, check=True, capture_output=True, text=True)
    return float(re.search(r"accuracy ([0-9.]+) on (\d+) labelled lines", done.stderr)[1])


def teacher(args):
    """The fine-tuned teacher's dev, dev-unseen and out-of-domain accuracy, through export_model.py and predict.py."""
    best = teacher_dir(args)
    with open(os.path.join(best, "checkpoint.json"), encoding="utf-8") as f:
        seed = json.load(f)["args"]["seed"]
    with tempfile.TemporaryDirectory() as tmp:
        export = os.path.join(tmp, "teacher")
        subprocess.run([sys.executable, "export_model.py", "--checkpoint", best, "--output_dir", export],
                       cwd=ROOT, check=True)
        unseen_dev = os.path.join(tmp, "dev_unseen.tsv")
        unseen_rows = write_unseen_dev(os.path.join(SHARED, "chnsenticorp"), unseen_dev)
        start = time.time()
        dev = predict_accuracy(export, os.path.join(SHARED, "chnsenticorp", "dev.tsv"), args.num_threads)
        dev_unseen = predict_accuracy(export, unseen_dev, args.num_threads)
        ood = predict_accuracy(export, OOD[1], args.num_threads)
    write_results(os.path.join(RESULTS, "teacher", f"seed{seed}.json"), {
        "config": "teacher", "seed": seed, "dev_acc": dev, "dev_unseen_acc": dev_unseen, "dev_unseen_examples": unseen_rows,
        "ood_acc": ood, "predict_minutes": (time.time() - start) / 60,
        "teacher": "m3e-small (offline), fine-tuned by bench_teacher.py train", "run": best})


def require_finished(name, seeds):
    """Stop, before any work, unless every seed's run of `name` has finished (summary.json beside best/)."""
    missing = [seed for seed in seeds if not os.path.isfile(os.path.join(run_dir(name, seed), "summary.json"))]
    if missing:
        sys.exit(f"{name}: no finished run for seed(s) {', '.join(map(str, missing))} in "
                 f"{os.path.dirname(run_dir(name, missing[0]))}; `bench_robustness.py run` makes them")


def measured(path, seeds, key=None):
    """Whether the diagnostic's results file at `path` already holds these seeds' runs (each with `key`,
    if given: files from before it was measured are measured again): then it is skipped, as finished
    runs are (the checkpoints it reads may be gone with the machine; its results are committed).
    Delete the file to measure again."""
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        runs = json.load(f)["runs"]
    if sorted(run["seed"] for run in runs) == sorted(seeds) and all(key in run for run in runs if key):
        print(f"{path}: done, skipped")
        return True
    return False


def load_best(name, seed):
    """(model, vocab, checkpoint metadata) of a finished word-student run's best checkpoint."""
    from data import vocab_from_words
    from students import build_student
    from utils import WEIGHTS, load_state_strict, read_checkpoint_meta

    best = os.path.join(run_dir(name, seed), "best")
    meta = read_checkpoint_meta(best)
    model = build_student(meta["model"])
    load_state_strict(model, os.path.join(best, WEIGHTS))
    model.eval()
    return model, vocab_from_words(meta["vocab"]), meta


def unseen(args):
    """The finished runs' best checkpoints read with --unseen_words unk and chars: dev and
    out-of-domain accuracy of the same weights (a paired comparison; nothing is retrained)."""
    import numpy as np

    from data import load_eval_sets, load_local_splits, segment

    name = run_name(args.student, args.config)
    path = os.path.join(RESULTS, name, "unseen_words.json")
    if measured(path, args.seeds):
        return
    require_finished(name, args.seeds)
    splits, labels = load_local_splits(os.path.join(SHARED, "chnsenticorp"))
    sets = {"dev": splits["dev"], **load_eval_sets([OOD], labels)}
    words = {s: segment([ex["text"] for ex in ds]) for s, ds in sets.items()}
    gold = {s: np.array([ex["label"] for ex in ds]) for s, ds in sets.items()}
    rows = []
    for seed in args.seeds:
        model, vocab, meta = load_best(name, seed)
        row = {"seed": seed}
        for mode in ("unk", "chars"):
            for s in sets:
                logits = student_logits(model, vocab, meta["args"]["max_seq_length"], words[s], mode)
                row[f"{s}_{mode}"] = float(np.mean(logits.argmax(-1) == gold[s]))
        unk_share = {s: float(np.mean([w not in vocab.token_to_idx for ws in words[s] for w in ws])) for s in sets}
        rows.append({**row, "unseen_token_share": unk_share})
        print(row, flush=True)
    write_results(path, {"runs": rows, "config": name})


def student_logits(model, vocab, max_seq_length, sentences, unseen_words="unk"):
    """A student's logits of word lists, in their order (unseen words read as utils.convert_example does)."""
    import numpy as np
    import paddle
    from paddlenlp.data import Pad, Stack, Tuple

    from data import PAD, create_dataloader
    from utils import convert_example

    records = [(*convert_example(words, vocab, max_seq_length, unseen_words), row)
               for row, words in enumerate(sentences)]
    batchify = Tuple(Pad(axis=0, pad_val=vocab.to_indices(PAD), dtype="int64"), Stack(dtype="int64"),
                     Stack(dtype="int64"))
    out = np.zeros((len(sentences), model.output_layer.weight.shape[1]), dtype="float32")
    with paddle.no_grad():
        for ids, seq_len, rows in create_dataloader(records, batchify, 64):  # batched by length
            out[rows.numpy()] = model(ids, seq_len).numpy()
    return out


LENGTH_BINS = [0, 20, 40, 80, 160, 100000]  # jieba words: [0, 20), [20, 40), ... [160, ...)
TRANSFER_SETS = ("soft_aug", "distilled", "augment_unlabeled")  # the ablation's, beyond the training sentences


def bin_counts(lengths):
    """How many of `lengths` fall in each LENGTH_BINS bin."""
    import numpy as np

    return np.bincount(np.digitize(lengths, LENGTH_BINS[1:-1]), minlength=len(LENGTH_BINS) - 1).tolist()


def by_length(lengths, values):
    """The mean of values per LENGTH_BINS bin (None for an empty bin)."""
    import numpy as np

    bins = np.digitize(lengths, LENGTH_BINS[1:-1])
    return [float(values[bins == b].mean()) if (bins == b).any() else None for b in range(len(LENGTH_BINS) - 1)]


def lengths(args):
    """Dev accuracy by sentence length (jieba words) of the teacher and of a configuration's
    finished runs (best checkpoints, nothing retrained), on all of dev and on its texts train does
    not hold, and the mean squared distance of each student's logits from the teacher's per length,
    on dev and on the training sentences: where a student falls short of its teacher, and whether it
    had fit such sentences in training."""
    import numpy as np

    from data import unseen_rows

    name = run_name(args.student, args.config)
    path = os.path.join(RESULTS, name, "lengths.json")
    if measured(path, args.seeds, key="dev_unseen_acc"):
        return
    require_finished(name, args.seeds)
    splits, t = transfer(args, "soft_train")  # the training sentences' teacher logits: the smallest entry
    gold, train_gold = (np.array([ex["label"] for ex in splits[s]]) for s in ("dev", "train"))
    unseen = np.array(unseen_rows(splits["dev"], splits["train"]))
    sets = {"dev": (t.words["dev"], t.dev_logits), "train": (t.words["train"], t.logits[:len(t.words["train"])])}
    counts = {s: np.array([len(w) for w in words]) for s, (words, _) in sets.items()}
    teacher_right = t.dev_logits.argmax(-1) == gold
    result = {"bins": LENGTH_BINS, "sentences": {s: bin_counts(c) for s, c in counts.items()},
              "dev_unseen_sentences": bin_counts(counts["dev"][unseen]),
              "teacher_dev_acc": by_length(counts["dev"], teacher_right),
              "teacher_dev_unseen_acc": by_length(counts["dev"][unseen], teacher_right[unseen]),
              "teacher_train_acc": by_length(counts["train"], sets["train"][1].argmax(-1) == train_gold), "runs": []}
    for seed in args.seeds:
        model, vocab, meta = load_best(name, seed)
        run = {"seed": seed}
        for s, (words, teacher) in sets.items():
            student = student_logits(model, vocab, meta["args"]["max_seq_length"], words)
            run[f"{s}_mse_to_teacher"] = by_length(counts[s], ((student - teacher) ** 2).mean(-1))
            if s == "dev":
                right = student.argmax(-1) == gold
                run["dev_acc"] = by_length(counts[s], right)
                run["dev_unseen_acc"] = by_length(counts[s][unseen], right[unseen])
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
    write_results(path, {"config": name, **result})


def oov(args):
    """How each set differs from training: the share of tokens never seen in training (and in
    training + the unlabelled reviews), how many of those every character of which was seen, how
    many sentences hold Traditional characters (would OpenCC normalisation matter?), and how long
    the sentences of each set and of the transfer sets are (LENGTH_BINS)."""
    from data import read_lines, read_tsv, segment

    traditional = set("們這個說時會對於來過還與為國買賣質價應該點體發現實頭愛")  # common, unlike their simplified forms
    texts = {name: [ex["text"] for ex in read_tsv(path)] for name, path in
             [("train", os.path.join(SHARED, "chnsenticorp", "train.tsv")),
              ("dev", os.path.join(SHARED, "chnsenticorp", "dev.tsv")), OOD]}
    texts["unlabeled"] = read_lines(UNLABELED)
    words = {name: segment(t) for name, t in texts.items()}
    seen = {w for s in words["train"] for w in s}
    seen_all = seen | {w for s in words["unlabeled"] for w in s}
    rows = {}
    for name in ("dev", OOD[0]):
        tokens = [w for s in words[name] for w in s]
        unseen = [w for w in tokens if w not in seen_all]
        rows[name] = {"tokens": len(tokens), "unseen_in_train": sum(w not in seen for w in tokens) / len(tokens),
                      "unseen_in_train_and_unlabeled": len(unseen) / len(tokens),
                      "of_those_spelled_by_seen_characters": sum(all(c in seen_all for c in w) for w in unseen) / len(unseen)}
    rows["sentences_with_traditional_characters"] = {
        name: [sum(any(c in traditional for c in t) for t in ts), len(ts)] for name, ts in texts.items()}
    sets = {**words, **{f"transfer set of {c}": transfer(args, c)[1].sentences for c in TRANSFER_SETS}}
    rows["sentences_by_length"] = {"bins": LENGTH_BINS,
                                   **{name: bin_counts([len(s) for s in ws]) for name, ws in sets.items()}}
    print(json.dumps(rows, indent=1, ensure_ascii=False))
    write_results(os.path.join(RESULTS, "oov.json"), rows)


def parameters(args):
    """Fill "parameters" ({embedding, other}) into word students' result files written before
    summary.json recorded it, from each run's checkpoint config (the counts need no weights)."""
    from students import build_student, parameter_counts
    from utils import read_checkpoint_meta

    for path in sorted(glob.glob(os.path.join(RESULTS, "*-*", "seed*.json"))):
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
        best = os.path.join(run_dir(os.path.basename(os.path.dirname(path)), result["seed"]), "best")
        if result.get("parameters") is None and os.path.isdir(best):
            counts = parameter_counts(build_student(read_checkpoint_meta(best)["model"]))
            write_results(path, {**result, "parameters": counts})


def mean_std(values):
    """(mean, sample standard deviation; 0 for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def table(args):
    """Mean and spread per configuration, the share of the teacher's out-of-domain accuracy kept."""
    what = {"teacher": "m3e-small fine-tuned"}  # by run name: a configuration's may hold "-" (tinybert_s2_lr5e-4)
    for student in STUDENTS:
        for config, (_, _, description) in CONFIGS.items():
            what.setdefault(run_name(student, config), description)
    rows = {}
    for name in what:
        runs = [json.load(open(p, encoding="utf-8")) for p in sorted(glob.glob(os.path.join(RESULTS, name, "seed*.json")))]
        if runs:
            unseen = [r.get("dev_unseen_acc") for r in runs]  # runs before it was measured lack it
            rows[name] = {"seeds": [r["seed"] for r in runs], "parameters": runs[0].get("parameters"),
                          "dev": mean_std([r["dev_acc"] for r in runs]),
                          "dev_unseen": None if None in unseen else mean_std(unseen),
                          "ood": mean_std([r["ood_acc"] for r in runs])}
    teacher_ood = rows["teacher"]["ood"][0] if "teacher" in rows else None
    print("| model | what | seeds | ChnSentiCorp dev | dev, unseen | shopping5 (out of domain) "
          "| of the teacher's out-of-domain accuracy | parameters (embedding + other) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        kept = f"{row['ood'][0] / teacher_ood:.1%}" if teacher_ood else "-"
        row["ood_share_of_teacher"] = row["ood"][0] / teacher_ood if teacher_ood else None
        counts = row["parameters"]
        size = f"{counts['embedding'] / 1e6:.1f}M + {counts['other'] / 1e6:.2f}M" if counts else "-"
        unseen = f"{row['dev_unseen'][0]:.4f} ± {row['dev_unseen'][1]:.4f}" if row["dev_unseen"] else "-"
        print(f"| {name} | {what[name]} | {len(row['seeds'])} | {row['dev'][0]:.4f} ± {row['dev'][1]:.4f} | {unseen} "
              f"| {row['ood'][0]:.4f} ± {row['ood'][1]:.4f} | {kept} | {size} |")
    print("\nmean ± sample standard deviation over training seeds; dev, unseen: dev's texts not in train, from the "
          "same checkpoints (chosen on all of dev); - where the runs predate it")
    write_results(os.path.join(ROOT, "bench", "results", "robustness.json"), portable(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["teacher", "logits", "run", "unseen", "lengths", "oov", "parameters",
                                         "table"])
    parser.add_argument("config", nargs="?", choices=list(CONFIGS),
                        help="logits, run, unseen, lengths: the configuration")
    parser.add_argument("--student", choices=STUDENTS, default="bilstm", help="run, unseen, lengths: the student")
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS, help="run, unseen, lengths: training seeds")
    parser.add_argument("--teacher_run", default=TEACHER_OUTPUT, help="bench_teacher.py train's output")
    parser.add_argument("--num_threads", type=int, default=2)
    args = parser.parse_args()
    if args.what in ("logits", "run", "unseen", "lengths") and not args.config:
        parser.error(f"{args.what} needs a CONFIG")
    if args.what in ("unseen", "lengths") and CONFIGS[args.config][0] not in WORD_JOBS:
        parser.error(f"{args.what} reads word students' checkpoints")
    if args.what == "logits" and CONFIGS[args.config][0] != "distill":
        parser.error("logits fills the cache of teacher_student_distill.py's configurations")
    {"teacher": teacher, "logits": logits, "run": run, "unseen": unseen, "lengths": lengths, "oov": oov,
     "parameters": parameters, "table": table}[args.what](args)


if __name__ == "__main__":
    main()
