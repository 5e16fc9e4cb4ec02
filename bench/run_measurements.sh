#!/usr/bin/env bash
# Every run behind the robustness, student-family, label-cleaning and TinyBERT tables (bench/RESULTS.md), in
# order of priority, on a 2-core CPU: two seeds at a time on one thread each. Finished runs are
# skipped and an interrupted one continues from its last/, so it can be started again in a later
# session:
#
#   DISTILL_LSTM_CACHE=/path/that/persists nohup bash bench/run_measurements.sh > measurements.log 2>&1 &
#
# It fine-tunes the teacher first if the cache has none (69 min here), and fills the teacher-logits
# cache of each transfer set with one 2-thread run before the seeds share it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
R="$PY bench/bench_robustness.py"
CACHE="${DISTILL_LSTM_CACHE:-$HOME/.cache/distill_lstm}"

[ -f "$CACHE/teacher/chnsenticorp/summary.json" ] || $PY bench/bench_teacher.py train
ls bench/results/robustness/teacher/seed*.json > /dev/null 2>&1 || $R teacher

# seeds CONFIG STUDENT: seed 1 alone with both threads (it computes the logits the others reuse),
# then 7 and 2021 side by side on one thread each.
seeds() {
  $R run "$1" --student "$2" --seeds 1 --num_threads 2
  $R run "$1" --student "$2" --seeds 7 --num_threads 1 &
  local other=$!
  $R run "$1" --student "$2" --seeds 2021 --num_threads 1
  wait "$other"
}

seeds distilled bilstm
seeds alone bilstm
# First what may change the recipe (does the [UNK] row need training?), then the ablation.
for config in word_dropout min_freq2 soft_train soft_aug augment_unlabeled kl_t2 hard; do seeds "$config" bilstm; done
for config in alone distilled; do $R unseen "$config"; done  # the same checkpoints, unseen words as characters
for student in textcnn bow gru; do
  for config in alone distilled hard; do seeds "$config" "$student"; done
done
$R table

# Label cleaning (bench/bench_label_errors.py): 10% flipped labels, each scorer, the Bi-LSTM on each set.
L="$PY bench/bench_label_errors.py"
[ -f bench/results/label_errors/detect_student.json ] || $L detect --model student
[ -f bench/results/label_errors/detect_teacher.json ] || $L detect --model teacher --num_train_epochs 1
$L train noisy --seeds 1 7 2021
$L train cleaned-teacher --seeds 1 7 2021
$L train cleaned-student --seeds 1 7 2021
[ -f bench/results/label_errors/real_teacher.json ] || $L real --model teacher --num_train_epochs 1
$L table

# TinyBERT (tinybert_distill.py): stage 2 alone against stages 1 + 2, without and with augmentation
# (the configurations take no --student; seeds passes one all the same).
for config in tinybert_s2 tinybert tinybert_s2_aug tinybert_aug; do seeds "$config" bilstm; done
$R table
