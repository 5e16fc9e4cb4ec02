r"""Distill a fine-tuned teacher into the Bi-LSTM student (Tang et al., 2019), with the original command:

    python teacher_student_distill.py --task_name chnsenticorp --max_epoch 6 --lr 1.0 --dropout_prob 0.1 \
        --batch_size 64 --model_name ernie-gram-zh --teacher_dir teacher/chnsenticorp/best/model_state.pdparams \
        --vocab_path senta_word_dict.txt --output_dir distilled_models --save_steps 10000

The transfer set is the training sentences, --n_iter augmented copies of each and, with
--unlabeled_path, unlabelled sentences; the teacher's logits over it are computed once and cached.
"""
from args import parse_args, warn_without_recipe

if __name__ == "__main__":
    parse_args("distill")  # before Paddle's import (seconds): --help and bad flags answer at once

from checkpoint import Run, claimed_output_dir
from data import load_splits
from transfer import distill_student
from utils import init_runtime, run_main


def main(argv=None):
    args = parse_args("distill", argv)
    init_runtime(args)
    warn_without_recipe("distill", args, argv)
    run = Run.of(args)
    with claimed_output_dir(run):
        splits, label_list = load_splits(args)
        distill_student(args, run, splits, label_list)


if __name__ == "__main__":
    run_main(main)
