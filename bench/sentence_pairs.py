"""bench_pairs.py's jobs on LCQMC: the teacher, its logits, the students per seed, the CPU budget, the table."""
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

# common first: it puts the project on sys.path
from common import (CACHE, ROOT, SHARED_DATA, cpu_model, fetch_offline_teacher, finished_teacher,
                    keep_teacher_checkpoint, write_results)
from args import recipe  # noqa: E402, I001

LCQMC = os.path.join(SHARED_DATA, "lcqmc")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "lcqmc")
TEACHER_RUN = os.path.join(CACHE, "teacher", "lcqmc")
# Committed (common.keep_teacher_checkpoint): the teacher's logits and its best checkpoint without the weights
TEACHER_LOGITS = os.path.join(RESULTS, "teacher_logits")
TEACHER_CHECKPOINT = os.path.join(RESULTS, "teacher_checkpoint")


def resumed(output_dir):
    """The flags that continue a stopped run in output_dir, or start it afresh (the bench's own directory)."""
    last = os.path.join(output_dir, "last")
    return ["--init_from_ckpt", last] if os.path.isdir(last) else ["--overwrite_output_dir"]


def finished(output_dir, command):
    """Whether the run in output_dir has finished. One trained with other schedule flags than `command`'s (an
    edited recipe) is refused: its numbers would be written beside a command that did not make them."""
    from args import parse_args
    from checkpoint import read_checkpoint_meta, schedule_changes
    from utils import InputError

    if not os.path.isfile(os.path.join(output_dir, "summary.json")):
        return False
    job = {"teacher_train_glue.py": "teacher", "student_lstm_small.py": "student"}.get(command[1], "distill")
    changed = schedule_changes(read_checkpoint_meta(os.path.join(output_dir, "best"))["args"],
                               vars(parse_args(job, command[2:])))
    if changed:
        raise InputError(f"{output_dir}: trained with {', '.join(changed)}; move it away to train it with "
                         f"today's flags ({' '.join(command[1:])})")
    return True


def summary_row(output_dir):
    """Accuracy and F1 on dev and on dev's pairs not in train, from a finished run's summary.json."""
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    return {"dev_acc": summary["best_dev_acc"], "dev_f1": summary["best_dev_f1"],
            "dev_unseen_acc": summary["dev_unseen_acc"], "dev_unseen_f1": summary["dev_unseen_f1"],
            "best_step": summary["best_step"], "dev_curve": summary["dev_acc"], "dev_f1_curve": summary["dev_f1"],
            "epoch_seconds": summary["epoch_seconds"], "train_examples_per_second": summary["train_examples_per_second"]}


# name -> (script, recipe, flags after it). The students combine the sides' vectors as Tang et al. ([h1, h2, h1 * h2,
# |h1 - h2|], --pair_op mul, the default); "_add" as PaddleNLP's distill_lstm (h1 + h2).
CONFIGS = {"alone": ("student_lstm_small.py", "student_lcqmc", []),
           "distilled": ("teacher_student_distill.py", "distill_lcqmc", []),
           "alone_add": ("student_lstm_small.py", "student_lcqmc", ["--pair_op", "add"]),
           "distilled_add": ("teacher_student_distill.py", "distill_lcqmc", ["--pair_op", "add"])}
SEEDS = [1, 7, 2021]


def student_command(config, student, seed, num_threads, output_dir):
    script, name, flags = CONFIGS[config]
    cmd = [sys.executable, script, *recipe(name), *flags, "--task_name", "lcqmc", "--student", student, "--data_dir",
           LCQMC, "--seed", str(seed), "--device", "cpu", "--num_threads", str(num_threads), "--output_dir", output_dir]
    if script == "teacher_student_distill.py":
        cmd += ["--model_name", fetch_offline_teacher(), "--teacher_dir",
                finished_teacher(TEACHER_RUN, "python bench/bench_pairs.py teacher", TEACHER_CHECKPOINT),
                "--logits_cache", TEACHER_LOGITS]
    return cmd


def run(args):
    for seed in args.seeds:
        name = f"{args.student}-{args.config}"
        path = os.path.join(RESULTS, name, f"seed{seed}.json")
        if os.path.isfile(path):
            print(f"{path}: done, skipped")
            continue
        output_dir = os.path.join(CACHE, "lcqmc", name, f"seed{seed}")
        cmd = student_command(args.config, args.student, seed, args.num_threads, output_dir)
        print("running:", " ".join(cmd[1:]), flush=True)
        if not finished(output_dir, cmd):
            subprocess.run(cmd + resumed(output_dir), cwd=ROOT, check=True)
        with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        write_results(path, {"student": args.student, "config": args.config, "seed": seed, **summary_row(output_dir),
                             "teacher_dev_acc": summary.get("teacher_dev_acc"),
                             "teacher_dev_f1": summary.get("teacher_dev_f1"),
                             "transfer_set": summary.get("transfer_set"), "parameters": summary.get("parameters"),
                             "threads": args.num_threads, "cpu": cpu_model(),
                             "teacher": "m3e-small (offline), fine-tuned by bench_pairs.py teacher"
                             if "--teacher_dir" in cmd else None,
                             "command": " ".join(cmd[1:])})


def logits(args):
    """Fill the teacher-logits cache of the distillation's transfer set, training nothing: the seeds then
    train side by side on one thread each. Runs under paddle.distributed.launch too (each process labels
    its share)."""
    from args import parse_args
    from data import load_splits
    from transfer import transfer_targets
    from utils import init_runtime

    cmd = student_command("distilled", "bilstm", SEEDS[0], args.num_threads, os.path.join(CACHE, "lcqmc", "logits"))
    distill_args = parse_args("distill", cmd[2:])
    init_runtime(distill_args)
    splits, label_list = load_splits(distill_args)
    transfer_targets(distill_args, splits, label_list)


def fine_tune(output_dir, num_threads, *flags):
    """The offline teacher fine-tuned on LCQMC by recipes/teacher_lcqmc.txt (then `flags`) in output_dir,
    continued from its last/ when stopped, reused when finished; returns the command."""
    command = [sys.executable, "teacher_train_glue.py", *recipe("teacher_lcqmc"), "--task_name", "lcqmc",
               "--model_type", "bert", "--model_name_or_path", fetch_offline_teacher(), "--data_dir", LCQMC,
               "--device", "cpu", "--num_threads", str(num_threads), "--output_dir", output_dir, *flags]
    if not finished(output_dir, command):
        print("running:", " ".join(command[1:]), flush=True)
        subprocess.run(command + resumed(output_dir), cwd=ROOT, check=True)
    return command


def teacher(args):
    command = fine_tune(TEACHER_RUN, args.num_threads)
    write_results(os.path.join(RESULTS, "teacher.json"), {
        **summary_row(TEACHER_RUN), "threads": args.num_threads, "cpu": cpu_model(),
        "teacher": "m3e-small (offline)", "output_dir": TEACHER_RUN, "command": " ".join(command[1:])})
    keep_teacher_checkpoint(TEACHER_RUN, TEACHER_CHECKPOINT)


def teacher_lr(args):
    """The recipe at another learning rate, over --max_steps steps (its warm-up and decay over those): the
    short runs the teacher's learning rate is chosen from, on dev."""
    name = f"lr{args.lr:g}_steps{args.max_steps}"
    output_dir = os.path.join(CACHE, "teacher", "lcqmc_lr", name)
    command = fine_tune(output_dir, args.num_threads, "--learning_rate", str(args.lr), "--max_steps",
                        str(args.max_steps))
    write_results(os.path.join(RESULTS, "teacher_lr", f"{name}.json"), {
        **summary_row(output_dir), "lr": args.lr, "max_steps": args.max_steps, "threads": args.num_threads,
        "cpu": cpu_model(), "teacher": "m3e-small (offline)", "command": " ".join(command[1:])})


def sample_batches(lengths, batch_size, steps, seed=0):
    """`steps` batches of the length-grouped training order (as fit's sampler cuts them), spread evenly over
    the batch widths, so their mean stands for an epoch."""
    from data import LengthGroupedBatchSampler

    batches = LengthGroupedBatchSampler(lengths, batch_size, shuffle=True, seed=seed).batches()
    by_width = sorted(batches, key=lambda b: max(lengths[i] for i in b))
    return [by_width[int((k + 0.5) * len(by_width) / steps)] for k in range(steps)]


def timed_steps(batches, step):
    """Mean seconds of step(batch) over the batches, after one untimed step (caches, allocators)."""
    step(batches[-1])
    start = time.time()
    for batch in batches:
        step(batch)
    return (time.time() - start) / len(batches)


def teacher_speed(pairs, max_seq_length, steps):
    """(s per training step of 32, s per labelling batch of 64, share of pairs cut) of m3e-small."""
    import paddle
    from paddlenlp.data import Tuple

    from teacher import encode, load_teacher, teacher_pads

    model, tokenizer = load_teacher("bert", fetch_offline_teacher(), ["0", "1"])
    cut = np.mean([len(ids) > max_seq_length for ids in tokenizer([a for a, _ in pairs],
                                                                    text_pair=[b for _, b in pairs])["input_ids"]])
    encoded = encode(tokenizer, pairs, max_seq_length)
    lengths = [len(ids) for ids, _ in encoded]
    optimizer = paddle.optimizer.AdamW(5e-5, parameters=model.parameters())
    pad = Tuple(*teacher_pads(tokenizer))

    def train(batch):
        ids, types = pad([encoded[i] for i in batch])
        loss = paddle.nn.functional.cross_entropy(model(paddle.to_tensor(ids), paddle.to_tensor(types)),
                                                  paddle.zeros([len(batch)], dtype="int64"))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    @paddle.no_grad()
    def label(batch):
        ids, types = pad([encoded[i] for i in batch])
        model(paddle.to_tensor(ids), paddle.to_tensor(types))

    train_seconds = timed_steps(sample_batches(lengths, 32, steps), train)
    model.eval()
    label_seconds = timed_steps(sample_batches(lengths, 64, steps), label)
    return train_seconds, label_seconds, float(cut)


def student_speed(pairs, steps):
    """s per training step of 64 pairs of the Bi-LSTM at the recipes' sizes, siamese."""
    import paddle

    from args import parse_args
    from data import lean_vocab, load_vocab, segment
    from students import batchify_fn, build_student, student_config, to_records

    args = parse_args("student", [*recipe("student"), "--task_name", "lcqmc"])  # the sizes every recipe keeps
    words = segment(pairs)
    vocab = lean_vocab(load_vocab(os.path.join(ROOT, args.vocab_path)), words)
    records = to_records(words, [0] * len(words), vocab, args)
    model = build_student(student_config(args, vocab, 2, pairs=True))
    optimizer = paddle.optimizer.Adam(1e-3, parameters=model.parameters())
    batchify = batchify_fn(vocab.to_indices("[PAD]"), pairs=True)

    def train(batch):
        *inputs, labels = (paddle.to_tensor(x) for x in batchify([records[i] for i in batch]))
        loss = paddle.nn.functional.cross_entropy(model(*inputs), labels)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    lengths = [len(a) + len(b) for a, b in words]
    return timed_steps(sample_batches(lengths, 64, steps), train)


def speed(args):
    import paddle

    from data import load_local_splits
    from utils import init_logging

    init_logging()
    train = load_local_splits(LCQMC)[0]["train"]
    rng = np.random.default_rng(0)
    pairs = [train[int(i)]["text"] for i in rng.choice(len(train), args.sample, replace=False)]
    rows = {"teacher": [], "bilstm": []}
    paddle.base.core.set_num_threads(2)
    for max_seq_length in (64, 128):
        train_s, label_s, cut = teacher_speed(pairs, max_seq_length, args.steps)
        rows["teacher"].append({"max_seq_length": max_seq_length, "threads": 2, "train_seconds_per_step_32": train_s,
                                "label_seconds_per_batch_64": label_s, "pairs_cut": cut,
                                "train_epoch_minutes": len(train) / 32 * train_s / 60,
                                "label_train_minutes": len(train) / 64 * label_s / 60})
        print(rows["teacher"][-1], flush=True)
    for threads in (1, 2):
        paddle.base.core.set_num_threads(threads)
        step = student_speed(pairs, args.steps)
        rows["bilstm"].append({"threads": threads, "train_seconds_per_step_64": step,
                               "train_epoch_minutes": len(train) / 64 * step / 60})
        print(rows["bilstm"][-1], flush=True)
    write_results(os.path.join(RESULTS, "speed.json"), {
        "train_pairs": len(train), "sample_pairs": args.sample, "steps_timed": args.steps, "cpu": cpu_model(),
        "teacher": "m3e-small (offline), pretrained weights, a new 2-class head", **rows})


# Published anchors (their dev/test sets and teachers differ: context, not a comparison).
ANCHORS = [
    "PaddleNLP distill_lstm README, QQP (English, BERT-base teacher): teacher 0.9058 / 0.8735 acc / F1, "
    "Bi-LSTM alone 0.8566 / 0.7997, distilled 0.8752 / 0.8313 (+1.9 accuracy, +3.2 F1)",
    "LCQMC paper (Liu et al., COLING 2018), test: BiLSTM about 0.76 accuracy",
    "ERNIE 1.0 paper / PaddleNLP, LCQMC test: BERT-base and ERNIE 1.0 about 0.87 accuracy",
]


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def table(args):
    def read(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    rows = []
    if os.path.isfile(os.path.join(RESULTS, "teacher.json")):
        rows.append(("teacher: m3e-small fine-tuned", [read(os.path.join(RESULTS, "teacher.json"))]))
    for path in sorted(glob.glob(os.path.join(RESULTS, "teacher_lr", "*.json"))):  # the learning rate's short runs
        result = read(path)
        rows.append((f"teacher at lr {result['lr']:g}, {result['max_steps']} steps", [result]))
    for name in sorted(os.listdir(RESULTS)) if os.path.isdir(RESULTS) else []:
        # a run's seeds; the teacher's committed checkpoint and logits are folders here too
        seeds = sorted(glob.glob(os.path.join(RESULTS, name, "seed*.json")))
        if seeds:
            rows.append((name, [read(seed) for seed in seeds]))
    print("| model | seeds | dev acc | dev F1 | dev, unseen acc | dev, unseen F1 |\n|---|---|---|---|---|---|")
    for name, results in rows:
        cells = [mean_std([r[k] for r in results]) for k in ("dev_acc", "dev_f1", "dev_unseen_acc", "dev_unseen_f1")]
        print(f"| {name} | {len(results)} | " + " | ".join(cells) + " |")
    print("\nPublished, for context:\n" + "\n".join(f"- {a}" for a in ANCHORS))
