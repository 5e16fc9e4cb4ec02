"""The run directory and the checkpoint format: claiming --output_dir, saving and reading checkpoints,
resuming a run where it stopped (weights, optimizer and random state)."""
import contextlib
import glob
import json
import logging
import os
import pickle
import random
from dataclasses import dataclass
from typing import Optional

import filelock
import numpy as np
import paddle

from data import texts_kind
from utils import (InputError, absolute_dirs_to_create, approx_bytes, atomic_path, file_sha256, gathered, is_main,
                   make_writable_dir, paddlenlp_quiet, recover_interrupted_swap, remove_empty_dirs, remove_path, world)

logger = logging.getLogger("distill_lstm")


WEIGHTS, OPTIMIZER, META = "model_state.pdparams", "model_state.pdopt", "checkpoint.json"


RNG_STATE = "rng_state.pkl"


LOCK = ".distill_lstm.lock"


SUMMARY = "summary.json"


@dataclass(frozen=True)
class Run:
    """Where a training run writes and what it reports: --output_dir (best/, last/, summary.json), --logdir and
    --run_name (VisualDL), the --init_from_ckpt it continues, whether --overwrite_output_dir replaces a previous
    run there, and the --eval_sets its summary scores. A job that trains a part of itself apart (TinyBERT's
    stage 1, each label-cleaning fold) gives that part a Run of its own, never a patched copy of the flags."""
    output_dir: str
    logdir: str
    name: str
    init_from_ckpt: Optional[str] = None
    overwrite: bool = False
    eval_sets: tuple = ()  # (name, file) pairs

    @classmethod
    def of(cls, args):
        """The run the command line describes."""
        return cls(args.output_dir, args.logdir, args.run_name, args.init_from_ckpt, args.overwrite_output_dir,
                   tuple(args.eval_sets))


@contextlib.contextmanager
def claimed_output_dir(run):
    """Hold run.output_dir for one training run.

    A directory that already holds files is another run's: it is refused unless the user says
    --overwrite_output_dir (the run's own outputs are removed; other files stay) or
    --init_from_ckpt (the run continues there). A lock file keeps a second run out while this
    one lives (the kernel drops it when the process dies, even by kill -9). Interrupted
    checkpoint saves are completed or cleaned. If the run fails, directories it created and
    left empty are removed, so a bad input leaves nothing behind. Under the launcher, rank 0 alone
    holds it (the others only read checkpoints)."""
    if not is_main():
        yield
        return
    created = absolute_dirs_to_create(run.output_dir, run.logdir)
    try:
        make_writable_dir(run.output_dir)
    except InputError:
        remove_empty_dirs(created)
        raise
    lock = filelock.FileLock(os.path.join(run.output_dir, LOCK), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise InputError(f"{run.output_dir}: another run is writing there (it holds {lock.lock_file}); "
                         "wait for it to end or choose another --output_dir")
    try:
        for name in ("best", "last", SUMMARY):
            recover_interrupted_swap(os.path.join(run.output_dir, name))
        previous = sorted(set(os.listdir(run.output_dir)) - {LOCK})
        if run.overwrite:
            remove_run_outputs(run)
        elif previous and not run.init_from_ckpt:
            last = os.path.join(run.output_dir, "last")
            resume = f"resume it with --init_from_ckpt {last}, " if os.path.isdir(last) else "it has no checkpoint; "
            raise InputError(f"{run.output_dir}: already holds {', '.join(previous[:4])}"
                             f"{' ...' if len(previous) > 4 else ''}; {resume}replace it with "
                             "--overwrite_output_dir, or choose another --output_dir")
        make_writable_dir(run.logdir)
        yield
    except BaseException:
        lock.release()
        remove_empty_dirs(created)  # the log directory, if it stayed empty
        if os.path.abspath(run.output_dir) in created and os.listdir(run.output_dir) == [LOCK]:
            os.remove(lock.lock_file)
            remove_empty_dirs(created)
        raise
    lock.release()


def remove_run_outputs(run):
    """--overwrite_output_dir: the previous run's checkpoints, summary and VisualDL records."""
    for name in ("best", "last", SUMMARY):
        remove_path(os.path.join(run.output_dir, name))
    for log in glob.glob(os.path.join(run.logdir, "**", "vdlrecords.*.log"), recursive=True):
        os.remove(log)


def save_checkpoint(path, model, meta, optimizer=None, extras=()):
    """A checkpoint directory: weights (a save_pretrained directory for PaddleNLP models),
    checkpoint.json (meta), whatever `extras` (a tokenizer) save_pretrained and, for resuming
    (with an optimizer), the optimizer state and the random generators' states (every rank's).
    Every rank calls it; rank 0 writes."""
    rng_states = gathered(rng_state()) if optimizer is not None else None
    if not is_main():
        return
    size = approx_bytes([model.state_dict(), optimizer.state_dict() if optimizer is not None else {}])
    with atomic_path(path, f"the checkpoint {os.path.basename(path)}/", size) as tmp:
        os.makedirs(tmp)
        with paddlenlp_quiet():  # it logs every file it writes
            if hasattr(model, "save_pretrained"):
                model.save_pretrained(tmp)  # config + model_state.pdparams
            else:
                paddle.save(model.state_dict(), os.path.join(tmp, WEIGHTS))
            for extra in extras:
                extra.save_pretrained(tmp)
        if optimizer is not None:
            paddle.save(optimizer.state_dict(), os.path.join(tmp, OPTIMIZER))
            with open(os.path.join(tmp, RNG_STATE), "wb") as f:
                pickle.dump(rng_states, f)
        # the weights' identity, so a teacher directory without them still names the logits cached from it
        meta = {**meta, "weights_sha256": file_sha256(os.path.join(tmp, WEIGHTS))}
        with open(os.path.join(tmp, META), "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)


def rng_state():
    """Every random generator training draws from (Paddle's dropout and word dropout; numpy's
    and Python's for completeness), so a resumed run draws what the uninterrupted one would."""
    devices = {"cpu", paddle.device.get_device().split(":")[0]}
    return {"paddle": {d: paddle.get_rng_state(d) for d in devices}, "numpy": np.random.get_state(),
            "python": random.getstate()}


def set_rng_state(state):
    for device, device_state in state["paddle"].items():
        paddle.set_rng_state(device_state, device)
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def read_checkpoint_meta(path):
    recover_interrupted_swap(path)  # a save killed between its two renames leaves no `path` yet
    meta_path = os.path.join(path, META)
    if not os.path.isfile(meta_path):
        raise InputError(f"{path}: not a checkpoint directory (no checkpoint.json)")
    try:
        with open(meta_path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{meta_path}: unreadable checkpoint metadata ({e})")


def checkpoint_kind(meta):
    """'student' (any of students.py, trained alone or distilled) or 'teacher', from a checkpoint's metadata."""
    return "student" if "vocab" in meta else "teacher"


def require_kind(path, meta, kind):
    if checkpoint_kind(meta) != kind:
        raise InputError(f"{path}: a {checkpoint_kind(meta)} checkpoint, where a {kind} one is needed")


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


def check_labels(path, meta, label_list):
    if meta["labels"] != label_list:
        raise InputError(f"{path}: trained on labels {meta['labels']}, the data has {label_list}")


def check_task(path, meta, label_list, pairs):
    """A checkpoint of the data's task: the same labels, and pairs (text_a, text_b) where the data has pairs."""
    check_labels(path, meta, label_list)
    trained = meta.get("pairs", False)  # checkpoints from before pair tasks read single texts
    if trained != pairs:
        raise InputError(f"{path}: trained on {texts_kind(trained)}, the data has {texts_kind(pairs)}")


# What a step does and which examples it reads (with --batch_size): resumed with other values, a run would
# silently become another run (the optimizer's schedule is rebuilt from the new flags; only its step is restored).
SCHEDULE_FLAGS = ("optimizer", "lr", "lr_schedule", "warmup_proportion", "weight_decay", "max_grad_norm", "seed",
                  "max_seq_length")


def schedule_changes(saved, now, processes=(1, 1)):
    """The schedule flags that a run with flags `now` changes from one saved with `saved` (its checkpoint's
    args), as "--flag saved (now value)". The batch that counts is --batch_size times the processes (`processes`:
    the saved run's and this one's; each reads its share). A longer run is no change at a constant learning
    rate; a linear schedule would restart its warm-up and decay midway (Paddle restores the scheduler's step,
    not its length)."""
    flags = SCHEDULE_FLAGS + (("max_epoch", "max_steps") if now.get("lr_schedule") == "linear" else ())
    changed = [f"--{flag} {saved[flag]} (now {now[flag]})" for flag in flags
               if flag in saved and flag in now and saved[flag] != now[flag]]
    before, after = saved.get("batch_size"), now.get("batch_size")
    if before and after and before * processes[0] != after * processes[1]:
        changed.append(f"--batch_size {before} (now {after})" if processes == (1, 1) else
                       f"--batch_size {before} in {processes[0]} processes (now {after} in {processes[1]})")
    return changed


def saved_rng_states(path):
    """The random states saved at `path`, one per process that trained the run (save_checkpoint writes a list
    under the launcher, the state itself in one process); None for a checkpoint from before they were kept."""
    rng_path = os.path.join(path, RNG_STATE)
    if not os.path.isfile(rng_path):
        return None
    with open(rng_path, "rb") as f:
        states = pickle.load(f)
    return states if isinstance(states, list) else [states]


def resumable_meta(path, label_list, pairs, kind, args):
    """The metadata of a last/ checkpoint a run of this task and kind, with training flags `args` (what its
    checkpoints record), can resume from; refused otherwise."""
    meta = read_checkpoint_meta(path)
    require_kind(path, meta, kind)
    check_task(path, meta, label_list, pairs)
    if not os.path.isfile(os.path.join(path, OPTIMIZER)):
        raise InputError(f"{path}: holds weights only (best/ does); resume from the run's last/")
    states = saved_rng_states(path)
    changed = schedule_changes(meta.get("args", {}), args, (len(states) if states else 1, world()[1]))
    if changed:
        raise InputError(f"{path}: saved by a run with {', '.join(changed)}; resume it with the flags it was "
                         "started with, or start a new run in another --output_dir")
    return meta


def restore_checkpoint(path, model, optimizer, label_list, pairs, kind, args):
    """Resume from a last/ checkpoint of the same task, kind and schedule (`args`, the flags the run records):
    model, optimizer and random state; return its metadata."""
    meta = resumable_meta(path, label_list, pairs, kind, args)
    load_state_strict(model, os.path.join(path, WEIGHTS))
    optimizer.set_state_dict(load_paddle_file(os.path.join(path, OPTIMIZER)))
    states = saved_rng_states(path)
    rank, size = world()
    if states is None:  # saved before checkpoints kept it
        logger.warning("%s: no random state saved; dropout will draw differently from an uninterrupted run", path)
    elif len(states) == size:
        set_rng_state(states[rank])
    else:
        logger.warning("%s: saved by another number of processes; dropout will draw differently",
                       os.path.join(path, RNG_STATE))
    logger.info("resumed from %s at step %d", path, meta["state"]["global_step"])
    return meta
