"""Training: the optimizer, evaluation, the one loop every job runs (fit), its VisualDL logs and
summary.json, and the word students' training on gold labels or on a loss a job gives."""
import contextlib
import glob
import io
import logging
import os
import time

import paddle
from paddlenlp.transformers import LinearDecayWithWarmup
from tqdm import tqdm
from visualdl import LogWriter

from checkpoint import SUMMARY, WEIGHTS, load_state_strict, restore_checkpoint, save_checkpoint
from data import PAD, create_dataloader, segment, vocab_words
from students import (batchify_fn, build_student, parameter_counts, student_config, student_dictionary,
                      student_vocab, to_records)
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
def evaluate(model, loader):
    """Accuracy of model(*inputs) against the last field of each batch."""
    model.eval()
    metric = paddle.metric.Accuracy()
    for *inputs, labels in loader:
        metric.update(metric.compute(model(*inputs), labels))
    model.train()
    return float(metric.accumulate())


# The columns of VisualDL's Hyper Parameters table, in this order: VisualDL puts every hparam before
# the metrics and names a run by its log directory, so the run's name comes first (it says the job:
# alone, distilled, TinyBERT), then the student and its size, and the metrics are in view at 1400 px
# (with 7 settings they were off the screen). Every argument is in best/checkpoint.json.
HPARAMS = ("student", "hidden_size")
# The table's metrics, each the last value logged: the best dev accuracy so far (the checkpoint kept)
# first, then the best checkpoint's accuracy on dev's texts not in train and on every --eval_sets file.
BEST_DEV = "dev/best_acc"


def open_logwriter(args, run, resume):
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
    writer.add_hparams(hparams, [BEST_DEV, "dev_unseen/acc", *(f"{name}/acc" for name, _ in run.eval_sets)])
    return writer


def new_train_state():
    return {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_acc": -1.0, "best_step": 0,
            "evals_since_best": 0, "epoch_seconds": [], "train_seconds": 0.0, "train_examples": 0,
            "dev_acc": []}


def fit(model, optimizer, train_loader, dev_loader, compute_loss, args, run, meta, state=None, extras=(), epochs=None):
    """Train for `epochs` epochs (args.max_epoch unless given; args.max_steps steps at most) in `run`.

    compute_loss(model, batch) returns (loss, {name: term}); each term is logged to VisualDL as
    train/<name> (the loss itself only through its terms, so one tag is one quantity in every job).
    Dev accuracy is measured every args.save_steps steps and after every epoch; the
    checkpoints `last` and `best` in run.output_dir carry `meta` and the train state, so
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
    with open_logwriter(args, run, resume) as writer, bar:
        for epoch in range(state["epoch"], epochs):
            if state["global_step"] >= total_steps or stalled(args, state):
                break
            sampler.set_epoch(epoch, skip_batches=state["step_in_epoch"])
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            start = time.time()
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
                if end_of_epoch:
                    state["epoch_seconds"].append(time.time() - start)
                    state["epoch"], state["step_in_epoch"] = epoch + 1, 0
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
    acc = evaluate(model, dev_loader)
    step = state["global_step"]
    writer.add_scalar("dev/acc", acc, step)
    state["dev_acc"].append([step, acc])
    improved = acc > state["best_acc"]
    if improved:
        state["best_acc"], state["best_step"], state["evals_since_best"] = acc, step, 0
    else:
        state["evals_since_best"] += 1
    writer.add_scalar(BEST_DEV, state["best_acc"], step)
    meta = {**meta, "state": state}
    if improved:
        # summary.json describes best/: remove it before best/ changes (write_summary rewrites it),
        # so the two never disagree, whenever the run is stopped.
        if is_main():
            remove_path(os.path.join(run.output_dir, SUMMARY))
        save_checkpoint(os.path.join(run.output_dir, "best"), model, meta, extras=extras)
    save_checkpoint(os.path.join(run.output_dir, "last"), model, meta, optimizer, extras)
    if is_main():
        logger.info("step %d: dev accuracy %.4f%s", step, acc, " (best so far, saved)" if improved else "")


def write_summary(model, loaders, args, run, state, extra=None):
    """summary.json in run.output_dir: best dev accuracy, each evaluation's [step, dev accuracy],
    timings, `extra` and the best checkpoint's accuracy on every other labelled set: the task's
    other splits (dev_unseen_acc: dev's texts not in train; test_acc: test.tsv) and each of
    run.eval_sets (eval_sets: {name: {file, examples, acc}}), also logged to VisualDL as <name>/acc at
    the best step. Those sets never choose the checkpoint. Rank 0's job."""
    if not is_main():
        return
    summary = {"best_dev_acc": state["best_acc"], "best_step": state["best_step"],
               "epoch_seconds": state["epoch_seconds"], "dev_acc": state["dev_acc"],
               "train_examples_per_second": state["train_examples"] / state["train_seconds"], **(extra or {})}
    held_out = held_out_accuracies(model, loaders, args, run, state["best_step"])
    files = dict(run.eval_sets)
    for split in [name for name in held_out if name not in files]:
        summary[f"{split}_acc"], summary[f"{split}_examples"] = held_out[split], len(loaders[split].dataset)
    if files:
        summary["eval_sets"] = {name: {"file": files[name], "examples": len(loaders[name].dataset),
                                       "acc": held_out[name]} for name in files}
    write_json(os.path.join(run.output_dir, SUMMARY), summary)
    scores = "".join(f", {name} accuracy {acc:.4f}" for name, acc in held_out.items())
    logger.info("best dev accuracy %.4f at step %d%s; checkpoint %s, summary %s, VisualDL logs %s",
                state["best_acc"], state["best_step"], scores, os.path.join(run.output_dir, "best"),
                os.path.join(run.output_dir, SUMMARY), run.logdir)


def held_out_accuracies(model, loaders, args, run, best_step):
    """{name: accuracy of the best checkpoint} on every loader but train and dev."""
    names = [name for name in loaders if name not in ("train", "dev")]
    if not names:
        return {}
    load_state_strict(model, os.path.join(run.output_dir, "best", WEIGHTS))
    accuracies = {name: evaluate(model, loaders[name]) for name in names}
    with open_logwriter(args, run, resume=True) as writer:
        for name, acc in accuracies.items():
            writer.add_scalar(f"{name}/acc", acc, best_step)
    return accuracies


def train_alone(args, run, splits, label_list):
    """Train args.student in `run` on splits["train"]'s gold labels, checkpointing on splits["dev"]."""
    words = {split: segment([ex["text"] for ex in ds]) for split, ds in splits.items()}
    dictionary = student_dictionary(args, run.init_from_ckpt)
    vocab = student_vocab(args, dictionary, words["train"], run.init_from_ckpt)
    pad_id = vocab.to_indices(PAD)
    loaders = {
        split: create_dataloader(to_records(words[split], [ex["label"] for ex in ds], vocab, args),
                                 batchify_fn(pad_id), args.batch_size, shuffle=split == "train", seed=args.seed)
        for split, ds in splits.items() if ds[0]["label"] is not None
    }
    train_student(args, run, loaders, vocab, label_list)


def train_student(args, run, loaders, vocab, label_list, compute_loss=ce_loss, summary=None):
    """Train args.student in `run` on loaders["train"] with compute_loss, checkpointing on dev accuracy;
    `summary` joins summary.json. Returns the train state."""
    # Fresh parameter names, so optimizer state saved by one run loads into another.
    # Seeded here too, so the initialisation does not depend on what ran before (a loaded teacher).
    paddle.seed(args.seed)
    with paddle.utils.unique_name.guard():
        config = student_config(args, vocab, len(label_list))
        model = build_student(config)
        optimizer = create_optimizer(args, model, total_train_steps(args, len(loaders["train"])))
        meta = {"args": vars(args), "model": config, "labels": label_list, "vocab": vocab_words(vocab)}
        state = None
        if run.init_from_ckpt:
            state = restore_checkpoint(run.init_from_ckpt, model, optimizer, label_list, "student")["state"]
        parameters = parameter_counts(model)
        logger.info("%s: %d words, %d classes, %d parameters (%d in the embedding); output in %s", args.student,
                    len(vocab), len(label_list), sum(parameters.values()), parameters["embedding"], run.output_dir)
        state = fit(model, optimizer, loaders["train"], loaders["dev"], compute_loss, args, run, meta, state)
        write_summary(model, loaders, args, run, state, {**(summary or {}), "parameters": parameters})
    return state
