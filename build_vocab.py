r"""Build the word dictionary senta_word_dict.txt: jieba's bundled dictionary plus the words of
the task's training split, [PAD] and [UNK] first.

    python build_vocab.py --task_name chnsenticorp --data_dir ../shared/data/chnsenticorp \
        --vocab_path senta_word_dict.txt

--vocab_path has no default: the file it names is replaced, so the shipped dictionary is only
rebuilt when asked for by name.
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("vocab")  # before Paddle's import (seconds): --help and bad flags answer at once

import logging
import os

from data import build_word_dict, load_splits, segment
from utils import atomic_path, make_writable_dir, run_main

logger = logging.getLogger("distill_lstm")


def main(argv=None):
    args = parse_args("vocab", argv)
    logger.setLevel(logging.INFO)
    make_writable_dir(os.path.dirname(os.path.abspath(args.vocab_path)))
    splits, _ = load_splits(args)
    words = build_word_dict(segment([ex["text"] for ex in splits["train"]]))
    with atomic_path(args.vocab_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    logger.info("wrote %d words to %s", len(words), args.vocab_path)


if __name__ == "__main__":
    run_main(main)
