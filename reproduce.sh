#!/usr/bin/env bash
# Reproduce the project's table on ChnSentiCorp: fine-tune the teacher, train the Bi-LSTM alone,
# distill the teacher into the Bi-LSTM, and print dev accuracy (all of dev, and its texts not in train)
# and wall time of each. A job whose output already holds a summary.json is not run again (delete its
# directory to redo it); a job stopped before its end (killed, machine restarted) continues from its
# last/ checkpoint, or starts again if it had none yet.
#
#   bash reproduce.sh                 # GPU, online: ernie-gram-zh and ChnSentiCorp from PaddleNLP
#   CPU=1 bash reproduce.sh           # this project's 2-core CPU machines, offline: the m3e-small
#                                     # teacher and ../shared/data/chnsenticorp, smaller settings
#
# Environment (defaults in brackets, CPU=1 values after the slash):
#   DATA_DIR   local task files  [download] / ../shared/data/chnsenticorp
#   TEACHER    teacher to fine-tune  [ernie-gram-zh] / offline m3e-small (get_offline_teacher.sh)
#   N_ITER     augmented copies per sentence  [20] / 2
#   UNLABELED  unlabelled sentences for the transfer set  [none] / ../shared/data/unlabeled/reviews_unlabeled.txt
#   OUT        where runs go  [runs]
#   THREADS    CPU threads per job  [all cores]
#   TEACHER_RUN  a fine-tuned teacher's output dir, reused when finished (its summary.json)  [$OUT/teacher] /
#              bench/bench_teacher.py's run (~/.cache/distill_lstm/teacher/chnsenticorp) when present
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python}"
OUT="${OUT:-runs}"
if [ "${CPU:-0}" = 1 ]; then
  DATA_DIR="${DATA_DIR-../shared/data/chnsenticorp}"
  TEACHER="${TEACHER:-$(PYTHON="$PY" bash ../shared/tools/get_offline_teacher.sh | tail -n 1)}"
  MODEL_TYPE="${MODEL_TYPE:-bert}"
  N_ITER="${N_ITER:-2}"
  BENCH_TEACHER="${DISTILL_LSTM_CACHE:-$HOME/.cache/distill_lstm}/teacher/chnsenticorp"
  if [ -f "$BENCH_TEACHER/summary.json" ]; then TEACHER_RUN="${TEACHER_RUN:-$BENCH_TEACHER}"; fi
  UNLABELED="${UNLABELED-../shared/data/unlabeled/reviews_unlabeled.txt}"
  COMMON=(--device cpu)
else
  DATA_DIR="${DATA_DIR-}"
  TEACHER="${TEACHER:-ernie-gram-zh}"
  MODEL_TYPE="${MODEL_TYPE:-ernie-gram}"
  N_ITER="${N_ITER:-20}"
  UNLABELED="${UNLABELED-}"
  COMMON=()
fi
[ -n "$DATA_DIR" ] && COMMON+=(--data_dir "$DATA_DIR")
[ -n "${THREADS:-}" ] && COMMON+=(--num_threads "$THREADS")
TEACHER_RUN="${TEACHER_RUN:-$OUT/teacher}"
mkdir -p "$OUT"

timed() {  # timed NAME DIR command...: run it into DIR, keep its wall seconds in $OUT/NAME.seconds
  local name=$1 dir=$2 start resume=()
  shift 2
  if [ -f "$dir/summary.json" ]; then  # finished by an earlier run: delete DIR to redo it
    echo "reusing $dir"
    return
  fi
  if [ -f "$dir/last/checkpoint.json" ]; then
    echo "continuing $dir from its last checkpoint"
    resume=(--init_from_ckpt "$dir/last")
  elif [ -d "$dir" ]; then  # stopped before its first checkpoint: nothing to continue from
    echo "starting $dir again"
    resume=(--overwrite_output_dir)
  fi
  start=$(date +%s)
  "$@" --output_dir "$dir" "${resume[@]}"
  echo $(( $(date +%s) - start )) > "$OUT/$name.seconds"
}

# The recommended commands' flags live in recipes/*.txt, shared with the README and the benches.
timed teacher "$TEACHER_RUN" "$PY" teacher_train_glue.py @recipes/teacher.txt --task_name chnsenticorp \
  --model_type "$MODEL_TYPE" --model_name_or_path "$TEACHER" "${COMMON[@]}"

timed student "$OUT/student" "$PY" student_lstm_small.py @recipes/student.txt --task_name chnsenticorp \
  "${COMMON[@]}"

EXTRA=()
[ -n "$UNLABELED" ] && EXTRA+=(--unlabeled_path "$UNLABELED")
timed distilled "$OUT/distilled" "$PY" teacher_student_distill.py @recipes/distill.txt --task_name chnsenticorp \
  --model_name "$TEACHER" --teacher_dir "$TEACHER_RUN/best/model_state.pdparams" --n_iter "$N_ITER" \
  "${COMMON[@]}" "${EXTRA[@]}"

"$PY" - "$OUT" "$TEACHER_RUN" <<'EOF'
import json, os, sys
out, teacher_run = sys.argv[1:]
runs = {"teacher": teacher_run, "student": os.path.join(out, "student"), "distilled": os.path.join(out, "distilled")}
labels = {"teacher": "teacher", "student": "Bi-LSTM alone", "distilled": "Bi-LSTM distilled"}
reference = {"teacher": "about 0.95", "student": "0.920", "distilled": "0.934"}
results = {}
print("\n| model | dev acc | dev, unseen | wall | published dev |\n|---|---|---|---|---|")
for name, run in runs.items():
    with open(os.path.join(run, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    acc, unseen = summary["best_dev_acc"], summary.get("dev_unseen_acc")  # a run of an older version lacks it
    seconds = os.path.join(out, f"{name}.seconds")
    wall = int(open(seconds).read()) if os.path.exists(seconds) else None
    results[name] = {"run": run, "dev_acc": acc, "dev_unseen_acc": unseen, "wall_seconds": wall, "summary": summary}
    print(f"| {labels[name]} | {acc:.4f} | {'-' if unseen is None else f'{unseen:.4f}'} "
          f"| {f'{wall / 60:.0f} min' if wall else 'reused'} | {reference[name]} |")
print("\ndev, unseen: dev's texts that train does not hold (the same checkpoints, chosen on all of dev)")
with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
    json.dump(results, f, indent=1)
print(f"\nresults written to {os.path.join(out, 'results.json')}")
EOF
