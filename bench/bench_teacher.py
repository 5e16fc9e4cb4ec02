"""Benchmark the teacher's fine-tuning on CPU with the offline teacher (m3e-small).

    python bench/bench_teacher.py speed     # seconds per training step under each speed lever
    python bench/bench_teacher.py train     # the README's teacher command, on ../shared data

`train` keeps the fine-tuned teacher in $DISTILL_LSTM_CACHE/teacher/chnsenticorp (default
~/.cache/distill_lstm), where the distillation benchmark looks for it, and fetches the offline
teacher with ../shared/tools/get_offline_teacher.sh when it is not there; its best checkpoint without the
weights goes to bench/results/robustness/teacher_checkpoint/, to commit with the logits the distillation benches
cache in bench/results/robustness/teacher_logits/ (a machine without the weights trains students from them).
Tables are printed as Markdown and saved to bench/results/teacher_{speed,train}.json.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

# common first: it puts the project on sys.path
from common import (ROOT, SHARED, TEACHER_CHECKPOINT, TEACHER_OUTPUT, cpu_model, fetch_offline_teacher,
                    keep_teacher_checkpoint, write_results)
from args import recipe  # noqa: E402, I001

PEAK_GFLOPS = 157.0  # 2 AVX2 cores x 2.45 GHz x 32 fp32 FLOP per cycle (two FMA units)
# The README's teacher command (recipes/teacher.txt), offline.
README_COMMAND = ["teacher_train_glue.py", "--model_type", "bert", "--task_name", "chnsenticorp",
                  *recipe("teacher")]


def train_flops(config, lengths):
    """Forward + backward FLOPs (3x forward) of one padded batch through the encoder."""
    h, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    batch, width = len(lengths), max(lengths)
    tokens = batch * width
    per_layer = 2 * tokens * (4 * h * h + 2 * h * ff) + 4 * batch * width * width * h
    return 3 * layers * per_layer


# Speed levers, applied one after another: (name, threads, max_seq_length, length-grouped, MKL AVX2 on AMD)
LEVERS = [
    ("original: 1 thread, random batches, length 128", 1, 128, False, False),
    ("+ 2 threads", 2, 128, False, False),
    ("+ length-grouped batches", 2, 128, True, False),
    ("+ MKL's AVX2 kernels on AMD (MKL_DEBUG_CPU_TYPE=5)", 2, 128, True, True),
    ("same, --max_seq_length 256", 2, 256, True, True),
]


def time_lever(args):
    """Train m3e-small for args.steps steps of ChnSentiCorp batches under LEVERS[args.lever].

    Batches are chosen evenly over the length distribution, so their mean stands for an epoch."""
    import paddle

    from data import LengthGroupedBatchSampler, load_local_splits
    from teacher import batchify_fn, encode, load_teacher

    name, threads, max_len, grouped, _ = LEVERS[args.lever]
    paddle.base.core.set_num_threads(threads)
    splits, labels = load_local_splits(args.data_dir)
    model, tokenizer = load_teacher("bert", fetch_offline_teacher(), labels)
    optimizer = paddle.optimizer.AdamW(5e-5, parameters=model.parameters())
    encoded = encode(tokenizer, [ex["text"] for ex in splits["train"]], max_len)
    lengths = [len(ids) for ids, _ in encoded]
    if grouped:
        batches = LengthGroupedBatchSampler(lengths, 32, shuffle=True, seed=0).batches()
    else:  # the original: random batches, each padded to its longest sentence
        order = np.random.default_rng(0).permutation(len(encoded))
        batches = [order[i:i + 32] for i in range(0, len(order), 32)]
    by_width = sorted(batches, key=lambda b: max(lengths[i] for i in b))
    picked = [by_width[int((k + 0.5) * len(by_width) / args.steps)] for k in range(args.steps)]
    seconds, flops, sentences = 0.0, 0, 0
    for warmup, batch in [(True, picked[-1])] + [(False, b) for b in picked]:
        ids, type_ids, targets = batchify_fn(tokenizer)([(*encoded[i], 0) for i in batch])
        start = time.time()
        loss = paddle.nn.functional.cross_entropy(
            model(paddle.to_tensor(ids), paddle.to_tensor(type_ids)), paddle.to_tensor(targets))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if not warmup:  # the first step warms caches and allocators up
            seconds += time.time() - start
            flops += train_flops(model.config, [len(row) for row in ids])
            sentences += len(ids)
    return {"lever": name, "threads": threads, "max_seq_length": max_len,
            "seconds_per_step": seconds / args.steps, "sentences_per_second": sentences / seconds,
            "gflops": flops / seconds / 1e9, "peak_fraction": flops / seconds / 1e9 / PEAK_GFLOPS}


def speed(args):
    """Each lever in its own process: MKL reads MKL_DEBUG_CPU_TYPE once, at its first call."""
    rows = []
    for lever, (name, *_, avx2) in enumerate(LEVERS):
        env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}
        if avx2:
            env["MKL_DEBUG_CPU_TYPE"] = "5"
        out = subprocess.run([sys.executable, __file__, "lever", "--lever", str(lever), "--steps", str(args.steps),
                              "--data_dir", args.data_dir], env=env, check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{name}: {rows[-1]['seconds_per_step']:.2f} s/step", flush=True)
    base = rows[0]["sentences_per_second"]
    print("\n| lever | s/step (32 sentences) | sentences/s | speed-up | GFLOP/s | of fp32 peak |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['lever']} | {r['seconds_per_step']:.2f} | {r['sentences_per_second']:.1f} "
              f"| {r['sentences_per_second'] / base:.1f}x | {r['gflops']:.0f} | {r['peak_fraction']:.0%} |")
    return {"steps_timed_per_lever": args.steps, "rows": rows}


def run_flops(data_dir, teacher, epochs, max_seq_length=256, batch_size=32, seed=2021):
    """(FLOPs, examples) of `epochs` whole epochs of the README command: its batches are a
    function of the seed and the epoch, so they can be rebuilt here."""
    from paddlenlp.transformers import BertConfig, BertTokenizer

    from data import LengthGroupedBatchSampler, load_local_splits
    from teacher import encode

    texts = [ex["text"] for ex in load_local_splits(data_dir)[0]["train"]]
    lengths = [len(ids) for ids, _ in encode(BertTokenizer.from_pretrained(teacher), texts, max_seq_length)]
    config = BertConfig.from_pretrained(teacher)
    sampler = LengthGroupedBatchSampler(lengths, batch_size, shuffle=True, seed=seed)
    flops = 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        flops += sum(train_flops(config, [lengths[i] for i in batch]) for batch in sampler.batches())
    return flops, epochs * len(texts)


def train(args):
    """Fine-tune the offline teacher with the README's command; print its table."""
    teacher = fetch_offline_teacher()
    output_dir = args.output_dir or TEACHER_OUTPUT
    command = [sys.executable, *README_COMMAND, "--model_name_or_path", teacher,
               "--data_dir", os.path.abspath(args.data_dir), "--device", "cpu",
               "--num_threads", str(args.num_threads), "--output_dir", output_dir, "--overwrite_output_dir",
               *args.extra]  # train (again): replaces the cached teacher
    print("running:", " ".join(command), flush=True)
    start = time.time()
    subprocess.run(command, cwd=ROOT, check=True)
    wall = time.time() - start
    if output_dir == TEACHER_OUTPUT:  # the benches' teacher: its logits are committed, so is what names them
        keep_teacher_checkpoint(output_dir, TEACHER_CHECKPOINT)
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    epochs = len(summary["epoch_seconds"])
    flops, examples = run_flops(args.data_dir, teacher, epochs)
    gflops = flops / (examples / summary["train_examples_per_second"]) / 1e9
    row = {"dev_acc": summary["best_dev_acc"], "best_step": summary["best_step"],
           "epochs": len(summary["epoch_seconds"]), "wall_minutes": wall / 60,
           "examples_per_second": summary["train_examples_per_second"],
           "gflops": gflops, "peak_fraction": gflops / PEAK_GFLOPS,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
           "threads": args.num_threads, "teacher": "m3e-small (offline)", "output_dir": output_dir,
           "command": " ".join(command[1:])}
    print("\n| teacher | dev acc | best step | wall | train examples/s | GFLOP/s | of fp32 peak | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {row['teacher']} | {row['dev_acc']:.4f} | {row['best_step']} | {row['wall_minutes']:.0f} min "
          f"| {row['examples_per_second']:.1f} | {row['gflops']:.0f} | {row['peak_fraction']:.0%} "
          f"| {row['peak_rss_mib']:.0f} MiB |")
    return {"result": row, "summary": summary}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["speed", "train", "lever"])
    parser.add_argument("--data_dir", default=os.path.join(SHARED, "data", "chnsenticorp"))
    parser.add_argument("--num_threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="speed: steps timed per lever")
    parser.add_argument("--lever", type=int, help=argparse.SUPPRESS)  # speed's child processes
    parser.add_argument("--output_dir", help="train: where the teacher goes (default: the cache)")
    parser.add_argument("--results", help="default: bench/results/teacher_<what>.json")
    args, args.extra = parser.parse_known_args()
    if args.what == "lever":
        print(json.dumps(time_lever(args)))
        return
    result = speed(args) if args.what == "speed" else train(args)
    result["cpu"] = cpu_model()
    path = args.results or os.path.join(ROOT, "bench", "results", f"teacher_{args.what}.json")
    write_results(path, result)


if __name__ == "__main__":
    main()
