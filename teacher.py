"""The teacher: a PaddleNLP sequence classifier loaded from the hub or a directory, its tokens, its
fine-tuning, and the fine-tuned Teacher that labels word lists for the students."""
import functools
import logging
import os

import numpy as np
import paddle
import paddlenlp.transformers as transformers
from paddlenlp.data import Pad, Stack, Tuple
from tqdm import tqdm

from checkpoint import (META, WEIGHTS, check_labels, check_task, load_state_strict, read_checkpoint_meta, require_kind,
                        restore_checkpoint)
from data import create_dataloader, is_pair, join_words, per_side
from trainer import ce_loss, create_optimizer, fit, total_train_steps, write_summary
from utils import InputError, file_sha256, world

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
    tokenizer = pretrained(model_type, name_or_path, tokenizer_cls.from_pretrained)
    model = pretrained(model_type, name_or_path, functools.partial(
        model_cls.from_pretrained, num_classes=len(label_list), convert_from_torch=has_only_torch_weights(name_or_path),
        ignore_mismatched_sizes=True))
    # Some configs (m3e-small's) ask for key/value caches, which make the model return a tuple.
    model.config.use_cache = False
    if params_path:
        load_state_strict(model, params_path)
    return model, tokenizer


def teacher_config(model_type, name_or_path):
    """The teacher's architecture (widths, depth), read without its weights, as load_teacher's model has it."""
    model_cls = teacher_classes(model_type)[0]
    config = pretrained(model_type, name_or_path, getattr(model_cls, "config_class", transformers.AutoConfig)
                        .from_pretrained)
    config.use_cache = False
    return config


def pretrained(model_type, name_or_path, from_pretrained):
    """from_pretrained(name_or_path), a PaddleNLP class from a hub name or a local directory; its many kinds of
    failure become one InputError."""
    try:
        return from_pretrained(name_or_path)
    except Exception as e:  # PaddleNLP raises many kinds for a name or directory it cannot use
        offline = "" if os.path.isdir(name_or_path) else (
            "; offline? fetch a local teacher (m3e-small) with bash ../shared/tools/get_offline_teacher.sh DIR "
            "and give --model_type bert --model_name_or_path DIR")
        detail = " ".join(str(e).split())  # PaddleNLP's messages span lines: keep the error one line
        raise InputError(f"{name_or_path}: cannot load a {model_type} model and tokenizer "
                         f"({type(e).__name__}: {detail}){offline}")


def encode(tokenizer, texts, max_seq_length, chunk=512, progress=True):
    """(input_ids, token_type_ids) per text, truncated to max_seq_length tokens; a pair (a, b) reads
    [CLS] a [SEP] b [SEP], b's tokens of type 1, the longer side cut first."""
    encoded = []
    for start in tqdm(range(0, len(texts), chunk), desc="tokenizing", unit="chunk", leave=False,
                      disable=not progress):
        batch = texts[start:start + chunk]
        first, second = (list(sides) for sides in zip(*batch)) if isinstance(batch[0], tuple) else (batch, None)
        out = tokenizer(first, text_pair=second, max_length=max_seq_length, truncation=True)
        encoded += zip(out["input_ids"], out["token_type_ids"])
    return encoded


def teacher_pads(tokenizer):
    """Padders of the teacher's two inputs, input_ids and token_type_ids."""
    return (Pad(axis=0, pad_val=tokenizer.pad_token_id, dtype="int64"),
            Pad(axis=0, pad_val=tokenizer.pad_token_type_id, dtype="int64"))


def batchify_fn(tokenizer):
    """(input_ids, token_type_ids) padded per batch, then the targets."""
    return Tuple(*teacher_pads(tokenizer), Stack())


def fine_tune(args, run, splits, label_list):
    """Fine-tune in `run` on splits["train"], keeping the best checkpoint on splits["dev"] (scoring the others)."""
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
        pairs = is_pair(splits["train"])
        state = None
        meta = {"args": vars(args), "labels": label_list, "pairs": pairs}
        if run.init_from_ckpt:
            state = restore_checkpoint(run.init_from_ckpt, model, optimizer, label_list, pairs, "teacher",
                                       meta["args"])["state"]
        logger.info("teacher %s (%s): %d classes, %d parameters; output in %s", args.model_name_or_path,
                    args.model_type, len(label_list), sum(p.size for p in model.parameters()),
                    run.output_dir)
        state = fit(model, optimizer, loaders["train"], loaders["dev"], ce_loss, args, run, meta, state,
                    extras=[tokenizer])
        write_summary(model, loaders, args, run, state, meta)


def teacher_files(teacher_dir):
    """(weights file, its checkpoint metadata or {}) for --teacher_dir, a file or a directory. A checkpoint
    directory whose weights were left behind (its checkpoint.json records their SHA-256) still names the
    logits cached from them: it serves those, and refuses to label anything new."""
    if not os.path.exists(teacher_dir):
        raise InputError(f"{teacher_dir}: no such file or directory (--teacher_dir)")
    params = os.path.join(teacher_dir, WEIGHTS) if os.path.isdir(teacher_dir) else teacher_dir
    beside = os.path.dirname(params)
    meta = read_checkpoint_meta(beside) if os.path.isfile(os.path.join(beside, META)) else {}
    if not os.path.isfile(params) and "weights_sha256" not in meta:
        raise InputError(f"{teacher_dir}: no {WEIGHTS} in it (--teacher_dir)")
    if meta:
        require_kind(beside, meta, "teacher")
    return params, meta


class Teacher:
    """The fine-tuned teacher, reading word lists (masks become its tokenizer's mask token).

    A checkpoint of teacher_train_glue.py (best/, last/) is a save_pretrained directory: its own config
    and tokenizer build the teacher, so it reads text through the vocabulary it was fine-tuned with,
    whatever --model_name says. A bare weights file (the original's --teacher_dir) takes them from
    --model_name. Its weights are loaded on first use: a run whose logits are all cached never loads them."""

    def __init__(self, args, label_list, pairs):
        self.params, meta = teacher_files(args.teacher_dir)
        self.recorded_sha256 = meta.get("weights_sha256")
        fine_tuned = meta.get("args", {})
        self.model_type = args.model_type or fine_tuned.get("model_type", "ernie-gram")
        self.max_seq_length = args.teacher_max_seq_length or fine_tuned.get("max_seq_length", 128)
        if meta:
            check_task(self.params, meta, label_list, pairs)
        self.self_contained = bool(meta)  # its own config and tokenizer: --model_name is not read
        self.source = os.path.dirname(os.path.abspath(self.params)) if meta else args.model_name
        self.label_list = label_list

    @functools.cached_property
    def weights_sha256(self):
        """The weights' identity: their file's hash, or the one their checkpoint recorded where they are absent."""
        return file_sha256(self.params) if os.path.isfile(self.params) else self.recorded_sha256

    @functools.cached_property
    def model(self):
        if not os.path.isfile(self.params):
            raise InputError(f"{self.params}: the teacher's weights are not here; its checkpoint serves only "
                             "the logits already cached from them (--logits_cache), and these are not")
        logger.info("teacher %s: architecture and tokenizer from %s", self.params, self.source)
        model, _ = load_teacher(self.model_type, self.source, self.label_list, self.params)
        model.eval()
        return model

    # Neither needs the weights: a run on cached logits still reads its inputs, and sizes a student, by them.
    @functools.cached_property
    def tokenizer(self):
        return pretrained(self.model_type, self.source, teacher_classes(self.model_type)[1].from_pretrained)

    @functools.cached_property
    def config(self):
        return teacher_config(self.model_type, self.source)

    @property
    def pads(self):
        return teacher_pads(self.tokenizer)

    def encode(self, sentences):
        mask = self.tokenizer.mask_token or self.tokenizer.unk_token
        texts = [per_side(lambda side: join_words(side, mask), words) for words in sentences]
        return encode(self.tokenizer, texts, self.max_seq_length)

    @paddle.no_grad()
    def logits(self, sentences, batch_size):
        """Teacher logits of word lists, batched by length. Under the launcher each rank runs every
        ranks-th of the batches one process would, and every rank gets all the logits: the same
        numbers as one process."""
        encoded = self.encode(sentences)
        order = np.argsort([len(ids) for ids, _ in encoded], kind="stable")
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        rank, ranks = world()
        out = np.zeros((len(encoded), len(self.label_list)), dtype="float32")
        for rows in tqdm(batches[rank::ranks], desc="teacher logits", unit="batch", dynamic_ncols=True,
                         disable=rank != 0):
            ids, type_ids = Tuple(*self.pads)([encoded[i] for i in rows])
            out[rows] = self.model(paddle.to_tensor(ids), paddle.to_tensor(type_ids)).numpy()
        if ranks > 1:  # every row was filled by one rank, left 0 by the others: the sum is exact
            total = paddle.to_tensor(out)
            paddle.distributed.all_reduce(total)
            out = total.numpy()
        if not np.isfinite(out).all():  # never cache, nor train on, what a damaged teacher gives
            raise InputError(f"{self.params}: the teacher's logits are not finite numbers (damaged weights?)")
        return out
