"""Process and file plumbing every module shares: bad-input errors, the runtime (device, threads, seeds,
ranks under the launcher), atomic files and directories, locks and content hashes."""
import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import platform
import random
import re
import shutil
import sys
import time

import filelock
import numpy as np
import paddle
from paddlenlp.utils.log import logger as paddlenlp_logger
from tqdm import tqdm

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


def cpu_model():
    """The processor's name (/proc/cpuinfo's "model name", which platform.processor() leaves out
    on Linux), and its core count: benchmarks' machines differ from session to session."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


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


def require_device(device):
    """Refuse a device this Paddle was not built for: paddle.set_device would end in a bare
    ValueError, and paddle.inference would quietly run on the CPU."""
    if device == "gpu" and not paddle.device.is_compiled_with_cuda():
        raise InputError("--device gpu: this Paddle is a CPU build (paddle.device.is_compiled_with_cuda() is False); "
                         "install paddlepaddle-gpu or give --device cpu")
    if device == "xpu" and not paddle.device.is_compiled_with_xpu():
        raise InputError("--device xpu: this Paddle has no XPU support (paddle.device.is_compiled_with_xpu() is "
                         "False); install paddlepaddle-xpu or give --device cpu")


class BarSafeHandler(logging.StreamHandler):
    """A console handler that writes each line above tqdm's progress bars (tqdm.write clears them,
    writes the line and draws them again), never into a half-drawn one."""

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def init_logging():
    """Our INFO lines, and every console log line, through BarSafeHandler: the root logger's handler
    (Paddle installs it on import; ours propagate to it) and PaddleNLP's are swapped for one with
    their stream and format. PaddleNLP's lines are coloured only on a terminal, never in a log file."""
    logger.setLevel(logging.INFO)
    for target in (logging.root, paddlenlp_logger.logger):
        for handler in list(target.handlers):
            if type(handler) is logging.StreamHandler:  # the console's, not a file's nor pytest's caplog
                bar_safe = BarSafeHandler(handler.stream)
                bar_safe.setLevel(handler.level)
                bar_safe.setFormatter(handler.formatter)
                target.removeHandler(handler)
                target.addHandler(bar_safe)
    paddlenlp_logger.format.stream = paddlenlp_logger.handler.stream  # colorlog: no colour if not a TTY


def init_runtime(args):
    require_device(args.device)
    init_logging()
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


@contextlib.contextmanager
def paddlenlp_quiet():
    previous = paddlenlp_logger.logger.level
    paddlenlp_logger.set_level("WARNING")
    try:
        yield
    finally:
        paddlenlp_logger.logger.setLevel(previous)


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


