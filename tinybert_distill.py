r"""TinyBERT's task distillation (Jiao et al., 2020): a small transformer of the teacher's family,
reading the teacher's tokens, learns the teacher layer by layer, then its predictions.

    python tinybert_distill.py @recipes/tinybert.txt --model_name ernie-gram-zh \
        --teacher_dir teacher/chnsenticorp/best --task_name chnsenticorp --n_iter 20 --output_dir tinybert/chnsenticorp

Stage 1 (--stage1_epochs): MSE between the student's embeddings and the teacher's, between each
student layer m and teacher layer m*N/M (a student no deeper than its teacher, M <= N; hidden states
through a learned projection where widths differ, attention scores before the softmax head by
head), on the real tokens. Stage 2 (--max_epoch): the distillation loss of
teacher_student_distill.py (--distill_loss, default KL at --temperature) on the teacher's cached
logits, from stage 1's weights. Both read the transfer set of
teacher_student_distill.py (augmented copies, unlabelled sentences) and share its cached logits;
stage 1 runs the teacher on every batch (its hidden states would be gigabytes to cache).
A script of its own: this student reads subword tokens, not jieba words, and its first stage
needs the teacher's inner states. No general (pre-training) distillation: the student starts from
the teacher's own layers (--init_from_teacher, same width) or at random.

<output_dir>/stage1/ holds stage 1's run (reused when finished), <output_dir>/best the student,
a save_pretrained directory export_model.py and predict.py take as they take the teacher. A stopped
run continues with --init_from_ckpt <output_dir>/stage1/last (in stage 1) or <output_dir>/last.
"""
from args import parse_args, warn_without_recipe

if __name__ == "__main__":
    parse_args("tinybert")  # before Paddle's import (seconds): --help and bad flags answer at once

import os

from checkpoint import Run, claimed_output_dir
from data import load_splits
from tinybert import train_tinybert
from utils import init_runtime, remove_path, run_main


def main(argv=None):
    args = parse_args("tinybert", argv)
    init_runtime(args)
    warn_without_recipe("tinybert", args, argv)
    run = Run.of(args)
    with claimed_output_dir(run):
        if run.overwrite:
            remove_path(os.path.join(run.output_dir, "stage1"))
        splits, label_list = load_splits(args)
        train_tinybert(args, run, splits, label_list)


if __name__ == "__main__":
    run_main(main)
