"""Label cleaning, measured: synthetic label noise on ChnSentiCorp, and the real training set.

    python bench/bench_label_errors.py detect --model student|teacher [--draw D] [--tag T] [ARGS]  # every rule
    python bench/bench_label_errors.py train DATA [--draw D] [--seeds 1 7 2021]  # Bi-LSTM alone on DATA
    python bench/bench_label_errors.py real --model teacher [--tag T] [ARGS]  # the real ChnSentiCorp training set
    python bench/bench_label_errors.py table

A noise draw (--draw) is ChnSentiCorp with some training labels flipped (dev untouched), named by
what it flips and the seed that chose the rows: sym10_seed0 flips 10% of all rows (the first
draw, the default), sym10_seed1 another 10%, cc15_5_seed0 15% of the positive rows (label 1) and 5%
of the negative ones. Each draw is kept in $DISTILL_LSTM_CACHE/label_bench/<draw>; the folds'
out-of-sample probabilities in bench/results/label_errors/fold_probs/ (committed, so a draw's
finished folds are not trained again on another machine). `detect` runs
label_errors.py on it with the model's recipe (ARGS are added, e.g. --num_train_epochs 1 to bound
the teacher's folds), which writes both cleaned sets (drop-<scorer>: the rows flagged by
--filter_by's rule removed; relabel-<scorer>: given the suggested label), then scores every rule
--filter_by offers against the flips (precision, recall, F1) from the one set of out-of-sample
probabilities, and writes each training row's judgement beside the scores
(detect_<scorer>_rows.tsv, which every F1 recounts from). `train` trains the Bi-LSTM alone on the
clean, noisy or a cleaned training set (on the clean one it is bench_robustness.py's bilstm-alone,
read from its results: --eval_sets does not change training), each scored on dev and on the dev
texts the task's clean train does not hold (the 862 of ChnSentiCorp's "dev, unseen", whatever rows
a cleaned set dropped). Results go to
bench/results/label_errors/<draw>/ (those at its top level are sym10_seed0's on folds stratified by
label, before rows of identical text shared a fold, each run scored by one rule); a step whose
results have landed is skipped (detect runs again on a new machine while runs on its cleaned data
are still to come).
"""
import argparse

from label_cleaning import SEEDS, data_name, detect, draw_name, real, table, tag_name, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["detect", "train", "real", "table"])
    parser.add_argument("data", nargs="?", type=data_name,
                        help="train: noisy, or a cleaned set (<drop|relabel>-<scorer>)")
    parser.add_argument("--model", choices=["teacher", "student"], default="teacher")
    parser.add_argument("--tag", type=tag_name, default=None,
                        help="detect, real: names a scorer variant (<model>_<tag>) run with other ARGS")
    parser.add_argument("--draw", type=draw_name, default="sym10_seed0",
                        help="detect, train: the noise draw, sym<PERCENT>_seed<N> (that share of all labels "
                             "flipped) or cc<PERCENT1>_<PERCENT0>_seed<N> (that share of label 1's, of label 0's); "
                             "default sym10_seed0, the first")
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--num_threads", type=int, default=2, help="Each process's.")
    parser.add_argument("--processes", type=int, default=1,
                        help="detect, real: label_errors.py's processes under paddle.distributed.launch (each "
                             "fold's model trains data-parallel; 2 one-thread processes beat one two-thread one)")
    args, args.extra = parser.parse_known_args()
    if args.what == "train" and not args.data:
        parser.error("train needs DATA")
    {"detect": detect, "train": train, "real": real, "table": table}[args.what](args)


if __name__ == "__main__":
    main()
