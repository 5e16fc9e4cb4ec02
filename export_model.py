"""Export a student, distilled student or teacher checkpoint as a Paddle static inference model.

    python export_model.py --checkpoint distilled_models/chnsenticorp/best --output_dir export/student
    python export_model.py --checkpoint teacher/chnsenticorp/best --output_dir export/teacher

The output directory holds inference.json + inference.pdiparams (paddle.jit.save), and what
prediction needs beside them: the vocabulary (vocab.txt for the student, the tokenizer's files for
the teacher) and predict_config.json (kind, labels, max length, and the SHA-256 of every other
file, which predict.py checks). An existing --output_dir is replaced only if it holds a previous
export and nothing else; any other non-empty directory is refused.
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("export")  # before Paddle's import (seconds): --help and bad flags answer at once

import logging

from inference import export_checkpoint
from utils import run_main

logger = logging.getLogger("distill_lstm")


def main(argv=None):
    args = parse_args("export", argv)
    logger.setLevel(logging.INFO)
    export_checkpoint(args.checkpoint, args.output_dir)


if __name__ == "__main__":
    run_main(main)
