"""The student family's table: each member and recipe's accuracy over seeds, its gain against the spread, its speed."""
import glob
import json
import os
import statistics

from common import ROOT, write_results  # first: it puts the project on sys.path
from robustness_configs import CONFIGS, PADDLENLP_BOW
from serve_models import serve_name, tinybert_name
from serve_speeds import REFERENCES, best_exported, times

RESULTS = os.path.join(ROOT, "bench", "results")
LABELS = {"bilstm": "Bi-LSTM", "gru": "Bi-GRU", "textcnn": "TextCNN", "bow": "BOW"}
# (student, hidden size) -> marker: every student at the recipe's sizes, BOW shaped as PaddleNLP's BoW model, and
# the fastest recurrent student that serves 100x faster than the ernie-gram-zh-shaped teacher
# (bench/results/serve_candidates.json)
MEMBERS = {("bow", 300): "D", ("bow", 128): "X", ("textcnn", 300): "^", ("bilstm", 300): "o", ("gru", 300): "s",
           ("gru", 100): "p"}
# members whose shape is more than a hidden size: (their configurations' suffix, name, flags)
SHAPES = {("bow", 128): ("_paddlenlp", "BOW, PaddleNLP's shape", " ".join(PADDLENLP_BOW))}
# recipe -> bench_robustness.py's configuration at the recipe's sizes. "distilled": the teacher's logits and,
# on the training sentences, the gold labels, half the loss each (the best Bi-LSTM and BOW on dev).
RECIPES = {"alone": "alone", "distilled": "alpha0.5", "hard labels": "hard"}
COMMANDS = {"alone": "`recipes/student.txt`", "distilled": "`recipes/distill.txt`",
            "hard labels": "`--distill_loss hard --alpha 0`"}  # the table's recipe column
# (student, recipe) -> (configuration, its flags) where tuning on dev changed a student's recipe (bench/RESULTS.md)
TUNED = {("textcnn", "alone"): ("alone_lr1e-3", "--lr 1e-3")}
# TinyBERT (tinybert_distill.py's default student): bench_robustness.py's configuration -> (recipe, the configuration
# its gain is judged against, its style in the picture). Stage 2 alone hollow, after stage 1 filled.
TINYBERT_MEMBER = ("TinyBERT 2 x 256", tinybert_name("2x256"))
TINYBERT = {"tinybert_s2": ("stage 2 alone", None, {"marker": "h", "color": "tab:purple", "fillstyle": "none"}),
            "tinybert": ("stages 1 + 2", "tinybert_s2", {"marker": "h", "color": "tab:purple"}),
            "tinybert_s2_aug": ("stage 2 alone, augmented", None,
                                {"marker": "H", "color": "tab:green", "fillstyle": "none"}),
            "tinybert_aug": ("stages 1 + 2, augmented", "tinybert_s2_aug", {"marker": "H", "color": "tab:green"}),
            "tinybert_s2_aug_lr5e-4": ("stage 2 alone, augmented, AdamW 5e-4", None,
                                       {"marker": "8", "color": "tab:orange", "fillstyle": "none"}),
            "tinybert_aug_lr5e-4": ("stages 1 + 2, augmented, AdamW 5e-4",
                                    "tinybert_s2_aug_lr5e-4", {"marker": "8", "color": "tab:orange"})}


def run_name(student, hidden, recipe):
    """bench_robustness.py's run of a member and recipe: <student>-<config>[_h<hidden>] (other sizes)."""
    config = TUNED.get((student, recipe), (RECIPES[recipe],))[0]
    if (student, hidden) in SHAPES:
        return f"{student}-{config}{SHAPES[student, hidden][0]}"
    return f"{student}-{config}" + ("" if hidden == 300 else f"_h{hidden}")


def member_label(student, hidden):
    if (student, hidden) in SHAPES:
        return SHAPES[student, hidden][1]
    return LABELS[student] + ("" if hidden == 300 else f" {hidden}")


def recipe_command(student, hidden, recipe):
    """The table's recipe column: the recipe file, and the flags tuning or the member's shape add."""
    flags = [TUNED[student, recipe][1]] if (student, recipe) in TUNED else []
    flags += [SHAPES[student, hidden][2]] if (student, hidden) in SHAPES else []
    return " ".join([COMMANDS[recipe], *(f"`{f}`" for f in flags)])


def accuracies(name, min_runs=3):
    """{"dev"|"dev_unseen"|"ood": (mean, std, n), "parameters": the first run's} of
    bench/results/robustness/<name>/seed*.json, or None before min_runs seeds have landed (a student's accuracy is
    claimed over 3 seeds; the teacher's fine-tuning is one run). "dev_unseen" (dev's texts not in train) is None
    until every run has it: runs before it was measured lack it."""
    runs = [json.load(open(p, encoding="utf-8"))
            for p in sorted(glob.glob(os.path.join(RESULTS, "robustness", name, "seed*.json")))]
    if len(runs) < min_runs:
        return None
    out = {"parameters": runs[0].get("parameters")}
    for key in ("dev", "dev_unseen", "ood"):
        values = [r.get(f"{key}_acc") for r in runs]
        out[key] = None if None in values else (statistics.mean(values), statistics.stdev(values) if len(values) > 1
                                                else 0.0, len(values))
    return out


def serving_speeds(path):
    """{model name: sentences/s} of the exported models at batch 1 on one thread, each at its faster oneDNN setting."""
    with open(path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    return {model: r["sentences_per_second"] for (model, threads, batch), r in best_exported(rows).items()
            if threads == 1 and batch == 1}


# dev accuracy the seed systems publish on ChnSentiCorp, beside the rows they match (ERNIE: its data distillation)
PUBLISHED = {("bilstm", 300, "alone"): "0.920 (distill_lstm), 0.912 (ERNIE)",
             ("bilstm", 300, "distilled"): "0.934 (distill_lstm)", ("bilstm", 300, "hard labels"): "0.939 (ERNIE)",
             ("bow", 300, "alone"): "0.901 (ERNIE)", ("bow", 300, "hard labels"): "0.914 (ERNIE)",
             ("textcnn", 300, "alone"): "0.916 (ERNIE)", ("textcnn", 300, "hard labels"): "0.924 (ERNIE)"}


def mean_cell(mean_std_n):
    if mean_std_n is None:
        return "-"
    mean, std, n = mean_std_n
    return f"{mean:.4f}" if n == 1 else f"{mean:.4f} ± {std:.4f}"


def beyond_spread(base, other):
    """Whether two (mean, std, n) differ by more than the larger standard deviation, either way: the project's
    one rule (a loss no larger than the spread is within it, as a gain is)."""
    return abs(other[0] - base[0]) > max(base[1], other[1])


def gain_over(base, other, over):
    """other - base in points on dev and on dev's unseen texts (None until both have them), each judged against
    the larger of the two standard deviations."""
    gain = {"over": over}
    for key in ("dev", "dev_unseen"):
        both = base[key] is not None and other[key] is not None
        gain[key] = {"points": 100 * (other[key][0] - base[key][0]),
                     "beyond_spread": beyond_spread(base[key], other[key])} if both else None
    return gain


def gain_cell(gain, key):
    """A gain in points, "(within the spread)" unless beyond it, "-" where not measured."""
    if gain is None or gain[key] is None:
        return "-" if gain else ""
    points = f"{gain[key]['points']:+.2f}" + ("" if gain["over"] == "alone" else f" over {gain['over']}")
    return points + ("" if gain[key]["beyond_spread"] else " (within the spread)")


def table(speeds, output):
    """Print the README's results table (every member and recipe with runs, and the teacher); write it as JSON."""
    references = [speeds.get(name) for name in REFERENCES]  # m3e-small, then the ernie-gram-zh shape
    teacher = accuracies("teacher", min_runs=1)
    rows = []
    if teacher:
        rows.append({"model": "teacher: m3e-small fine-tuned", "recipe": "fine-tuned", "command": "`recipes/teacher.txt`",
                     **teacher, "sentences_per_second": speeds.get("m3e-small"), "published": "about 0.95 (ERNIE-Gram)"})
    for student, hidden in MEMBERS:
        alone = accuracies(run_name(student, hidden, "alone"))
        for recipe in RECIPES:
            name = run_name(student, hidden, recipe)
            acc = accuracies(name)
            if acc is None:
                continue
            rows.append({"model": member_label(student, hidden), "recipe": recipe,
                         "command": recipe_command(student, hidden, recipe), "config": name,
                         **acc, "gain": gain_over(alone, acc, "alone") if alone and recipe != "alone" else None,
                         "sentences_per_second": speeds.get(serve_name(student, hidden)),
                         "published": PUBLISHED.get((student, hidden, recipe), "")})
    for config, (recipe, base, _) in TINYBERT.items():
        acc = accuracies(config)
        if acc is None:
            continue
        base_acc = base and accuracies(base)
        rows.append({"model": TINYBERT_MEMBER[0], "recipe": recipe,
                     "command": f"`tinybert_distill.py {' '.join(CONFIGS[config][1])}`", "config": config, **acc,
                     "gain": gain_over(base_acc, acc, TINYBERT[base][0]) if base_acc else None,
                     "sentences_per_second": speeds.get(TINYBERT_MEMBER[1]), "published": ""})
    print("| model | recipe | seeds | dev | gain | dev, unseen | gain | shopping5 (of the teacher's) "
          "| parameters (embedding + other) | sentences/s, batch 1, 1 thread (x m3e-small; x ernie-gram-zh shape) "
          "| published dev |")
    print("|---" * 11 + "|")
    for row in rows:
        gain = row.get("gain")
        kept = f" ({row['ood'][0] / teacher['ood'][0]:.0%})" if teacher else ""
        counts = row.get("parameters")
        size = f"{counts['embedding'] / 1e6:.1f}M + {counts['other'] / 1e6:.2f}M" if counts else ""
        speed = row["sentences_per_second"]
        rate = f"{speed:.0f} ({'; '.join(times(speed / ref) if ref else '-' for ref in references)})" if speed else ""
        print(f"| {row['model']} | {row['recipe']} ({row['command']}) | {row['dev'][2]} | {mean_cell(row['dev'])} "
              f"| {gain_cell(gain, 'dev')} | {mean_cell(row['dev_unseen'])} | {gain_cell(gain, 'dev_unseen')} "
              f"| {mean_cell(row['ood'])}{kept} | {size} | {rate} | {row['published']} |")
    print("\nmean ± sample standard deviation over training seeds; dev, unseen: the dev texts not in train (the same "
          "checkpoints, chosen on all of dev); gain: over the same student alone (TinyBERT: over stage 2 alone), within "
          "the spread when no larger, either way, than the larger of the two standard deviations; speed: "
          "exported, batch 1, one thread, at the model's faster oneDNN setting; x the m3e-small teacher (whose "
          "accuracies these are), then x the ernie-gram-zh shape (the online recipe's teacher, random weights)")
    write_results(output, {"recipes": RECIPES, "serve": "exported, batch 1, one thread, the faster oneDNN setting",
                           "rows": rows})
