"""Training: the optimizer, evaluation, the one loop every job runs (fit), its VisualDL logs and
summary.json, and the word students' training on gold labels or on a loss a job gives."""
import contextlib
import glob
import io
import logging
import os
import time

import numpy as np
import paddle
from paddlenlp.transformers import LinearDecayWithWarmup
from tqdm import tqdm
from visualdl import LogWriter

from checkpoint import SUMMARY, WEIGHTS, load_state_strict, restore_checkpoint, save_checkpoint
from data import PAD, create_dataloader, is_pair, positive_class, segment, vocab_words
from students import (batchify_fn, build_student, init_embeddings, parameter_counts, student_config,
                      student_dictionary, student_vocab, to_records, word_counts)
from utils import is_main, remove_path, world, write_json

logger = logging.getLogger("distill_lstm")


class NullWriter:
    """What the other ranks log to: nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_scalar(self, *args, **kwargs):
        pass


def create_optimizer(args, model, total_steps):
    """Adam, AdamW or Adadelta with global-norm clipping; the linear schedule warms up over
    warmup_proportion of total_steps, then decays to 0."""
    clip = paddle.nn.ClipGradByGlobalNorm(args.max_grad_norm) if args.max_grad_norm > 0 else None
    lr = args.lr
    if args.lr_schedule == "linear":
        lr = LinearDecayWithWarmup(args.lr, total_steps, args.warmup_proportion)
    if args.optimizer == "adam":
        return paddle.optimizer.Adam(lr, parameters=model.parameters(), grad_clip=clip)
    if args.optimizer == "adamw":
        decayed = {p.name for n, p in model.named_parameters() if not any(k in n for k in ("bias", "norm"))}
        return paddle.optimizer.AdamW(lr, parameters=model.parameters(), weight_decay=args.weight_decay,
                                      apply_decay_param_fun=lambda name: name in decayed, grad_clip=clip)
    return paddle.optimizer.Adadelta(lr, rho=0.95, epsilon=1e-6, parameters=model.parameters(),
                                     grad_clip=clip)


def total_train_steps(args, steps_per_epoch, epochs=None):
    steps = steps_per_epoch * (args.max_epoch if epochs is None else epochs)
    return min(steps, args.max_steps) if args.max_steps else steps


def ce_loss(model, batch):
    """Cross-entropy of model(*inputs) against the batch's last field, the gold labels."""
    *inputs, labels = batch
    loss = paddle.nn.functional.cross_entropy(model(*inputs), labels)
    return loss, {"ce": loss}


@paddle.no_grad()
def evaluate(model, loader, positive=None):
    """{"acc": accuracy of model(*inputs) against the last field of each batch}, and "f1", the F1 of class
    `positive`, unless it is None."""
    model.eval()
    confusion = 0
    for *inputs, labels in loader:
        logits = model(*inputs)
        confusion = confusion + confusion_matrix(logits.argmax(axis=-1).numpy(), labels.numpy().reshape(-1),
                                                 logits.shape[-1])
    model.train()
    return scores(confusion, positive)


def confusion_matrix(predicted, gold, num_classes):
    """Counts [gold class, predicted class]: what scores() reads, summed over batches in constant memory."""
    return np.bincount(np.asarray(gold) * num_classes + np.asarray(predicted),
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(confusion, positive=None):
    """{"acc"} of a confusion matrix, and "f1", the F1 of class `positive` (2 TP / (predicted positives + gold
    positives); 0 when both are none), unless it is None."""
    metrics = {"acc": float(np.trace(confusion) / max(int(confusion.sum()), 1))}
    if positive is not None:
        total = int(confusion[positive].sum() + confusion[:, positive].sum())
        metrics["f1"] = 2 * int(confusion[positive, positive]) / total if total else 0.0
    return metrics


def f1_class(meta):
    """The class a run reports the F1 of (data.positive_class), from its checkpoint metadata."""
    return positive_class(meta["labels"], meta.get("pairs", False))


# The columns of VisualDL's Hyper Parameters table, in this order: VisualDL puts every hparam before
# the metrics and names a run by its log directory, so the run's name comes first (it says the job:
# alone, distilled, TinyBERT), then the student and its size, and the metrics are in view at 1400 px
# (with 7 settings they were off the screen). Every argument is in best/checkpoint.json.
HPARAMS = ("student", "hidden_size")
# The table's metrics, each the last value logged: the best dev accuracy so far (the checkpoint kept)
# first, then the best checkpoint's accuracy on dev's texts not in train and on every --eval_sets file; a
# task with an F1 (data.positive_class) adds the best checkpoint's F1 on each.
BEST_DEV = "dev/best_acc"


def open_logwriter(args, run, resume, f1=False):
    """A VisualDL writer named run.name, with the run's hyper-parameters (VisualDL's HParams tab
    compares runs by them); a resumed run appends to the newest log in run.logdir. Ranks other than 0
    log nothing."""
    if not is_main():
        return NullWriter()
    logs = sorted(glob.glob(os.path.join(run.logdir, "vdlrecords.*.log")), key=os.path.getmtime)
    if resume and logs:
        with contextlib.redirect_stdout(io.StringIO()):  # VisualDL prints "... is exists, VisualDL will add logs to it."
            return LogWriter(logdir=run.logdir, file_name=os.path.basename(logs[-1]), display_name=run.name)
    writer = LogWriter(logdir=run.logdir, display_name=run.name)
    hparams = {"run": run.name, **{k: getattr(args, k) for k in HPARAMS if getattr(args, k, None) is not None}}
    metrics = ("acc", "f1") if f1 else ("acc",)
    sets = ["dev_unseen", *(name for name, _ in run.eval_sets)]
    writer.add_hparams(hparams, [BEST_DEV, *(["dev/best_f1"] if f1 else []),
                                 *(f"{name}/{metric}" for name in sets for metric in metrics)])
    return writer


def new_train_state():
    return {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_acc": -1.0, "best_step": 0,
            "evals_since_best": 0, "epoch_seconds": [], "seconds_in_epoch": 0.0, "train_seconds": 0.0,
            "train_examples": 0, "dev_acc": [], "best_f1": None, "dev_f1": []}


def fit(model, optimizer, train_loader, dev_loader, compute_loss, args, run, meta, state=None, extras=(), epochs=None):
    """Train for `epochs` epochs (args.max_epoch unless given; args.max_steps steps at most) in `run`.

    compute_loss(model, batch) returns (loss, {name: term}); each term is logged to VisualDL as
    train/<name> (the loss itself only through its terms, so one tag is one quantity in every job).
    Dev accuracy (and F1 on a task with one: f1_class) is measured every args.save_steps steps and after
    every epoch; the best accuracy chooses the checkpoint. The checkpoints `last` and `best` in
    run.output_dir carry `meta` and the train state, so
    --init_from_ckpt continues from the step it was saved at. Training stops early after
    args.early_stop_patience evaluations without a better dev accuracy. Returns the train state."""
    resume = state is not None
    state = {**new_train_state(), **(state or {})}  # a checkpoint older than a state field gets its default
    rank, size = world()
    # Under the launcher, gradients are averaged over the ranks, each on its share of every batch.
    train_model = paddle.DataParallel(model) if size > 1 else model
    sampler = train_loader.batch_sampler
    steps_per_epoch = len(sampler.batches())
    epochs = args.max_epoch if epochs is None else epochs
    total_steps = total_train_steps(args, steps_per_epoch, epochs)
    # One bar over the run's steps, as HF's Trainer shows: its ETA is the run's, the epoch in its description.
    bar = tqdm(total=total_steps, initial=state["global_step"], unit="step", dynamic_ncols=True, disable=rank != 0)
    with open_logwriter(args, run, resume, f1_class(meta) is not None) as writer, bar:
        for epoch in range(state["epoch"], epochs):
            if state["global_step"] >= total_steps or stalled(args, state):
                break
            sampler.set_epoch(epoch, skip_batches=state["step_in_epoch"])
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            start = time.time() - state["seconds_in_epoch"]  # a resumed epoch counts its time before the stop
            tick = time.time()  # train_seconds counts loading and steps, not evaluation
            for batch in train_loader:
                loss, terms = compute_loss(train_model, batch)
                loss.backward()
                optimizer.step()
                optimizer.clear_grad()
                if isinstance(optimizer._learning_rate, paddle.optimizer.lr.LRScheduler):
                    optimizer._learning_rate.step()  # as paddle.Model does; saved in the optimizer's state
                state["train_seconds"] += time.time() - tick
                state["global_step"] += 1
                state["step_in_epoch"] += 1
                state["train_examples"] += len(batch[-1]) * size  # every rank's share
                step = state["global_step"]
                bar.update()
                if step % args.log_freq == 0:
                    bar.set_postfix(loss=f"{float(loss):.4f}")
                    for name, value in terms.items():  # one tag per quantity, never a job's mix
                        writer.add_scalar(f"train/{name}", float(value), step)
                    writer.add_scalar("train/lr", optimizer.get_lr(), step)
                end_of_epoch = state["step_in_epoch"] == steps_per_epoch
                state["seconds_in_epoch"] = time.time() - start
                if end_of_epoch:
                    state["epoch_seconds"].append(state["seconds_in_epoch"])
                    state["epoch"], state["step_in_epoch"], state["seconds_in_epoch"] = epoch + 1, 0, 0.0
                if end_of_epoch or step % args.save_steps == 0 or step == total_steps:
                    evaluate_and_save(model, optimizer, dev_loader, writer, run, meta, state, extras)
                if step == total_steps or stalled(args, state):
                    break
                tick = time.time()
    if stalled(args, state):
        logger.info("early stop at step %d: no better dev accuracy in %d evaluations",
                    state["global_step"], state["evals_since_best"])
    elif state["global_step"] == args.max_steps and args.max_steps < steps_per_epoch * epochs:
        logger.info("stopped at step %d by --max_steps, in epoch %d of %d", args.max_steps,
                    state["epoch"] + (state["step_in_epoch"] > 0), epochs)
    return state


def stalled(args, state):
    return 0 < args.early_stop_patience <= state["evals_since_best"]


def evaluate_and_save(model, optimizer, dev_loader, writer, run, meta, state, extras=()):
    metrics = evaluate(model, dev_loader, f1_class(meta))
    acc, step = metrics["acc"], state["global_step"]
    for name, value in metrics.items():
        writer.add_scalar(f"dev/{name}", value, step)
        state[f"dev_{name}"].append([step, value])
    improved = acc > state["best_acc"]
    if improved:
        state["best_acc"], state["best_step"], state["evals_since_best"] = acc, step, 0
        state["best_f1"] = metrics.get("f1")
    else:
        state["evals_since_best"] += 1
    writer.add_scalar(BEST_DEV, state["best_acc"], step)
    if "f1" in metrics:
        writer.add_scalar("dev/best_f1", state["best_f1"], step)  # the F1 of the checkpoint kept
    meta = {**meta, "state": state}
    if improved:
        # summary.json describes best/: remove it before best/ changes (write_summary rewrites it),
        # so the two never disagree, whenever the run is stopped.
        if is_main():
            remove_path(os.path.join(run.output_dir, SUMMARY))
        save_checkpoint(os.path.join(run.output_dir, "best"), model, meta, extras=extras)
    save_checkpoint(os.path.join(run.output_dir, "last"), model, meta, optimizer, extras)
    if is_main():
        f1 = f", F1 {metrics['f1']:.4f}" if "f1" in metrics else ""
        logger.info("step %d: dev accuracy %.4f%s%s", step, acc, f1, " (best so far, saved)" if improved else "")


def write_summary(model, loaders, args, run, state, meta, extra=None):
    """summary.json in run.output_dir: best dev accuracy, each evaluation's [step, dev accuracy],
    timings, `extra` and the best checkpoint's accuracy on every other labelled set: the task's
    other splits (dev_unseen_acc: dev's texts not in train; test_acc: test.tsv) and each of
    run.eval_sets (eval_sets: {name: {file, examples, acc}}), also logged to VisualDL as <name>/acc at
    the best step. Those sets never choose the checkpoint. A task with an F1 (f1_class) has the F1
    beside each accuracy: best_dev_f1 (the best checkpoint's), dev_f1, dev_unseen_f1, ... Rank 0's job."""
    if not is_main():
        return
    f1 = f1_class(meta) is not None
    summary = {"best_dev_acc": state["best_acc"], **({"best_dev_f1": state["best_f1"]} if f1 else {}),
               "best_step": state["best_step"], "epoch_seconds": state["epoch_seconds"], "dev_acc": state["dev_acc"],
               **({"dev_f1": state["dev_f1"]} if f1 else {}),
               "train_examples_per_second": state["train_examples"] / state["train_seconds"], **(extra or {})}
    held_out = held_out_metrics(model, loaders, args, run, meta, state["best_step"])
    files = dict(run.eval_sets)
    for split in [name for name in held_out if name not in files]:
        summary.update({f"{split}_{metric}": value for metric, value in held_out[split].items()})
        summary[f"{split}_examples"] = len(loaders[split].dataset)
    if files:
        summary["eval_sets"] = {name: {"file": files[name], "examples": len(loaders[name].dataset),
                                       **held_out[name]} for name in files}
    write_json(os.path.join(run.output_dir, SUMMARY), summary)
    best = f"best dev accuracy {state['best_acc']:.4f}" + (f", F1 {state['best_f1']:.4f}" if f1 else "")
    scores = "".join(f", {name} " + ", ".join(f"{'accuracy' if m == 'acc' else m.upper()} {v:.4f}"
                                               for m, v in metrics.items()) for name, metrics in held_out.items())
    logger.info("%s at step %d%s; checkpoint %s, summary %s, VisualDL logs %s",
                best, state["best_step"], scores, os.path.join(run.output_dir, "best"),
                os.path.join(run.output_dir, SUMMARY), run.logdir)


def held_out_metrics(model, loaders, args, run, meta, best_step):
    """{name: evaluate()'s metrics of the best checkpoint} on every loader but train and dev."""
    names = [name for name in loaders if name not in ("train", "dev")]
    if not names:
        return {}
    load_state_strict(model, os.path.join(run.output_dir, "best", WEIGHTS))
    positive = f1_class(meta)
    held_out = {name: evaluate(model, loaders[name], positive) for name in names}
    with open_logwriter(args, run, resume=True) as writer:
        for name, metrics in held_out.items():
            for metric, value in metrics.items():
                writer.add_scalar(f"{name}/{metric}", value, best_step)
    return held_out


def train_alone(args, run, splits, label_list):
    """Train args.student in `run` on splits["train"]'s gold labels, checkpointing on splits["dev"]."""
    words = {split: segment([ex["text"] for ex in ds]) for split, ds in splits.items()}
    dictionary = student_dictionary(args, run.init_from_ckpt)
    vocab = student_vocab(args, dictionary, words["train"], run.init_from_ckpt)
    pairs = is_pair(splits["train"])
    loaders = {
        split: create_dataloader(to_records(words[split], [ex["label"] for ex in ds], vocab, args),
                                 batchify_fn(vocab.to_indices(PAD), pairs), args.batch_size,
                                 shuffle=split == "train", seed=args.seed)
        for split, ds in splits.items() if ds[0]["label"] is not None
    }
    train_student(args, run, loaders, vocab, label_list, pairs)


def train_student(args, run, loaders, vocab, label_list, pairs, compute_loss=ce_loss, summary=None):
    """Train args.student in `run` on loaders["train"] with compute_loss, checkpointing on dev accuracy;
    `summary` joins summary.json. Returns the train state."""
    # Fresh parameter names, so optimizer state saved by one run loads into another.
    # Seeded here too, so the initialisation does not depend on what ran before (a loaded teacher).
    paddle.seed(args.seed)
    with paddle.utils.unique_name.guard():
        config = student_config(args, vocab, len(label_list), pairs)
        model = build_student(config)
        meta = {"args": vars(args), "model": config, "labels": label_list, "pairs": pairs, "vocab": vocab_words(vocab)}
        if args.init_embeddings and not run.init_from_ckpt:  # a resumed run's weights are its checkpoint's
            counts = word_counts(loaders["train"].dataset, len(vocab), pairs)
            meta["init_embeddings"] = init_embeddings(model.embedder, vocab, args.init_embeddings, counts,
                                                      args.init_scale)
        optimizer = create_optimizer(args, model, total_train_steps(args, len(loaders["train"])))
        state = None
        if run.init_from_ckpt:
            resumed = restore_checkpoint(run.init_from_ckpt, model, optimizer, label_list, pairs, "student",
                                         meta["args"])
            state = resumed["state"]
            if "init_embeddings" in resumed:  # what the run started from, still recorded
                meta["init_embeddings"] = resumed["init_embeddings"]
        parameters = parameter_counts(model)
        logger.info("%s: %d words, %d classes, %d parameters (%d in the embedding); output in %s", args.student,
                    len(vocab), len(label_list), sum(parameters.values()), parameters["embedding"], run.output_dir)
        state = fit(model, optimizer, loaders["train"], loaders["dev"], compute_loss, args, run, meta, state)
        write_summary(model, loaders, args, run, state, meta, {**(summary or {}), "parameters": parameters})
    return state
