"""Fine-tune the teacher (ERNIE-Gram by default) on the task, with the original example's command:

    python teacher_train_glue.py --model_type ernie-gram --model_name_or_path ernie-gram-zh \
        --task_name ChnSentiCorp --max_seq_length 128 --batch_size 32 --learning_rate 5e-5 \
        --num_train_epochs 30 --logging_steps 10 --save_steps 100 --output_dir ./teacher/ChnSentiCorp/

The best dev checkpoint, <output_dir>/best/, is a save_pretrained directory (config, tokenizer,
model_state.pdparams); its model_state.pdparams is the file the distillation's --teacher_dir takes.
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("teacher")  # before Paddle's import (seconds): --help and bad flags answer at once

import logging
import os

import paddle
import paddlenlp.transformers as transformers
from paddlenlp.data import Pad, Stack, Tuple
from tqdm import tqdm

from data import create_dataloader, load_splits
from utils import (META, WEIGHTS, InputError, ce_loss, check_labels, claimed_output_dir, create_optimizer,
                   fit, init_runtime, load_state_strict, read_checkpoint_meta, require_kind,
                   restore_checkpoint, run_main, total_train_steps, write_summary)

logger = logging.getLogger("distill_lstm")

# --model_type -> PaddleNLP class prefix; other types go through the Auto classes.
FAMILIES = {"ernie-gram": "ErnieGram", "ernie": "Ernie", "bert": "Bert", "roberta": "Roberta"}


def teacher_classes(model_type):
    family = FAMILIES.get(model_type.lower())
    if family is None:
        return transformers.AutoModelForSequenceClassification, transformers.AutoTokenizer
    return (getattr(transformers, f"{family}ForSequenceClassification"),
            getattr(transformers, f"{family}Tokenizer"))


def has_only_torch_weights(path):
    """A local directory with a PyTorch checkpoint that PaddleNLP has not converted yet."""
    return (os.path.isfile(os.path.join(path, "pytorch_model.bin"))
            and not os.path.isfile(os.path.join(path, WEIGHTS)))


def load_teacher(model_type, name_or_path, label_list, params_path=None):
    """(model, tokenizer) from a hub name or a local directory, with a classifier for label_list.

    PyTorch weights in a directory are converted by PaddleNLP (convert_from_torch); a classifier
    of another shape in it starts afresh. With params_path (a fine-tuned model_state.pdparams, as the original's --teacher_dir) those
    weights replace the pretrained ones and must fit the model exactly."""
    if os.path.isfile(os.path.join(name_or_path, META)):  # one of our fine-tuned teachers
        meta = read_checkpoint_meta(name_or_path)
        require_kind(name_or_path, meta, "teacher")
        check_labels(name_or_path, meta, label_list)
    model_cls, tokenizer_cls = teacher_classes(model_type)
    try:
        tokenizer = tokenizer_cls.from_pretrained(name_or_path)
        model = model_cls.from_pretrained(name_or_path, num_classes=len(label_list),
                                          convert_from_torch=has_only_torch_weights(name_or_path),
                                          ignore_mismatched_sizes=True)
    except Exception as e:  # PaddleNLP raises many kinds for a name or directory it cannot use
        raise InputError(f"{name_or_path}: cannot load a {model_type} model and tokenizer "
                         f"({type(e).__name__}: {e})")
    # Some configs (m3e-small's) ask for key/value caches, which make the model return a tuple.
    model.config.use_cache = False
    if params_path:
        load_state_strict(model, params_path)
    return model, tokenizer


def encode(tokenizer, texts, max_seq_length, chunk=512, progress=True):
    """(input_ids, token_type_ids) per text, truncated to max_seq_length tokens."""
    encoded = []
    for start in tqdm(range(0, len(texts), chunk), desc="tokenizing", unit="chunk", leave=False,
                      disable=not progress):
        out = tokenizer(texts[start:start + chunk], max_length=max_seq_length, truncation=True)
        encoded += zip(out["input_ids"], out["token_type_ids"])
    return encoded


def teacher_pads(tokenizer):
    """Padders of the teacher's two inputs, input_ids and token_type_ids."""
    return (Pad(axis=0, pad_val=tokenizer.pad_token_id, dtype="int64"),
            Pad(axis=0, pad_val=tokenizer.pad_token_type_id, dtype="int64"))


def batchify_fn(tokenizer):
    """(input_ids, token_type_ids) padded per batch, then the targets."""
    return Tuple(*teacher_pads(tokenizer), Stack())


def main(argv=None):
    args = parse_args("teacher", argv)
    init_runtime(args)
    with claimed_output_dir(args):
        run(args)


def run(args):
    splits, label_list = load_splits(args)
    fine_tune(args, splits, label_list)


def fine_tune(args, splits, label_list):
    """Fine-tune on splits["train"], keeping the best checkpoint on splits["dev"] (scoring the others)."""
    # Fresh parameter names, so optimizer state saved by one run loads into another.
    with paddle.utils.unique_name.guard():
        model, tokenizer = load_teacher(args.model_type, args.model_name_or_path, label_list)
        loaders = {
            split: create_dataloader([(*ids, ex["label"]) for ids, ex in zip(
                encode(tokenizer, [ex["text"] for ex in ds], args.max_seq_length), ds)],
                batchify_fn(tokenizer), args.batch_size, shuffle=split == "train", seed=args.seed)
            for split, ds in splits.items() if ds[0]["label"] is not None
        }
        optimizer = create_optimizer(args, model, total_train_steps(args, len(loaders["train"])))
        state = None
        if args.init_from_ckpt:
            state = restore_checkpoint(args.init_from_ckpt, model, optimizer, label_list, "teacher")["state"]
        meta = {"args": vars(args), "labels": label_list}
        logger.info("teacher %s (%s): %d classes, %d parameters; output in %s", args.model_name_or_path,
                    args.model_type, len(label_list), sum(p.size for p in model.parameters()),
                    args.output_dir)
        state = fit(model, optimizer, loaders["train"], loaders["dev"], ce_loss, args, meta, state,
                    extras=[tokenizer])
        write_summary(model, loaders, args, state)


if __name__ == "__main__":
    run_main(main)
