"""Sentence pairs on LCQMC (../shared/data/lcqmc): what the CPU budget allows, then the teacher and the
students alone and distilled, over training seeds.

    python bench/bench_pairs.py speed        # s/step of each job on LCQMC's pairs, and an epoch's minutes
    python bench/bench_pairs.py teacher_lr --lr LR [--max_steps 2000]  # the recipe at LR, a short run
    python bench/bench_pairs.py teacher      # m3e-small fine-tuned by recipes/teacher_lcqmc.txt
    python bench/bench_pairs.py logits       # its logits over the distillation's transfer set (launcher too)
    python bench/bench_pairs.py run CONFIG [--student bilstm] [--seeds 1 7 2021]   # alone | distilled (| _add)
    python bench/bench_pairs.py table        # mean +- std of each, beside the published anchors

`speed` times, on a sample of LCQMC's training pairs batched by length as training batches them: the
offline teacher (m3e-small) fine-tuning at batch 32 and labelling at batch 64, each at --max_seq_length 64
and 128, and the Bi-LSTM (the recipe's sizes, siamese) training at batch 64, on one thread and two. It
writes bench/results/lcqmc/speed.json, from which the teacher's epochs and sequence length are chosen.
`teacher_lr` runs the teacher's recipe at another learning rate for --max_steps steps (warm-up and
decay over those) and writes bench/results/lcqmc/teacher_lr/lr<LR>_steps<N>.json: the short runs the
recipe's learning rate is chosen from, on dev. `teacher` fine-tunes the offline teacher into
$DISTILL_LSTM_CACHE/teacher/lcqmc (continued from its last/ when stopped) and writes
bench/results/lcqmc/teacher.json: dev and dev-unseen accuracy and F1, and its best checkpoint without
the weights (teacher_checkpoint/); `logits` caches its logits in teacher_logits/. Both are
committed: a machine without the teacher's weights trains the distilled students from them (and refuses to
label a transfer set they do not hold: fine-tune the teacher again, ~2 h, then `logits`, ~1 h). `run`
trains a word student alone (recipes/student_lcqmc.txt) or distilled (recipes/distill_lcqmc.txt) per seed
in $DISTILL_LSTM_CACHE/lcqmc, continued from its last/ when stopped, and writes
bench/results/lcqmc/<student>-<config>/seed<N>.json. The checkpoint is chosen on dev accuracy; F1 is that
of label 1 (the same intent); "dev, unseen" are the 8,479 dev pairs train does not hold (either order).
"""
import argparse

from sentence_pairs import CONFIGS, SEEDS, logits, run, speed, table, teacher, teacher_lr


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed", help="s/step of each job on LCQMC pairs")
    p.add_argument("--sample", type=int, default=6400, help="training pairs the batches are cut from")
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p = sub.add_parser("teacher", help="fine-tune the offline teacher on LCQMC")
    p.add_argument("--num_threads", type=int, default=2)
    p = sub.add_parser("teacher_lr", help="the recipe at another learning rate, a short run (to choose it)")
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--max_steps", type=int, default=2000)
    p.add_argument("--num_threads", type=int, default=2)
    p = sub.add_parser("logits", help="the teacher's logits over the transfer set, cached")
    p.add_argument("--num_threads", type=int, default=2)
    p = sub.add_parser("run", help="a word student alone or distilled, per seed")
    p.add_argument("config", choices=CONFIGS)
    p.add_argument("--student", default="bilstm")
    p.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    p.add_argument("--num_threads", type=int, default=1)
    sub.add_parser("table", help="the results as a Markdown table")
    args = parser.parse_args()
    {"speed": speed, "teacher": teacher, "teacher_lr": teacher_lr, "logits": logits, "run": run,
     "table": table}[args.command](args)


if __name__ == "__main__":
    main()
