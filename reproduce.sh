#!/usr/bin/env bash
# Reproduce the project's table on a task (ChnSentiCorp, or LCQMC's sentence pairs): fine-tune the teacher,
# train the Bi-LSTM alone, distill the teacher into the Bi-LSTM, and print dev accuracy (all of dev, and its
# texts not in train; F1 of label 1 beside it on a pair task) and wall time of each. A job whose output
# already holds a summary.json is not run again (delete its directory to redo it); a job stopped before its
# end (killed, machine restarted) continues from its last/ checkpoint, or starts again if it had none yet.
#
#   bash reproduce.sh                 # GPU, online: ernie-gram-zh and ChnSentiCorp from PaddleNLP
#   CPU=1 bash reproduce.sh           # this project's 2-core CPU machines, offline: the m3e-small
#                                     # teacher and ../shared/data/chnsenticorp, smaller settings
#   TASK=lcqmc CPU=1 bash reproduce.sh   # the same on LCQMC's question pairs (../shared/data/lcqmc)
#
# Environment (defaults in brackets, CPU=1 values after the slash):
#   TASK       chnsenticorp or lcqmc  [chnsenticorp]; a task's recipes are recipes/<job>_<task>.txt
#              (recipes/<job>.txt for chnsenticorp)
#   DATA_DIR   local task files  [download] / ../shared/data/$TASK
#   TEACHER    teacher to fine-tune  [ernie-gram-zh] / offline m3e-small (get_offline_teacher.sh)
#   N_ITER     augmented copies per sentence  [20] / 2; lcqmc: the recipe's (1)
#   UNLABELED  unlabelled sentences for the transfer set  [none] / ../shared/data/unlabeled/reviews_unlabeled.txt;
#              lcqmc: none
#   OUT        where runs go  [runs; lcqmc: runs/lcqmc]
#   THREADS    CPU threads per job  [all cores]
#   TEACHER_RUN  a fine-tuned teacher's output dir, reused when finished (its summary.json)  [$OUT/teacher] /
#              the benches' run when present: bench/bench_teacher.py's (~/.cache/distill_lstm/teacher/chnsenticorp),
#              bench/bench_pairs.py teacher's for lcqmc (~/.cache/distill_lstm/teacher/lcqmc)
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python}"
TASK="${TASK:-chnsenticorp}"
case "$TASK" in  # RECIPE: the task's suffix of recipes/<job>.txt
  chnsenticorp) RECIPE="" OUT="${OUT:-runs}" ;;
  # LCQMC has no unlabelled pairs, and its distillation recipe sets its own --n_iter
  lcqmc) RECIPE=_lcqmc OUT="${OUT:-runs/lcqmc}" N_ITER="${N_ITER-}" UNLABELED="${UNLABELED-}" ;;
  *) echo "error: TASK=$TASK: chnsenticorp or lcqmc" >&2; exit 2 ;;
esac
if [ "${CPU:-0}" = 1 ]; then
  DATA_DIR="${DATA_DIR-../shared/data/$TASK}"
  TEACHER="${TEACHER:-$(PYTHON="$PY" bash ../shared/tools/get_offline_teacher.sh | tail -n 1)}"
  MODEL_TYPE="${MODEL_TYPE:-bert}"
  N_ITER="${N_ITER-2}"
  BENCH_TEACHER="${DISTILL_LSTM_CACHE:-$HOME/.cache/distill_lstm}/teacher/$TASK"
  if [ -f "$BENCH_TEACHER/summary.json" ]; then TEACHER_RUN="${TEACHER_RUN:-$BENCH_TEACHER}"; fi
  UNLABELED="${UNLABELED-../shared/data/unlabeled/reviews_unlabeled.txt}"
  COMMON=(--device cpu)
else
  DATA_DIR="${DATA_DIR-}"
  TEACHER="${TEACHER:-ernie-gram-zh}"
  MODEL_TYPE="${MODEL_TYPE:-ernie-gram}"
  N_ITER="${N_ITER-20}"
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
timed teacher "$TEACHER_RUN" "$PY" teacher_train_glue.py "@recipes/teacher$RECIPE.txt" --task_name "$TASK" \
  --model_type "$MODEL_TYPE" --model_name_or_path "$TEACHER" "${COMMON[@]}"

timed student "$OUT/student" "$PY" student_lstm_small.py "@recipes/student$RECIPE.txt" --task_name "$TASK" \
  "${COMMON[@]}"

EXTRA=()
[ -n "$N_ITER" ] && EXTRA+=(--n_iter "$N_ITER")
[ -n "$UNLABELED" ] && EXTRA+=(--unlabeled_path "$UNLABELED")
timed distilled "$OUT/distilled" "$PY" teacher_student_distill.py "@recipes/distill$RECIPE.txt" --task_name "$TASK" \
  --model_name "$TEACHER" --teacher_dir "$TEACHER_RUN/best/model_state.pdparams" "${COMMON[@]}" "${EXTRA[@]}"

"$PY" - "$OUT" "$TEACHER_RUN" "$TASK" <<'EOF'
import json, os, sys
out, teacher_run, task = sys.argv[1:]
runs = {"teacher": teacher_run, "student": os.path.join(out, "student"), "distilled": os.path.join(out, "distilled")}
labels = {"teacher": "teacher", "student": "Bi-LSTM alone", "distilled": "Bi-LSTM distilled"}
# Each task's published numbers: ChnSentiCorp's are dev accuracy; LCQMC's only published ones are test accuracy.
published, reference = {
    "chnsenticorp": ("published dev", {"teacher": "about 0.95", "student": "0.920", "distilled": "0.934"}),
    "lcqmc": ("published test acc", {"teacher": "about 0.87 (BERT-base / ERNIE 1.0)", "student": "about 0.76 (BiLSTM)",
                                     "distilled": "-"}),
}[task]
summaries = {}
for name, run in runs.items():
    with open(os.path.join(run, "summary.json"), encoding="utf-8") as f:
        summaries[name] = json.load(f)
# A pair task has the F1 of label 1 beside each accuracy; a run of an older version lacks dev_unseen_*
metrics = ["acc", "f1"] if all("best_dev_f1" in s for s in summaries.values()) else ["acc"]
columns = [f"{split} {'F1' if metric == 'f1' else metric}" for split in ("dev", "dev, unseen") for metric in metrics]
print(f"\n| model | {' | '.join(columns)} | wall | {published} |\n|---|{'---|' * len(columns)}---|---|")
results = {}
for name, summary in summaries.items():
    scores = {f"dev_{m}": summary[f"best_dev_{m}"] for m in metrics}
    scores.update({f"dev_unseen_{m}": summary.get(f"dev_unseen_{m}") for m in metrics})
    seconds = os.path.join(out, f"{name}.seconds")
    wall = int(open(seconds).read()) if os.path.exists(seconds) else None
    results[name] = {"run": runs[name], **scores, "wall_seconds": wall, "summary": summary}
    cells = " | ".join("-" if v is None else f"{v:.4f}" for v in scores.values())
    print(f"| {labels[name]} | {cells} | {'reused' if wall is None else f'{wall / 60:.0f} min'} | {reference[name]} |")
print("\ndev, unseen: dev's texts that train does not hold (the same checkpoints, chosen on dev accuracy)")
if "f1" in metrics:
    print("F1: of label 1 (the positive class)")
if task == "lcqmc":
    print("published: LCQMC's test set, not dev (BERT-base / ERNIE 1.0: the ERNIE paper; BiLSTM: the LCQMC paper)")
with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
    json.dump(results, f, indent=1)
print(f"\nresults written to {os.path.join(out, 'results.json')}")
EOF
