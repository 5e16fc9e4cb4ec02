r"""A student (the Bi-LSTM by default; --student picks another of students.py) trained on gold
labels alone: the baseline distillation must beat.

    python student_lstm_small.py --task_name chnsenticorp --vocab_path senta_word_dict.txt \
        --output_dir small_models/chnsenticorp
"""
from args import parse_args, warn_without_recipe

if __name__ == "__main__":
    parse_args("student")  # before Paddle's import (seconds): --help and bad flags answer at once

from checkpoint import Run, claimed_output_dir
from data import load_splits
from trainer import train_alone
from utils import init_runtime, run_main


def main(argv=None):
    args = parse_args("student", argv)
    init_runtime(args)
    warn_without_recipe("student", args, argv)
    run = Run.of(args)
    with claimed_output_dir(run):
        splits, label_list = load_splits(args)
        train_alone(args, run, splits, label_list)


if __name__ == "__main__":
    run_main(main)
