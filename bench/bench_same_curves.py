"""Does a refactoring change training? The same two short real runs at two commits, their dev curves compared.

    python bench/bench_same_curves.py BEFORE AFTER [--results bench/results/same_curves.json]

At each commit (checked out in a temporary git worktree, so the working tree is never touched): the student
alone for one epoch of its recipe, and the distillation recipe for one epoch on the README's CPU transfer set
(--n_iter 2, the unlabelled reviews), on ChnSentiCorp from ../shared, seed 1, one thread each, the two commits side
by side. Same machine, same seed, same thread count: summary.json's dev curves ([step, accuracy] at every
evaluation) must be equal to the last bit, and the distillation must reuse one teacher-logits cache entry (the key
hashes the code that makes the teacher's inputs). Exits 1 if anything differs. Needs bench_teacher.py train's
teacher (69 min on 2 cores if not cached); the distillation's logits are computed once if not cached (21 min).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from common import ROOT, SHARED_DATA, TEACHER_OUTPUT, cpu_model, fetch_offline_teacher, teacher_dir, write_results
from args import CACHE_DIR, recipe  # noqa: E402, I001

DATA = ["--task_name", "chnsenticorp", "--data_dir", os.path.join(SHARED_DATA, "chnsenticorp"), "--max_epoch", "1",
        "--seed", "1", "--device", "cpu", "--num_threads", "1", "--overwrite_output_dir"]
TRANSFER = ["--n_iter", "2", "--unlabeled_path", os.path.join(SHARED_DATA, "unlabeled", "reviews_unlabeled.txt")]


def jobs(best):
    """{name: command after the interpreter} with the teacher checkpoint `best`, the output directory left to run()."""
    teacher = os.path.join(best, "model_state.pdparams")
    return {"alone": ["student_lstm_small.py", *recipe("student"), *DATA],
            "distill": ["teacher_student_distill.py", *recipe("distill"), *DATA, *TRANSFER,
                        "--model_name", fetch_offline_teacher(), "--teacher_dir", teacher]}


def run(checkout, job, command, out):
    """The job at one commit; returns its summary.json."""
    output_dir = os.path.join(out, job)
    with open(os.path.join(out, f"{job}.log"), "w", encoding="utf-8") as log:
        subprocess.run([sys.executable, *command, "--output_dir", output_dir], cwd=checkout, stdout=log,
                       stderr=subprocess.STDOUT, check=True)
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def cache_entries():
    cache = os.path.join(CACHE_DIR, "teacher_logits")
    return sorted(e for e in os.listdir(cache) if not e.startswith(".")) if os.path.isdir(cache) else []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="a commit (hash, branch or tag)")
    parser.add_argument("after", help="a commit (hash, branch or tag)")
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "same_curves.json"))
    parser.add_argument("--teacher_run", default=TEACHER_OUTPUT, help="bench_teacher.py train's output")
    args = parser.parse_args()
    best = teacher_dir(args)  # a finished teacher, before any work
    commits = {side: subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                                    capture_output=True, text=True).stdout.strip()
               for side, rev in (("before", args.before), ("after", args.after))}
    entries = cache_entries()
    summaries = {}
    with tempfile.TemporaryDirectory(prefix="same_curves.") as tmp:
        checkouts = {side: os.path.join(tmp, side) for side in commits}
        for side, commit in commits.items():
            subprocess.run(["git", "worktree", "add", "--detach", checkouts[side], commit], cwd=ROOT, check=True,
                           capture_output=True)
        try:
            for job, command in jobs(best).items():  # the two commits side by side, one thread each
                print(f"{job}: running at both commits (logs in {tmp}/<side>/{job}.log)", flush=True)
                with ThreadPoolExecutor(2) as pool:
                    futures = {side: pool.submit(run, checkouts[side], job, command, checkouts[side])
                               for side in commits}
                    summaries[job] = {side: future.result() for side, future in futures.items()}
        finally:
            for checkout in checkouts.values():
                subprocess.run(["git", "worktree", "remove", "--force", checkout], cwd=ROOT, check=False)
    rows = {job: {"identical": s["before"]["dev_acc"] == s["after"]["dev_acc"],
                  "dev_acc": {side: s[side]["dev_acc"] for side in commits},
                  "dev_unseen_acc": {side: s[side].get("dev_unseen_acc") for side in commits}}
            for job, s in summaries.items()}
    new_entries = sorted(set(cache_entries()) - set(entries))
    result = {"machine": cpu_model(), "commits": commits, "jobs": rows,
              "teacher_logits_entries_made": new_entries, "teacher": "m3e-small fine-tuned (bench_teacher.py train)"}
    write_results(args.results, result)
    for job, row in rows.items():
        print(f"{job}: {len(row['dev_acc']['before'])} evaluations, dev curves "
              f"{'identical' if row['identical'] else 'DIFFERENT'}")
    print(f"teacher-logits cache entries made: {len(new_entries)} (a changed key makes one per commit)")
    sys.exit(0 if all(row["identical"] for row in rows.values()) and len(new_entries) <= 1 else 1)


if __name__ == "__main__":
    main()
