#!/usr/bin/env bash
# Reproduce the project's table on ChnSentiCorp: fine-tune the teacher, train the Bi-LSTM alone,
# distill the teacher into the Bi-LSTM, and print dev accuracy and wall time of each.
#
#   bash reproduce.sh                 # GPU, online: ernie-gram-zh and ChnSentiCorp from PaddleNLP
#   CPU=1 bash reproduce.sh           # this project's 2-core CPU machines, offline: the m3e-small
#                                     # teacher and ../shared/data/chnsenticorp, smaller settings
#
# Environment (defaults in brackets, CPU=1 values after the slash):
#   DATA_DIR   local task files  [download] / ../shared/data/chnsenticorp
#   TEACHER    teacher to fine-tune  [ernie-gram-zh] / offline m3e-small (get_offline_teacher.sh)
#   N_ITER     augmented copies per sentence  [20] / 1
#   UNLABELED  unlabelled sentences for the transfer set  [none] / ../shared/data/unlabeled/reviews_unlabeled.txt
#   OUT        where runs go  [runs]; a teacher already fine-tuned in $OUT/teacher is reused.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python}"
OUT="${OUT:-runs}"
if [ "${CPU:-0}" = 1 ]; then
  DATA_DIR="${DATA_DIR-../shared/data/chnsenticorp}"
  TEACHER="${TEACHER:-$(PYTHON="$PY" bash ../shared/tools/get_offline_teacher.sh | tail -n 1)}"
  MODEL_TYPE="${MODEL_TYPE:-bert}"
  N_ITER="${N_ITER:-1}"
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
mkdir -p "$OUT"

timed() {  # timed NAME command...: run it, keep its wall seconds in $OUT/NAME.seconds
  local name=$1 start
  shift
  start=$(date +%s)
  "$@"
  echo $(( $(date +%s) - start )) > "$OUT/$name.seconds"
}

if [ -f "$OUT/teacher/best/model_state.pdparams" ]; then
  echo "reusing the fine-tuned teacher in $OUT/teacher"
else
  timed teacher "$PY" teacher_train_glue.py --model_type "$MODEL_TYPE" --model_name_or_path "$TEACHER" \
    --task_name chnsenticorp --max_seq_length 256 --batch_size 32 --learning_rate 5e-5 \
    --num_train_epochs 3 --logging_steps 10 --save_steps 100 --output_dir "$OUT/teacher" "${COMMON[@]}"
fi

timed student "$PY" student_lstm_small.py --task_name chnsenticorp --max_epoch 8 --batch_size 64 \
  --optimizer adam --lr 3e-4 --dropout_prob 0.5 --max_seq_length 256 --vocab_path senta_word_dict.txt \
  --save_steps 20 --output_dir "$OUT/student" "${COMMON[@]}"

EXTRA=()
[ -n "$UNLABELED" ] && EXTRA+=(--unlabeled_path "$UNLABELED")
timed distilled "$PY" teacher_student_distill.py --task_name chnsenticorp --max_epoch 6 --lr 1.0 \
  --dropout_prob 0.1 --batch_size 64 --model_name "$TEACHER" --teacher_dir "$OUT/teacher/best/model_state.pdparams" \
  --vocab_path senta_word_dict.txt --n_iter "$N_ITER" --save_steps 100 --output_dir "$OUT/distilled" \
  "${COMMON[@]}" "${EXTRA[@]}"

"$PY" - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
reference = {"teacher": "about 0.95", "student": "0.920", "distilled": "0.934"}
print("\n| model | dev acc | wall | published |\n|---|---|---|---|")
for name, label in [("teacher", "teacher"), ("student", "Bi-LSTM alone"), ("distilled", "Bi-LSTM distilled")]:
    with open(os.path.join(out, name, "summary.json"), encoding="utf-8") as f:
        acc = json.load(f)["best_dev_acc"]
    seconds = os.path.join(out, f"{name}.seconds")
    wall = f"{int(open(seconds).read()) / 60:.0f} min" if os.path.exists(seconds) else "reused"
    print(f"| {label} | {acc:.4f} | {wall} | {reference[name]} |")
EOF
