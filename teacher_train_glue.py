r"""Fine-tune the teacher (ERNIE-Gram by default) on the task, with the original example's command:

    python teacher_train_glue.py --model_type ernie-gram --model_name_or_path ernie-gram-zh \
        --task_name ChnSentiCorp --max_seq_length 128 --batch_size 32 --learning_rate 5e-5 \
        --num_train_epochs 30 --logging_steps 10 --save_steps 100 --output_dir ./teacher/ChnSentiCorp/

The best dev checkpoint, <output_dir>/best/, is a save_pretrained directory (config, tokenizer,
model_state.pdparams); its model_state.pdparams is the file the distillation's --teacher_dir takes.
"""
from args import parse_args, warn_without_recipe

if __name__ == "__main__":
    parse_args("teacher")  # before Paddle's import (seconds): --help and bad flags answer at once

from checkpoint import Run, claimed_output_dir
from data import load_splits
from teacher import fine_tune
from utils import init_runtime, run_main


def main(argv=None):
    args = parse_args("teacher", argv)
    init_runtime(args)
    warn_without_recipe("teacher", args, argv)
    run = Run.of(args)
    with claimed_output_dir(run):
        splits, label_list = load_splits(args)
        fine_tune(args, run, splits, label_list)


if __name__ == "__main__":
    run_main(main)
