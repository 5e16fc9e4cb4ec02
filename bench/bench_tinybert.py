"""Should TinyBERT's stage 1 cache the teacher's inner states, or compute them on every batch?

    python bench/bench_tinybert.py [--batches 30] [--num_threads 1]

On training batches of the ChnSentiCorp training set (tinybert_distill.py's defaults: batch 32, a
student of 2 layers of width 256, the fine-tuned offline m3e-small teacher of bench_teacher.py
train), it times the teacher's forward pass that stage 1 runs on every batch (hidden states and
attention scores) against the whole stage-1 step, and counts the bytes a cache of what stage 1 reads
(the embeddings, the mapped layers' hidden states and attention scores, real tokens only) would hold
for the training set. Caching pays only where the disk reads a batch's states faster than the
teacher computes them: the break-even read rate is printed. Results: bench/results/tinybert_stage1.json.
"""
import argparse
import os
import sys
import time

import numpy as np

# common first: it puts the project on sys.path
from common import ROOT, SHARED_DATA, TEACHER_OUTPUT, cpu_model, fetch_offline_teacher, teacher_dir, write_results
from args import parse_args  # noqa: E402, I001
from tinybert_cache import cache_bytes

RESULTS = os.path.join(ROOT, "bench", "results", "tinybert_stage1.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30, help="Timed batches (after 3 warm-up ones).")
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--teacher_run", default=TEACHER_OUTPUT, help="bench_teacher.py train's output")
    bench = parser.parse_args()
    args = parse_args("tinybert", [
        "--task_name", "chnsenticorp", "--data_dir", os.path.join(SHARED_DATA, "chnsenticorp"), "--device", "cpu",
        "--num_threads", str(bench.num_threads), "--model_name", fetch_offline_teacher(),
        "--teacher_dir", os.path.join(teacher_dir(bench), "model_state.pdparams")])

    import paddle
    from paddlenlp.data import Tuple

    from data import LengthGroupedBatchSampler, is_pair, load_splits
    from teacher import Teacher, encode, teacher_classes
    from tinybert import LayerDistiller, layer_map, make_layer_loss, student_config, teacher_states
    from trainer import create_optimizer
    from utils import init_runtime

    init_runtime(args)
    splits, label_list = load_splits(args)
    teacher = Teacher(args, label_list, is_pair(splits["train"]))
    texts = [ex["text"] for ex in splits["train"]]
    encoded = encode(teacher.tokenizer, texts, teacher.max_seq_length)
    lengths = [len(ids) for ids, _ in encoded]
    config = teacher.model.config
    mapping = layer_map(args.num_layers, config.num_hidden_layers)
    paddle.seed(args.seed)
    student = teacher_classes(teacher.model_type)[0](student_config(args, config, len(label_list)))
    distiller = LayerDistiller(student, args.hidden_size, config.hidden_size)
    optimizer = create_optimizer(args, distiller, 1000)
    compute_loss = make_layer_loss(teacher.model, mapping, teacher.tokenizer.pad_token_id)
    # training's batches: sentences of similar lengths (data.create_dataloader's sampler)
    batches = LengthGroupedBatchSampler(lengths, args.batch_size, shuffle=True, seed=args.seed).batches()
    teacher_seconds, step_seconds, batch_tokens = [], [], []
    load_before = os.getloadavg()[0]
    for b, rows in enumerate(batches[:3 + bench.batches]):
        ids, types = (paddle.to_tensor(x) for x in Tuple(*teacher.pads)([encoded[i] for i in rows]))
        start = time.perf_counter()
        with paddle.no_grad():
            teacher_states(teacher.model, ids, types, mapping)
        middle = time.perf_counter()
        loss, _ = compute_loss(distiller, (ids, types))  # the whole step: the teacher again, the student
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        end = time.perf_counter()
        if b >= 3:
            teacher_seconds.append(middle - start)
            step_seconds.append(end - middle)
            batch_tokens.append([lengths[i] for i in rows])
    per_batch = float(np.mean(teacher_seconds))
    batch_bytes = float(np.mean([cache_bytes(t, mapping, config, 2) for t in batch_tokens]))
    result = {
        "teacher": "m3e-small (offline), fine-tuned by bench_teacher.py train",
        "student": {"layers": args.num_layers, "hidden_size": args.hidden_size, "layer_map": mapping},
        "batch_size": args.batch_size, "batches": bench.batches, "threads": bench.num_threads,
        "cpu": cpu_model(),
        "load_average_1min": [load_before, os.getloadavg()[0]],  # before and after: other work on the machine
        "teacher_forward_seconds_per_batch": per_batch,
        "stage1_step_seconds_per_batch": float(np.mean(step_seconds)),
        "teacher_share_of_step": per_batch / float(np.mean(step_seconds)),
        "train_sentences": len(lengths), "train_tokens": int(sum(lengths)),
        "cache_gb_train_fp16": cache_bytes(lengths, mapping, config, 2) / 1e9,
        "cache_gb_train_fp32": cache_bytes(lengths, mapping, config, 4) / 1e9,
        "cache_mb_per_batch_fp16": batch_bytes / 1e6,
        "break_even_read_mb_per_s": batch_bytes / 1e6 / per_batch,
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    write_results(RESULTS, result)


if __name__ == "__main__":
    sys.exit(main())
