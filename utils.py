"""Example-to-id conversion and the helpers the three scripts share: runtime set-up,
atomic checkpoints, evaluation and the training loop."""
import contextlib
import glob
import json
import logging
import os
import random
import shutil
import sys
import time

import numpy as np
import paddle
from tqdm import tqdm
from visualdl import LogWriter

logger = logging.getLogger("distill_lstm")


class InputError(ValueError):
    """Bad input (data, vocabulary, checkpoint): the message names the file and line."""


def run_main(main):
    """Run a script's main; bad input ends it with one line on stderr and exit code 2."""
    try:
        main()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def init_runtime(args):
    logger.setLevel(logging.INFO)  # printed through the handler paddlenlp installs on import
    paddle.set_device(args.device)
    # Paddle pins its CPU kernels to one thread unless told otherwise.
    paddle.base.core.set_num_threads(args.num_threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    paddle.seed(args.seed)


def convert_example(words, vocab, max_seq_length):
    """(word ids, length) of a segmented sentence, truncated to max_seq_length words."""
    ids = vocab.to_indices(words[:max_seq_length])
    return ids, len(ids)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; it becomes `path` only if the block succeeds."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        yield tmp
        if os.path.isdir(tmp) and os.path.isdir(path):
            old = f"{path}.old{os.getpid()}"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def save_checkpoint(path, model, optimizer, meta):
    """A checkpoint directory: model.pdparams, model.pdopt and checkpoint.json (meta)."""
    with atomic_path(path) as tmp:
        os.makedirs(tmp)
        paddle.save(model.state_dict(), os.path.join(tmp, "model.pdparams"))
        paddle.save(optimizer.state_dict(), os.path.join(tmp, "model.pdopt"))
        with open(os.path.join(tmp, "checkpoint.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)


def read_checkpoint_meta(path):
    meta_path = os.path.join(path, "checkpoint.json")
    if not os.path.isfile(meta_path):
        raise InputError(f"{path}: not a checkpoint directory (no checkpoint.json)")
    try:
        with open(meta_path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{meta_path}: unreadable checkpoint metadata ({e})")


def load_paddle_file(path):
    """A state dict saved by paddle.save, or an InputError naming the file."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such checkpoint file")
    try:
        state = paddle.load(path)
    except Exception as e:
        raise InputError(f"{path}: not a Paddle checkpoint ({e})")
    if not isinstance(state, dict):
        raise InputError(f"{path}: not a Paddle state dict")
    return state


def load_state_strict(layer, path):
    """Load weights, refusing missing, unexpected or mis-shaped tensors (Paddle only warns)."""
    state = load_paddle_file(path)
    expected = {k: list(v.shape) for k, v in layer.state_dict().items()}
    found = {k: list(v.shape) for k, v in state.items()}
    if expected != found:
        problems = [f"missing {k}" for k in expected.keys() - found.keys()]
        problems += [f"unexpected {k}" for k in found.keys() - expected.keys()]
        problems += [f"{k} has shape {found[k]}, the model wants {expected[k]}"
                     for k in expected.keys() & found.keys() if expected[k] != found[k]]
        raise InputError(f"{path}: does not fit the model: " + "; ".join(sorted(problems)[:5]))
    layer.set_state_dict(state)


def restore_checkpoint(path, model, optimizer):
    """Load model and optimizer from a checkpoint directory; return its metadata."""
    meta = read_checkpoint_meta(path)
    load_state_strict(model, os.path.join(path, "model.pdparams"))
    optimizer.set_state_dict(load_paddle_file(os.path.join(path, "model.pdopt")))
    logger.info("resumed from %s at step %d", path, meta["state"]["global_step"])
    return meta


@paddle.no_grad()
def evaluate(model, loader):
    """Accuracy of model(*inputs) against the last field of each batch."""
    model.eval()
    metric = paddle.metric.Accuracy()
    for *inputs, labels in loader:
        metric.update(metric.compute(model(*inputs), labels))
    model.train()
    return float(metric.accumulate())


def open_logwriter(logdir, resume):
    """A VisualDL writer; a resumed run appends to the newest log in logdir."""
    logs = sorted(glob.glob(os.path.join(logdir, "vdlrecords.*.log")), key=os.path.getmtime)
    if resume and logs:
        return LogWriter(logdir=logdir, file_name=os.path.basename(logs[-1]))
    return LogWriter(logdir=logdir)


def new_train_state():
    return {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_acc": -1.0, "best_step": 0,
            "epoch_seconds": [], "train_seconds": 0.0, "train_examples": 0}


def fit(model, optimizer, train_loader, dev_loader, compute_loss, args, meta, state=None):
    """Train for args.max_epoch epochs.

    compute_loss(model, batch) returns (loss, {name: term}); each term is logged to VisualDL.
    Dev accuracy is measured every args.save_steps steps and after every epoch; the
    checkpoints `last` and `best` in args.output_dir carry `meta` and the train state, so
    --init_from_ckpt continues from the step it was saved at. Returns the train state."""
    resume = state is not None
    state = state or new_train_state()
    sampler = train_loader.batch_sampler
    steps_per_epoch = len(sampler.batches())
    os.makedirs(args.output_dir, exist_ok=True)
    with open_logwriter(args.logdir, resume) as writer:
        for epoch in range(state["epoch"], args.max_epoch):
            sampler.set_epoch(epoch, skip_batches=state["step_in_epoch"])
            start = time.time()
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{args.max_epoch}", unit="batch",
                       initial=state["step_in_epoch"], total=steps_per_epoch, dynamic_ncols=True)
            tick = time.time()  # train_seconds counts loading and steps, not evaluation
            for batch in bar:
                loss, terms = compute_loss(model, batch)
                loss.backward()
                optimizer.step()
                optimizer.clear_grad()
                if isinstance(optimizer._learning_rate, paddle.optimizer.lr.LRScheduler):
                    optimizer._learning_rate.step()  # as paddle.Model does; saved in the optimizer's state
                state["train_seconds"] += time.time() - tick
                state["global_step"] += 1
                state["step_in_epoch"] += 1
                state["train_examples"] += len(batch[-1])
                step = state["global_step"]
                if step % args.log_freq == 0:
                    bar.set_postfix(loss=f"{float(loss):.4f}")
                    writer.add_scalar("train/loss", float(loss), step)
                    for name, value in terms.items():
                        writer.add_scalar(f"train/{name}", float(value), step)
                    writer.add_scalar("train/lr", optimizer.get_lr(), step)
                end_of_epoch = state["step_in_epoch"] == steps_per_epoch
                if end_of_epoch:
                    state["epoch_seconds"].append(time.time() - start)
                    state["epoch"], state["step_in_epoch"] = epoch + 1, 0
                if end_of_epoch or step % args.save_steps == 0:
                    evaluate_and_save(model, optimizer, dev_loader, writer, args, meta, state)
                tick = time.time()
            bar.close()
    return state


def evaluate_and_save(model, optimizer, dev_loader, writer, args, meta, state):
    acc = evaluate(model, dev_loader)
    step = state["global_step"]
    writer.add_scalar("dev/acc", acc, step)
    improved = acc > state["best_acc"]
    if improved:
        state["best_acc"], state["best_step"] = acc, step
        save_checkpoint(os.path.join(args.output_dir, "best"), model, optimizer, {**meta, "state": state})
    save_checkpoint(os.path.join(args.output_dir, "last"), model, optimizer, {**meta, "state": state})
    logger.info("step %d: dev accuracy %.4f%s", step, acc, " (best so far, saved)" if improved else "")


def write_summary(model, loaders, args, state):
    """summary.json in output_dir: best dev accuracy, timings and, when test.tsv has labels,
    the best checkpoint's test accuracy."""
    summary = {"best_dev_acc": state["best_acc"], "best_step": state["best_step"],
               "epoch_seconds": state["epoch_seconds"],
               "train_examples_per_second": state["train_examples"] / state["train_seconds"]}
    if "test" in loaders:
        load_state_strict(model, os.path.join(args.output_dir, "best", "model.pdparams"))
        summary["test_acc"] = evaluate(model, loaders["test"])
    write_json(os.path.join(args.output_dir, "summary.json"), summary)
    logger.info("best dev accuracy %.4f at step %d%s; checkpoint %s, VisualDL logs %s",
                state["best_acc"], state["best_step"],
                f", its test accuracy {summary['test_acc']:.4f}" if "test_acc" in summary else "",
                os.path.join(args.output_dir, "best"), args.logdir)
