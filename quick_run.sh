#!/usr/bin/env bash
# The whole pipeline in minutes, to see every stage work before a real run: fine-tune the teacher
# for a few steps, distill it into the Bi-LSTM for a few steps, export the student, classify dev
# with it. It trains on a slice of the data at short lengths: its accuracies mean nothing.
#
#   bash quick_run.sh                     # offline: the m3e-small teacher, ../shared/data/chnsenticorp
#   OUT=runs/mine bash quick_run.sh       # elsewhere than a fresh runs/quick-<date-time>
#
# Environment (defaults in brackets):
#   DATA_DIR   a task's train.tsv and dev.tsv  [../shared/data/chnsenticorp]
#   TEACHER    a local pretrained encoder  [m3e-small, fetched once by ../shared/tools/get_offline_teacher.sh]
#   MODEL_TYPE its --model_type  [bert]
#   TRAIN_ROWS, DEV_ROWS  the slice's first rows of each  [1000, 200]
#   STEPS      training steps of each model  [20]
#   OUT        a new directory for everything the run writes  [runs/quick-<date-time>]
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python}"
DATA_DIR="${DATA_DIR:-../shared/data/chnsenticorp}"
MODEL_TYPE="${MODEL_TYPE:-bert}"
TRAIN_ROWS="${TRAIN_ROWS:-1000}"
DEV_ROWS="${DEV_ROWS:-200}"
STEPS="${STEPS:-20}"
OUT="${OUT:-runs/quick-$(date +%Y%m%d-%H%M%S)}"

for split in train dev; do
  if [ ! -f "$DATA_DIR/$split.tsv" ]; then
    echo "error: $DATA_DIR/$split.tsv: no such file; give DATA_DIR=DIR with a task's train.tsv and dev.tsv" >&2
    exit 2
  fi
done
if [ -e "$OUT" ]; then  # never write into what a user already has
  echo "error: $OUT exists; give OUT=DIR a new directory" >&2
  exit 2
fi
FETCH=../shared/tools/get_offline_teacher.sh
if [ -z "${TEACHER:-}" ] && [ ! -f "$FETCH" ]; then
  echo "error: $FETCH: no such file; give TEACHER=DIR, a local pretrained encoder" >&2
  exit 2
fi
TEACHER="${TEACHER:-$(PYTHON="$PY" bash "$FETCH" | tail -n 1)}"
mkdir -p "$OUT/data"
head -n $((TRAIN_ROWS + 1)) "$DATA_DIR/train.tsv" > "$OUT/data/train.tsv"  # + 1: the header line
head -n $((DEV_ROWS + 1)) "$DATA_DIR/dev.tsv" > "$OUT/data/dev.tsv"
# Short sentences and few steps; the slice's teacher logits stay in the run, out of the shared cache.
COMMON=(--task_name chnsenticorp --data_dir "$OUT/data" --device cpu --max_steps "$STEPS" --save_steps 10)
STAGES=()

timed() {  # timed NAME command...: run it, keep its wall time for the summary
  local name=$1 start
  shift
  echo -e "\n== $name" >&2  # stderr: a stage's stdout may go to a file
  start=$(date +%s)
  "$@"
  STAGES+=("$(printf '%-9s %4d s' "$name" $(( $(date +%s) - start )))")
}

timed teacher "$PY" teacher_train_glue.py @recipes/teacher.txt --model_type "$MODEL_TYPE" \
  --model_name_or_path "$TEACHER" --max_seq_length 64 "${COMMON[@]}" --output_dir "$OUT/teacher"
timed distill "$PY" teacher_student_distill.py @recipes/distill.txt --model_name "$TEACHER" \
  --teacher_dir "$OUT/teacher/best" --n_iter 1 --max_seq_length 64 --teacher_max_seq_length 64 \
  --logits_cache "$OUT/teacher_logits" "${COMMON[@]}" --output_dir "$OUT/distilled"
timed export "$PY" export_model.py --checkpoint "$OUT/distilled/best" --output_dir "$OUT/export"
timed predict "$PY" predict.py --model_dir "$OUT/export" --input "$OUT/data/dev.tsv" --text_column text_a \
  --eval > "$OUT/predictions.txt"

echo -e "\nquick run done: every stage ran; its accuracies mean nothing ($STEPS steps on $TRAIN_ROWS sentences)"
printf '  %s\n' "${STAGES[@]}"
cat <<EOF
  data slice        $OUT/data
  teacher           $OUT/teacher (best/, last/, summary.json, vdl/)
  distilled Bi-LSTM $OUT/distilled
  export            $OUT/export
  predictions       $OUT/predictions.txt
curves: visualdl --logdir $OUT/teacher/vdl $OUT/distilled/vdl --component_tabs scalar hyper_parameters -L en --disable-telemetry
EOF
