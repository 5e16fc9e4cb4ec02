"""What the benches share: the project on sys.path, where data and the teachers live, how results are written."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.path.join(ROOT, "..", "shared")  # beside the repository: its data/ and tools/
SHARED_DATA = os.path.join(SHARED, "data")  # the tasks, the out-of-domain set, the unlabelled reviews
from args import CACHE_DIR as CACHE  # noqa: E402
from utils import cpu_model  # noqa: E402, F401 (the benches' results name their machine)
OFFLINE_TEACHER = os.path.expanduser("~/.cache/distill_offline/m3e-small")
WORD_VECTORS = os.path.expanduser("~/.cache/distill_offline/synonyms-3.8.0/words.vector")  # get_word_vectors.sh's
TEACHER_OUTPUT = os.path.join(CACHE, "teacher", "chnsenticorp")
# Committed beside the distillations' teacher logits (their --logits_cache), so their students train on a machine
# that never held the teacher's weights: its best checkpoint without them (checkpoint.json records their SHA-256).
TEACHER_LOGITS = os.path.join(ROOT, "bench", "results", "robustness", "teacher_logits")
TEACHER_CHECKPOINT = os.path.join(ROOT, "bench", "results", "robustness", "teacher_checkpoint")


def python_command(processes, log_dir):
    """The interpreter, under paddle.distributed.launch when more than one process (CPU: gloo)."""
    if processes == 1:
        return [sys.executable]
    return [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(processes), "--log_dir", log_dir]


def portable(obj):
    """`obj` with this machine's paths written as a user would type them on theirs: the
    repository root as relative paths, its parent (where ../shared lives) as .., home as ~."""
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v) for v in obj]
    if not isinstance(obj, str):
        return obj
    for path, short in ((ROOT + os.sep, ""), (os.path.dirname(ROOT) + os.sep, ".." + os.sep),
                        (os.path.expanduser("~") + os.sep, "~" + os.sep)):
        obj = obj.replace(path, short)
    return obj


def write_results(path, result):
    """Write a benchmark's JSON atomically (utils.write_json), with portable paths: an
    interrupted run leaves the previous results whole."""
    # Imported here, once the timed runs are over: utils imports paddle, which sets
    # OMP_NUM_THREADS=1 in the environment the benchmark's child processes would inherit.
    from utils import write_json

    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, portable(result))
    print(f"results written to {path}")


def write_unseen_dev(task_dir, path):
    """TASK_DIR's dev.tsv, its header and the rows whose text its train.tsv does not hold
    (data.unseen_rows), written to PATH whole (benches running side by side write it at once): the
    "dev, unseen" set. Returns its row count."""
    from data import load_local_splits, unseen_rows, utf8_lines
    from utils import atomic_path

    splits, _ = load_local_splits(task_dir)
    dev = splits["dev"]
    lines = {dev[i]["line"] for i in unseen_rows(dev, splits["train"])}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for number, line in utf8_lines(os.path.join(task_dir, "dev.tsv"))
                     if number == 1 or number in lines)
    return len(lines)


def fetch_offline_teacher():
    if not os.path.isfile(os.path.join(OFFLINE_TEACHER, "config.json")):
        subprocess.run(["bash", os.path.join(SHARED, "tools", "get_offline_teacher.sh"), OFFLINE_TEACHER],
                       env={**os.environ, "PYTHON": sys.executable}, check=True)
    return OFFLINE_TEACHER


def fetch_word_vectors():
    """tools/get_word_vectors.sh's 100-d Chinese word2vec file (fetched once, pinned)."""
    if not os.path.isfile(WORD_VECTORS):
        subprocess.run(["bash", os.path.join(ROOT, "tools", "get_word_vectors.sh"), os.path.dirname(WORD_VECTORS)],
                       env={**os.environ, "PYTHON": sys.executable}, check=True)
    return WORD_VECTORS


def teacher_dir(args, weightless_ok=False):
    """The best checkpoint of bench_teacher.py train's run in args.teacher_run, or with weightless_ok (a job that
    only reads cached logits) the committed copy of the default run's (TEACHER_CHECKPOINT)."""
    committed = TEACHER_CHECKPOINT if weightless_ok and args.teacher_run == TEACHER_OUTPUT else None
    return finished_teacher(args.teacher_run, "python bench/bench_teacher.py train", committed)


def finished_teacher(run_dir, train_command, committed=None):
    """run_dir's best checkpoint once its run finished, else `committed` (keep_teacher_checkpoint's copy) if
    there is one; exits when there is neither."""
    from checkpoint import META

    if os.path.isfile(os.path.join(run_dir, "summary.json")):  # best/ alone: still training
        return os.path.join(run_dir, "best")
    if committed and os.path.isfile(os.path.join(committed, META)):
        return committed
    sys.exit(f"{run_dir}: no finished teacher; run `{train_command}` first")


def keep_teacher_checkpoint(run_dir, committed):
    """run_dir's best checkpoint without its weights, into `committed`: with the logits cached from it (committed
    too), it trains students where the weights are gone; the cache key is the same, since checkpoint.json
    records the weights' SHA-256. Anything the cache lacks is refused, not labelled."""
    from checkpoint import WEIGHTS

    shutil.copytree(os.path.join(run_dir, "best"), committed, ignore=shutil.ignore_patterns(WEIGHTS),
                    dirs_exist_ok=True)
    print(f"{committed}: the teacher's checkpoint without its weights (commit it with its logits)")
