"""Example-to-id conversion and the helpers the three scripts share: runtime set-up,
the output directory, atomic checkpoints, evaluation and the training loop."""
import contextlib
import errno
import glob
import hashlib
import json
import logging
import math
import os
import pickle
import random
import re
import shutil
import sys
import time

import filelock
import numpy as np
import paddle
from paddlenlp.transformers import LinearDecayWithWarmup
from paddlenlp.utils.log import logger as paddlenlp_logger
from tqdm import tqdm
from visualdl import LogWriter

logger = logging.getLogger("distill_lstm")


class InputError(ValueError):
    """Bad input (data, vocabulary, checkpoint), or a full disk: the message names the file and line,
    or the directory."""


def run_main(main):
    """Run a script's main; bad input ends it with one line on stderr and exit code 2. Under the
    launcher the ranks end together: one leaving while rank 0 still writes (or the other way
    round) can abort the other's exit."""
    try:
        main()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if world()[1] > 1:
        wait_for_ranks("exit")  # rank 0 may still be evaluating held-out sets alone (write_summary)
        paddle.distributed.destroy_process_group()


def is_amd_cpu():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return "AuthenticAMD" in f.read(4096)
    except OSError:
        return False


def world():
    """(rank, number of processes): under paddle.distributed.launch its values, else (0, 1)."""
    return paddle.distributed.get_rank(), paddle.distributed.get_world_size()


def is_main():
    """The process that writes (checkpoints, logs, summaries, caches): rank 0."""
    return world()[0] == 0


def wait_for_ranks(name):
    """Every rank waits here until all have arrived, however long one of them works alone first.
    Paddle's CPU collectives (gloo) give up after 30 s, so paddle.distributed.barrier() fails
    behind rank 0's export or scoring; the launcher's key-value store counts the ranks instead.
    `name` is the same on every rank and new for each wait of a job."""
    size = world()[1]
    if size == 1:
        return
    store = paddle.base.core.create_or_get_global_tcp_store()  # init_parallel_env's
    store.add(f"distill_lstm/{name}", 1)
    while store.add(f"distill_lstm/{name}", 0) < size:
        time.sleep(0.5)


class NullWriter:
    """What the other ranks log to: nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_scalar(self, *args, **kwargs):
        pass


def require_device(device):
    """Refuse a device this Paddle was not built for: paddle.set_device would end in a bare
    ValueError, and paddle.inference would quietly run on the CPU."""
    if device == "gpu" and not paddle.device.is_compiled_with_cuda():
        raise InputError("--device gpu: this Paddle is a CPU build (paddle.device.is_compiled_with_cuda() is False); "
                         "install paddlepaddle-gpu or give --device cpu")
    if device == "xpu" and not paddle.device.is_compiled_with_xpu():
        raise InputError("--device xpu: this Paddle has no XPU support (paddle.device.is_compiled_with_xpu() is "
                         "False); install paddlepaddle-xpu or give --device cpu")


def init_runtime(args):
    require_device(args.device)
    logger.setLevel(logging.INFO)  # printed through the handler paddlenlp installs on import
    if args.device == "cpu" and is_amd_cpu() and "MKL_DEBUG_CPU_TYPE" not in os.environ:
        # Paddle's MKL runs generic kernels on AMD CPUs unless told to use its AVX2 ones: a
        # 512x2048 matmul went from 31 to 103 GFLOP/s on this project's 2-core EPYC. Read at
        # MKL's first call, so setting it after import still works.
        os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    paddle.set_device(args.device)
    if world()[1] > 1:  # started by paddle.distributed.launch: one process per device
        paddle.distributed.init_parallel_env()
    # Paddle pins its CPU kernels to one thread unless told otherwise.
    paddle.base.core.set_num_threads(args.num_threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    paddle.seed(args.seed)


def convert_example(words, vocab, max_seq_length, unseen_words="unk"):
    """(word ids, length) of a segmented sentence, truncated to max_seq_length words. A word
    without an embedding row reads as [UNK] or, with unseen_words="chars", as its characters
    when every one has a row (很甜 -> 很 甜)."""
    if unseen_words == "chars":
        words = spell_unseen(words, vocab.token_to_idx)
    ids = vocab.to_indices(words[:max_seq_length])
    return ids, len(ids)


def spell_unseen(words, known):
    """`words`, each one not in `known` spelled out in its characters if they all are."""
    spelled = []
    for word in words:
        if word in known or not all(char in known for char in word):
            spelled.append(word)
        else:
            spelled.extend(word)
    return spelled


@contextlib.contextmanager
def atomic_path(path, what=None, size=None):
    """Yield a temporary path beside `path`; it becomes `path` only if the block succeeds.

    A directory replaces an existing one in two renames (path -> path.old<pid>, path.tmp<pid> ->
    path); what a killed process left of that is completed or removed first. A full disk is an
    InputError naming the directory, `what` was written (default: path's name), the bytes it
    needs about (`size`, when known) and those free once the temporary is removed."""
    recover_interrupted_swap(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        yield tmp
        if os.path.isdir(tmp) and os.path.isdir(path):
            old = f"{path}.old{os.getpid()}"
            os.rename(path, old)
            os.rename(tmp, path)
            remove_path(old)
        else:
            os.replace(tmp, path)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        remove_path(tmp)
        directory = os.path.dirname(path) or "."
        needs = f"needs about {readable_size(size)}, " if size is not None else ""
        raise InputError(f"{directory}: no space left on device writing {what or os.path.basename(path)} "
                         f"({needs}{readable_size(shutil.disk_usage(directory).free)} free)") from e
    finally:
        remove_path(tmp)


def readable_size(size):
    """12.3 MB, 840.0 kB, 512 bytes."""
    if size < 1000:
        return f"{size} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"


def approx_bytes(obj):
    """About what saving obj takes: its tensors' and arrays' bytes (strings' in UTF-8), through dicts and lists."""
    if isinstance(obj, dict):
        return approx_bytes(list(obj.values()))
    if isinstance(obj, (list, tuple)) or (isinstance(obj, np.ndarray) and obj.dtype == object):
        return sum(approx_bytes(item) for item in obj)
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, paddle.Tensor):
        return math.prod(obj.shape) * obj.element_size()
    return len(obj.encode("utf-8")) if isinstance(obj, str) else 0


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def recover_interrupted_swap(path):
    """Finish what atomic_path(path) left when its process was killed: a path.old<pid> means the
    kill came between the two renames, when path.tmp<pid> was already complete, so that copy
    becomes path; other leftovers of dead processes are removed. Live processes' are left alone."""
    parent, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(parent):
        return
    leftovers = {}  # (kind, pid) -> path
    for entry in os.listdir(parent):
        match = re.fullmatch(re.escape(name) + r"\.(tmp|old)(\d+)", entry)
        if match and not process_alive(int(match[2])):
            leftovers[match[1], int(match[2])] = os.path.join(parent, entry)
    for (kind, pid), old in leftovers.items():
        if kind == "old" and not os.path.lexists(path):
            os.rename(leftovers.get(("tmp", pid), old), path)
    for leftover in leftovers.values():
        remove_path(leftover)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def texts_sha256(texts):
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()


def manifest_key(manifest):
    """A cache entry's name: what it was computed from, hashed (any change gives another entry)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode("utf-8")).hexdigest()[:20]


def write_json(path, obj):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


WEIGHTS, OPTIMIZER, META = "model_state.pdparams", "model_state.pdopt", "checkpoint.json"
RNG_STATE = "rng_state.pkl"
LOCK = ".distill_lstm.lock"
SUMMARY = "summary.json"


@contextlib.contextmanager
def claimed_output_dir(args):
    """Hold args.output_dir for one training run.

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
    created = absolute_dirs_to_create(args.output_dir, args.logdir)
    try:
        make_writable_dir(args.output_dir)
    except InputError:
        remove_empty_dirs(created)
        raise
    lock = filelock.FileLock(os.path.join(args.output_dir, LOCK), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise InputError(f"{args.output_dir}: another run is writing there (it holds {lock.lock_file}); "
                         "wait for it to end or choose another --output_dir")
    try:
        for name in ("best", "last", SUMMARY):
            recover_interrupted_swap(os.path.join(args.output_dir, name))
        previous = sorted(set(os.listdir(args.output_dir)) - {LOCK})
        if args.overwrite_output_dir:
            remove_run_outputs(args)
        elif previous and not args.init_from_ckpt:
            last = os.path.join(args.output_dir, "last")
            resume = f"resume it with --init_from_ckpt {last}, " if os.path.isdir(last) else "it has no checkpoint; "
            raise InputError(f"{args.output_dir}: already holds {', '.join(previous[:4])}"
                             f"{' ...' if len(previous) > 4 else ''}; {resume}replace it with "
                             "--overwrite_output_dir, or choose another --output_dir")
        make_writable_dir(args.logdir)
        yield
    except BaseException:
        lock.release()
        remove_empty_dirs(created)  # the log directory, if it stayed empty
        if os.path.abspath(args.output_dir) in created and os.listdir(args.output_dir) == [LOCK]:
            os.remove(lock.lock_file)
            remove_empty_dirs(created)
        raise
    lock.release()


def make_writable_dir(directory):
    try:
        os.makedirs(directory, exist_ok=True)
        reason = None if os.access(directory, os.W_OK | os.X_OK) else "Permission denied"
    except OSError as e:
        reason = e.strerror or str(e)
    if reason:
        raise InputError(f"{directory}: cannot write there ({reason})")


@contextlib.contextmanager
def writable_dir_for(directory):
    """make_writable_dir(directory) for the block; if the block fails, the directories this made are
    removed again when empty: a failed run leaves no trace where there was nothing."""
    created = absolute_dirs_to_create(directory)
    try:
        make_writable_dir(directory)
        yield
    except BaseException:
        remove_empty_dirs(created)
        raise


@contextlib.contextmanager
def held_lock(path):
    """Hold the file lock at `path` for the block; if the block fails, a lock file this created is
    removed, still held (filelock's waiters see it unlinked and lock a new one)."""
    created = not os.path.exists(path)
    with filelock.FileLock(path):
        try:
            yield
        except BaseException:
            if created:
                with contextlib.suppress(OSError):
                    os.remove(path)
            raise


def absolute_dirs_to_create(*directories):
    """The directories os.makedirs would create for each of `directories`, deepest first."""
    missing = []
    for directory in directories:
        directory = os.path.abspath(directory)
        while directory and not os.path.exists(directory) and directory not in missing:
            missing.append(directory)
            directory = os.path.dirname(directory)
    return sorted(missing, key=len, reverse=True)


def remove_empty_dirs(directories):
    for directory in directories:  # deepest first
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def remove_run_outputs(args):
    """--overwrite_output_dir: the previous run's checkpoints, summary and VisualDL records."""
    for name in ("best", "last", SUMMARY):
        remove_path(os.path.join(args.output_dir, name))
    for log in glob.glob(os.path.join(args.logdir, "**", "vdlrecords.*.log"), recursive=True):
        os.remove(log)


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


def total_train_steps(args, steps_per_epoch):
    steps = steps_per_epoch * args.max_epoch
    return min(steps, args.max_steps) if args.max_steps else steps


@contextlib.contextmanager
def paddlenlp_quiet():
    previous = paddlenlp_logger.logger.level
    paddlenlp_logger.set_level("WARNING")
    try:
        yield
    finally:
        paddlenlp_logger.logger.setLevel(previous)


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
        with open(os.path.join(tmp, META), "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)


def gathered(obj):
    """[obj of every rank] under the launcher; obj itself in one process (checkpoints stay as before)."""
    if world()[1] == 1:
        return obj
    objects = []
    paddle.distributed.all_gather_object(objects, obj)
    return objects


def main_view(value):
    """Rank 0's value on every rank under the launcher (value itself in one process): for
    decisions every rank must take alike, such as whether a cache entry exists."""
    return gathered(value)[0] if world()[1] > 1 else value


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


def restore_checkpoint(path, model, optimizer, label_list, kind):
    """Resume from a last/ checkpoint of the same task and kind: model, optimizer and random
    state; return its metadata."""
    meta = read_checkpoint_meta(path)
    require_kind(path, meta, kind)
    check_labels(path, meta, label_list)
    if not os.path.isfile(os.path.join(path, OPTIMIZER)):
        raise InputError(f"{path}: holds weights only (best/ does); resume from the run's last/")
    load_state_strict(model, os.path.join(path, WEIGHTS))
    optimizer.set_state_dict(load_paddle_file(os.path.join(path, OPTIMIZER)))
    rng_path = os.path.join(path, RNG_STATE)
    if os.path.isfile(rng_path):
        with open(rng_path, "rb") as f:
            states = pickle.load(f)
        rank, size = world()
        if (len(states) if isinstance(states, list) else 1) == size:
            set_rng_state(states[rank] if size > 1 else states)
        else:
            logger.warning("%s: saved by another number of processes; dropout will draw differently", rng_path)
    else:  # saved before checkpoints kept it
        logger.warning("%s: no random state saved; dropout will draw differently from an uninterrupted run", path)
    logger.info("resumed from %s at step %d", path, meta["state"]["global_step"])
    return meta


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


# Arguments that say where things go or how fast, not what is trained: left out of the
# hyper-parameters VisualDL compares runs by.
NOT_HPARAMS = {"data_dir", "vocab_path", "output_dir", "overwrite_output_dir", "logdir", "run_name", "log_freq",
               "init_from_ckpt", "eval_sets", "device", "num_threads", "logits_cache", "teacher_dir", "vocab_size"}


def open_logwriter(args, resume):
    """A VisualDL writer named args.run_name, with the run's hyper-parameters (VisualDL's
    HParams tab compares runs by them); a resumed run appends to the newest log in args.logdir.
    Ranks other than 0 log nothing."""
    if not is_main():
        return NullWriter()
    logs = sorted(glob.glob(os.path.join(args.logdir, "vdlrecords.*.log")), key=os.path.getmtime)
    if resume and logs:
        return LogWriter(logdir=args.logdir, file_name=os.path.basename(logs[-1]), display_name=args.run_name)
    writer = LogWriter(logdir=args.logdir, display_name=args.run_name)
    hparams = {k: v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v)
               for k, v in sorted(vars(args).items()) if k not in NOT_HPARAMS}
    # the metrics its table shows per run: dev, dev's texts not in train, and every --eval_sets accuracy
    writer.add_hparams(hparams, ["dev/acc", "dev_unseen/acc", *(f"{name}/acc" for name, _ in args.eval_sets)])
    return writer


def new_train_state():
    return {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_acc": -1.0, "best_step": 0,
            "evals_since_best": 0, "epoch_seconds": [], "train_seconds": 0.0, "train_examples": 0,
            "dev_acc": []}


def fit(model, optimizer, train_loader, dev_loader, compute_loss, args, meta, state=None, extras=()):
    """Train for args.max_epoch epochs (or args.max_steps steps).

    compute_loss(model, batch) returns (loss, {name: term}); each term is logged to VisualDL as
    train/<name> (the loss itself only through its terms, so one tag is one quantity in every job).
    Dev accuracy is measured every args.save_steps steps and after every epoch; the
    checkpoints `last` and `best` in args.output_dir carry `meta` and the train state, so
    --init_from_ckpt continues from the step it was saved at. Training stops early after
    args.early_stop_patience evaluations without a better dev accuracy. Returns the train state."""
    resume = state is not None
    state = {**new_train_state(), **(state or {})}  # a checkpoint older than a state field gets its default
    rank, size = world()
    # Under the launcher, gradients are averaged over the ranks, each on its share of every batch.
    train_model = paddle.DataParallel(model) if size > 1 else model
    sampler = train_loader.batch_sampler
    steps_per_epoch = len(sampler.batches())
    total_steps = total_train_steps(args, steps_per_epoch)
    with open_logwriter(args, resume) as writer:
        for epoch in range(state["epoch"], args.max_epoch):
            if state["global_step"] >= total_steps or stalled(args, state):
                break
            sampler.set_epoch(epoch, skip_batches=state["step_in_epoch"])
            start = time.time()
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{args.max_epoch}", unit="batch",
                       initial=state["step_in_epoch"], total=steps_per_epoch, dynamic_ncols=True,
                       disable=rank != 0)
            tick = time.time()  # train_seconds counts loading and steps, not evaluation
            for batch in bar:
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
                    evaluate_and_save(model, optimizer, dev_loader, writer, args, meta, state, extras)
                if step == total_steps or stalled(args, state):
                    break
                tick = time.time()
            bar.close()
    if stalled(args, state):
        logger.info("early stop at step %d: no better dev accuracy in %d evaluations",
                    state["global_step"], state["evals_since_best"])
    return state


def stalled(args, state):
    return 0 < args.early_stop_patience <= state["evals_since_best"]


def evaluate_and_save(model, optimizer, dev_loader, writer, args, meta, state, extras=()):
    acc = evaluate(model, dev_loader)
    step = state["global_step"]
    writer.add_scalar("dev/acc", acc, step)
    state["dev_acc"].append([step, acc])
    improved = acc > state["best_acc"]
    if improved:
        state["best_acc"], state["best_step"], state["evals_since_best"] = acc, step, 0
    else:
        state["evals_since_best"] += 1
    meta = {**meta, "state": state}
    if improved:
        # summary.json describes best/: remove it before best/ changes (write_summary rewrites it),
        # so the two never disagree, whenever the run is stopped.
        if is_main():
            remove_path(os.path.join(args.output_dir, SUMMARY))
        save_checkpoint(os.path.join(args.output_dir, "best"), model, meta, extras=extras)
    save_checkpoint(os.path.join(args.output_dir, "last"), model, meta, optimizer, extras)
    if is_main():
        logger.info("step %d: dev accuracy %.4f%s", step, acc, " (best so far, saved)" if improved else "")


def write_summary(model, loaders, args, state, extra=None):
    """summary.json in output_dir: best dev accuracy, each evaluation's [step, dev accuracy],
    timings, `extra` and the best checkpoint's accuracy on every other labelled set: the task's
    other splits (dev_unseen_acc: dev's texts not in train; test_acc: test.tsv) and each of
    --eval_sets (eval_sets: {name: {file, examples, acc}}), also logged to VisualDL as <name>/acc at
    the best step. Those sets never choose the checkpoint. Rank 0's job."""
    if not is_main():
        return
    summary = {"best_dev_acc": state["best_acc"], "best_step": state["best_step"],
               "epoch_seconds": state["epoch_seconds"], "dev_acc": state["dev_acc"],
               "train_examples_per_second": state["train_examples"] / state["train_seconds"], **(extra or {})}
    held_out = held_out_accuracies(model, loaders, args, state["best_step"])
    files = dict(args.eval_sets)
    for split in [name for name in held_out if name not in files]:
        summary[f"{split}_acc"], summary[f"{split}_examples"] = held_out[split], len(loaders[split].dataset)
    if files:
        summary["eval_sets"] = {name: {"file": files[name], "examples": len(loaders[name].dataset),
                                       "acc": held_out[name]} for name in files}
    write_json(os.path.join(args.output_dir, SUMMARY), summary)
    scores = "".join(f", {name} accuracy {acc:.4f}" for name, acc in held_out.items())
    logger.info("best dev accuracy %.4f at step %d%s; checkpoint %s, summary %s, VisualDL logs %s",
                state["best_acc"], state["best_step"], scores, os.path.join(args.output_dir, "best"),
                os.path.join(args.output_dir, SUMMARY), args.logdir)


def held_out_accuracies(model, loaders, args, best_step):
    """{name: accuracy of the best checkpoint} on every loader but train and dev."""
    names = [name for name in loaders if name not in ("train", "dev")]
    if not names:
        return {}
    load_state_strict(model, os.path.join(args.output_dir, "best", WEIGHTS))
    accuracies = {name: evaluate(model, loaders[name]) for name in names}
    with open_logwriter(args, resume=True) as writer:
        for name, acc in accuracies.items():
            writer.add_scalar(f"{name}/acc", acc, best_step)
    return accuracies
