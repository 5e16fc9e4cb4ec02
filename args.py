"""The one command line shared by every script of the project.

Each script asks for its job's flags (`parse_args("student")`, ...); the names are those of
PaddleNLP's original distill_lstm example, so its commands keep working. Over 350 lines because every
flag of every job, with the help text --help shows, is here, in one place.
"""
import argparse
import ast
import logging
import os
import sys
import warnings

# Every script imports this module before Paddle: hide the two warnings Paddle's import prints on
# every run (no ccache for compiling C++ extensions, which the project never does; setuptools
# replacing distutils), which tell a user nothing.
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
warnings.filterwarnings("ignore", message="Setuptools is replacing distutils", category=UserWarning)

ROOT = os.path.dirname(os.path.abspath(__file__))
# The recommended commands' flags, one file each (recipes/<name>.txt), the one copy the README,
# reproduce.sh and the benches share: `python student_lstm_small.py @recipes/student.txt ...`.
RECIPES = os.path.join(ROOT, "recipes")
# Each job's script: its docstring is the job's --help.
SCRIPTS = {"vocab": "build_vocab", "student": "student_lstm_small", "teacher": "teacher_train_glue",
           "distill": "teacher_student_distill", "tinybert": "tinybert_distill", "label": "label_errors",
           "export": "export_model", "predict": "predict"}
# Fine-tuned teachers and teacher logits the benchmarks and distillation reuse across runs.
CACHE_DIR = os.environ.get("DISTILL_LSTM_CACHE", os.path.expanduser("~/.cache/distill_lstm"))

# Defaults that differ by job, as in the original example: the student alone trains with
# Adam at 3e-4, distillation with Adadelta at 1.0.
JOB_DEFAULTS = {
    "vocab": {},
    "student": {"optimizer": "adam", "lr": 3e-4, "dropout_prob": 0.2, "max_epoch": 20,
                "output_dir": "small_models"},
    # The teacher: the original's fine-tuning recipe (run_glue.py: AdamW, linear warmup and decay).
    "teacher": {"optimizer": "adamw", "lr": 5e-5, "max_epoch": 3, "batch_size": 32,
                "lr_schedule": "linear", "warmup_proportion": 0.1, "weight_decay": 0.01,
                "early_stop_patience": 10, "output_dir": "teacher"},
    "distill": {"optimizer": "adadelta", "lr": 1.0, "dropout_prob": 0.1, "max_epoch": 6,
                "output_dir": "distilled_models"},
    # TinyBERT's task distillation (tinybert_distill.py): its fine-tuning recipe, and soft cross-entropy
    # (made for a pretrained student; recipes/tinybert.txt: 5e-4, measured better from random weights)
    "tinybert": {"optimizer": "adamw", "lr": 1e-4, "max_epoch": 3, "batch_size": 32, "lr_schedule": "linear",
                 "warmup_proportion": 0.1, "weight_decay": 0.01, "distill_loss": "kl", "output_dir": "tinybert"},
    # label_errors.py trains the teacher or a student per fold, with that job's defaults (parse_args)
    "label": {"output_dir": "label_issues"},
}


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def probability(text):
    """A rate in [0, 1)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def weight(text):
    """A mixing weight in [0, 1]."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def default_device():
    import paddle  # only once the arguments parsed: --help and argument errors answer at once

    return "gpu" if paddle.device.is_compiled_with_cuda() else "cpu"


def default_num_threads():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--task_name", default=None,
                       help="Task name: names the default output directory; online, 'chnsenticorp' "
                            "loads through paddlenlp.datasets (default: --data_dir's folder name, "
                            "else chnsenticorp).")
    group.add_argument("--data_dir", default=None,
                       help="Local task files train.tsv, dev.tsv [, test.tsv] in PaddleNLP's layouts "
                            "(label<TAB>text_a or qid<TAB>label<TAB>text_a, with a header line). "
                            "Without it the task is downloaded.")


def eval_set(text):
    """NAME=FILE of --eval_sets."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise argparse.ArgumentTypeError(f"{name!r}: a name of letters, digits, - and _ (it names VisualDL tags)")
    if name in ("train", "dev", "test", "dev_unseen"):
        raise argparse.ArgumentTypeError(f"{name!r} is a split of the task; give the set another name")
    return name, path


def add_eval_args(parser):
    parser.add_argument("--eval_sets", type=eval_set, nargs="+", default=[], metavar="NAME=FILE",
                        help="Labelled sets beside dev (a tsv as train.tsv, e.g. other domains), scored with "
                             "the best checkpoint at the end into summary.json; never used to choose it.")


def add_vocab_args(parser):
    parser.add_argument("--vocab_path", default="senta_word_dict.txt",
                        help="Word dictionary, one word per line, [PAD] first and [UNK] in it: it "
                             "orders the student's embedding rows (every training word gets one).")


def add_vocab_output_args(parser):
    parser.add_argument("--vocab_path", required=True,
                        help="Where the dictionary goes (replaced if it exists: name it yourself).")


def add_run_args(parser):
    group = parser.add_argument_group("run")
    group.add_argument("--max_seq_length", type=positive_int, default=128,
                       help="Longest input kept, in jieba words for the student and subword tokens "
                            "for the teacher; longer texts are truncated.")
    group.add_argument("--batch_size", type=positive_int, default=64, help="Sentences per batch.")
    # Second names: those of PaddleNLP's run_glue.py, which the teacher's original command uses.
    group.add_argument("--max_epoch", "--num_train_epochs", dest="max_epoch", type=positive_int,
                       help="Epochs to train.")
    group.add_argument("--max_steps", type=positive_int, default=None,
                       help="Stop after this many steps, even inside an epoch.")
    group.add_argument("--optimizer", choices=["adam", "adamw", "adadelta"], help="Optimizer.")
    group.add_argument("--lr", "--learning_rate", dest="lr", type=positive_float, help="Learning rate.")
    group.add_argument("--lr_schedule", choices=["constant", "linear"], default="constant",
                       help="Keep the learning rate, or warm it up then decay it linearly to 0.")
    group.add_argument("--warmup_proportion", type=probability, default=0.0,
                       help="Share of the steps spent warming the learning rate up (linear schedule).")
    group.add_argument("--weight_decay", type=non_negative_float, default=0.0,
                       help="AdamW weight decay (not applied to biases and norms).")
    group.add_argument("--max_grad_norm", type=non_negative_float, default=1.0,
                       help="Clip gradients to this global norm (0 disables).")
    group.add_argument("--seed", type=non_negative_int, default=2021, help="Random seed.")
    group.add_argument("--device", default=None, choices=["gpu", "cpu", "xpu"],
                       help="Device; gpu when Paddle was built with CUDA, else cpu.")
    group.add_argument("--num_threads", type=positive_int, default=default_num_threads(),
                       help="CPU threads for Paddle's kernels (Paddle's own default is 1).")
    group.add_argument("--output_dir", help="Where checkpoints and the run summary go "
                                            "(default: <job dir>/<task_name>). A directory holding "
                                            "another run is refused unless --overwrite_output_dir "
                                            "or --init_from_ckpt.")
    group.add_argument("--overwrite_output_dir", action="store_true",
                       help="Replace the run in --output_dir (its best/, last/, summary.json and "
                            "VisualDL records; other files stay).")
    group.add_argument("--logdir", help="VisualDL log directory (default: <output_dir>/vdl).")
    group.add_argument("--run_name", help="The run's name in VisualDL (default: the job, then the output "
                                          "directory's name, e.g. 'distilled h300 · chnsenticorp').")
    group.add_argument("--log_freq", "--logging_steps", dest="log_freq", type=positive_int, default=10,
                       help="Log training scalars every N steps.")
    group.add_argument("--save_steps", type=positive_int, default=100,
                       help="Evaluate on dev and checkpoint every N steps (and after every epoch).")
    group.add_argument("--early_stop_patience", type=non_negative_int, default=0,
                       help="Stop when this many evaluations in a row bring no better dev accuracy "
                            "(0: never).")
    group.add_argument("--init_from_ckpt", default=None,
                       help="Checkpoint directory to resume from (a last/: model, optimizer, "
                            "random state and step).")


def module_tree(module):
    """(the syntax tree of <module>.py, its path): what --help reads of a module without importing it,
    which would import Paddle (seconds) before --help answers."""
    path = os.path.join(ROOT, f"{module}.py")
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path), path


def registry_keys(module, registry):
    """The keys of the dict literal `registry` in <module>.py: the flag's choices follow the registry."""
    tree, path = module_tree(module)
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [registry]:
            return tuple(ast.literal_eval(key) for key in node.value.keys)
    raise LookupError(f"{path}: no {registry} = {{...}}")


STUDENTS = registry_keys("students", "STUDENTS")  # --student: a new student is its class and a line there
DISTILL_LOSSES = registry_keys("losses", "DISTILL_LOSSES")  # --distill_loss: a new loss is its function and a line
PAIR_OPS = registry_keys("students", "PAIR_OPS")  # --pair_op


def add_student_args(parser):
    group = parser.add_argument_group("student")
    group.add_argument("--student", choices=STUDENTS, default="bilstm",
                       help="bilstm: one bidirectional LSTM (Tang et al.); gru: one bidirectional GRU; "
                            "textcnn: Kim's CNN; bow: a bag of words (--pooling). Each then has a tanh "
                            "dense layer of --hidden_size before the logits.")
    group.add_argument("--emb_dim", type=positive_int, default=300, help="Word embedding size.")
    group.add_argument("--hidden_size", type=positive_int, default=300,
                       help="The dense layer's size; also the LSTM's or GRU's per direction.")
    group.add_argument("--num_layers", type=positive_int, default=1, help="LSTM or GRU layers.")
    group.add_argument("--num_filters", type=positive_int, default=100, help="TextCNN: filters per window size.")
    group.add_argument("--window_sizes", type=positive_int, nargs="+", default=[3, 4, 5],
                       help="TextCNN: window sizes in words.")
    group.add_argument("--pooling", choices=["mean", "sum"], default="mean",
                       help="BOW: the mean of the word embeddings, or tanh of their sum (PaddleNLP's BoW).")
    group.add_argument("--fc_hidden_size", type=non_negative_int, default=0,
                       help="BOW: a second tanh dense layer of this size before the logits (PaddleNLP's BoW: "
                            "96); 0, none.")
    group.add_argument("--pair_op", choices=PAIR_OPS, default="mul",
                       help="Pair tasks (a text_b column): the student encodes both sides with the same layers "
                            "and classifies [h1, h2, h1 op h2, |h1 - h2|] of their vectors; mul as Tang et al., "
                            "add as PaddleNLP's distill_lstm.")
    group.add_argument("--dropout_prob", type=probability, help="Dropout on embeddings and sentence vector.")
    group.add_argument("--word_dropout", type=probability, default=0.0,
                       help="Rate at which training words are replaced by [UNK].")
    group.add_argument("--unseen_words", choices=["unk", "chars"], default="unk",
                       help="A word with no embedding row (never seen in training) reads as [UNK], or as its "
                            "characters when each has a row (chars: 很甜 -> 很 甜). Export and predict.py follow it.")
    group.add_argument("--min_freq", type=positive_int, default=1,
                       help="Words seen fewer times in training get no embedding row: they map to [UNK].")
    group.add_argument("--init_scale", type=positive_float, default=0.1,
                       help="Embedding and dense weights start uniform in [-init_scale, init_scale].")
    group.add_argument("--init_embeddings", default=None, metavar="FILE",
                       help="Pretrained word vectors, word2vec binary or text (tools/get_word_vectors.sh fetches "
                            "Chinese ones): the rows of vocabulary words in FILE start from their vectors, the "
                            "others as above. Its dimension must be --emb_dim. A resumed run's come from its "
                            "checkpoint.")
    group.add_argument("--add_vector_words", action="store_true",
                       help="Also give rows to FILE's words that the vocabulary lacks (no training sentence has "
                            "them, or fewer than --min_freq), at their vectors, so that such a word in new text is "
                            "not [UNK] (the embedding grows by those rows).")
    # The original example asked for the vocabulary size by hand; it is now read from the data.
    group.add_argument("--vocab_size", type=int, default=None, help=argparse.SUPPRESS)


def add_teacher_args(parser):
    group = parser.add_argument_group("teacher")
    group.add_argument("--model_type", default="ernie-gram",
                       help="PaddleNLP model family: ernie-gram, bert, ernie, ... (others through "
                            "PaddleNLP's Auto classes).")
    group.add_argument("--model_name_or_path", default="ernie-gram-zh",
                       help="Hub name, or a local directory (a PyTorch pytorch_model.bin is converted).")


def add_distill_args(parser):
    group = parser.add_argument_group("distillation")
    group.add_argument("--teacher_dir", required=True,
                       help="The fine-tuned teacher: its model_state.pdparams, or the directory "
                            "teacher_train_glue.py saved it in (e.g. teacher/chnsenticorp/best).")
    group.add_argument("--model_name", default="ernie-gram-zh",
                       help="Teacher architecture and tokenizer, hub name or directory, for a --teacher_dir "
                            "weights file alone; a teacher_train_glue.py checkpoint brings its own.")
    group.add_argument("--model_type", default=None,
                       help="Teacher model family (default: the one the teacher was fine-tuned as).")
    group.add_argument("--teacher_max_seq_length", type=positive_int, default=None,
                       help="Teacher input length in tokens (default: its fine-tuning length).")
    group.add_argument("--teacher_logits", choices=["cached", "online"], default="cached",
                       help="Compute the teacher's logits once and reuse them (cached), or run the "
                            "teacher on every batch as the original did (online).")
    group.add_argument("--logits_cache", default=os.path.join(CACHE_DIR, "teacher_logits"),
                       help="Where cached teacher logits live, keyed by teacher, data and augmentation.")
    group.add_argument("--alpha", type=weight, default=0.0,
                       help="Loss = alpha * CE(gold) + (1 - alpha) * distillation loss.")
    group.add_argument("--distill_loss", choices=DISTILL_LOSSES, default="mse",
                       help="mse: on logits (the paper); kl: softened by --temperature, scaled by T^2; "
                            "hard: cross-entropy on the teacher's argmax labels.")
    group.add_argument("--temperature", type=positive_float, default=1.0, help="Softmax temperature of --distill_loss kl.")
    group.add_argument("--unlabeled_path", default=None,
                       help="Unlabelled in-domain sentences, one per line, labelled by the teacher.")
    group.add_argument("--augment_unlabeled", action="store_true",
                       help="Also draw augmented copies of the unlabelled sentences.")
    group.add_argument("--keep_duplicate_unlabeled", action="store_true",
                       help="Keep every copy of an unlabelled sentence given more than once (by default each "
                            "is labelled once, at its first line).")

    augment = parser.add_argument_group("augmentation (Tang et al., 2019; --p_nn: TinyBERT's rule for whole words)")
    augment.add_argument("--data_seed", type=non_negative_int, default=2021,
                         help="Seed of the augmented copies. --seed is the student's training alone, so "
                              "runs of several --seed share one transfer set and its cached logits.")
    augment.add_argument("--n_iter", type=non_negative_int, default=20, help="Augmented copies drawn per sentence.")
    augment.add_argument("--p_mask", type=probability, default=0.1, help="Probability of masking a word.")
    augment.add_argument("--p_pos", type=probability, default=0.1,
                         help="Probability of replacing a word by one of the same part of speech.")
    augment.add_argument("--p_nn", type=probability, default=0.0,
                         help="Probability of replacing a word by one of its --nn_k nearest neighbours in "
                              "--nn_vectors (cosine similarity); words without a vector stay.")
    augment.add_argument("--nn_k", type=positive_int, default=15, help="Neighbours a word is replaced by (TinyBERT: 15).")
    augment.add_argument("--nn_vectors", default=None, metavar="FILE",
                         help="Word vectors of --p_nn, word2vec binary or text (tools/get_word_vectors.sh).")
    augment.add_argument("--p_ng", type=weight, default=0.25, help="Probability of cutting to an n-gram.")
    augment.add_argument("--ngram_range", type=positive_int, nargs=2, default=[2, 10], metavar=("MIN", "MAX"),
                         help="n-gram lengths in words.")


def add_export_args(parser):
    parser.add_argument("--checkpoint", required=True,
                        help="A checkpoint directory of the student, distilled student or teacher (e.g. .../best).")
    parser.add_argument("--output_dir", required=True, help="Where the inference model goes.")


def add_predict_args(parser):
    parser.add_argument("--model_dir", required=True, help="An inference model written by export_model.py.")
    parser.add_argument("--input", default="-", help="Text file, one sentence per line (a pair model's: two "
                        "separated by a tab), or - for stdin.")
    parser.add_argument("--text_column", default=None,
                        help="Read --input as a tsv with a header and take this column (e.g. text_a); a pair "
                             "model takes text_b beside it.")
    parser.add_argument("--label_column", default="label", help="With --eval: the gold label column.")
    parser.add_argument("--eval", action="store_true",
                        help="Print accuracy against --label_column (and a pair task's F1 of label 1).")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="text: label and probabilities per line; json: one JSON object per line.")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="Sentences per batch.")
    parser.add_argument("--max_chars", type=positive_int, default=5000,
                        help="Longer lines are reported as errors instead of predicted.")
    parser.add_argument("--device", default=None, choices=["gpu", "cpu"],
                        help="Device (default: gpu when Paddle was built with CUDA, else cpu).")
    parser.add_argument("--num_threads", type=positive_int, default=default_num_threads(),
                        help="CPU math threads.")
    parser.add_argument("--onednn", "--enable_mkldnn", dest="onednn", action="store_true",
                        help="Run on CPU with oneDNN's kernels (Paddle's inference default; off here until "
                             "bench/bench_serve.py shows it faster: it times each model both ways).")


LABEL_MODELS = ("teacher", "student")  # what label_errors.py trains per fold: a job of JOB_DEFAULTS


def add_label_args(parser):
    group = parser.add_argument_group("label errors")
    group.add_argument("--model", choices=LABEL_MODELS, default="teacher",
                       help="What scores the training rows: the teacher fine-tuned per fold (the teacher "
                            "flags), or a student trained alone per fold (the student flags). The training "
                            "flags' defaults are that job's (--model student --help shows them).")
    group.add_argument("--folds", type=int, default=5,
                       help="Cross-validation folds: each row is scored by a model trained on the others.")
    group.add_argument("--filter_by", default="confident_learning",
                       choices=["confident_learning", "prune_by_noise_rate", "prune_by_class", "both",
                                "predicted_neq_given", "low_normalized_margin", "low_self_confidence"],
                       help="cleanlab's rule for which rows to flag (find_label_issues' filter_by). The default "
                            "flags the rows the folds' models confidently put in another class; cleanlab's own "
                            "default, prune_by_noise_rate, flagged more rows at lower precision here "
                            "(bench/RESULTS.md, Wrong training labels).")
    group.add_argument("--clean", choices=["drop", "relabel"], default=None,
                       help="Also write <output_dir>/data/train.tsv without the flagged rows (drop) or with "
                            "the suggested labels (relabel), beside the task's other files.")
    group.add_argument("--probs_cache", default=os.path.join(CACHE_DIR, "label_probs"),
                       help="Where each fold's out-of-sample probabilities are kept, keyed by data and settings.")


def add_tinybert_args(parser):
    group = parser.add_argument_group("transformer student (tinybert_distill.py)")
    group.add_argument("--num_layers", type=positive_int, default=2, help="Transformer layers.")
    group.add_argument("--hidden_size", type=positive_int, default=256,
                       help="Width (the teacher's heads split it: a multiple of their number).")
    group.add_argument("--intermediate_size", type=positive_int, default=None,
                       help="Feed-forward width (default: the teacher's ratio to the width, 4x in BERT).")
    group.add_argument("--init_from_teacher", action="store_true",
                       help="Start from the teacher's embeddings and mapped layers (needs the teacher's width).")
    group.add_argument("--stage1_epochs", type=non_negative_int, default=3,
                       help="Epochs of stage 1, learning the teacher's layers (0: stage 2 alone).")


JOB_ARGS = {
    "vocab": [add_data_args, add_vocab_output_args],
    "student": [add_data_args, add_eval_args, add_vocab_args, add_run_args, add_student_args],
    "teacher": [add_data_args, add_eval_args, add_run_args, add_teacher_args],
    "distill": [add_data_args, add_eval_args, add_vocab_args, add_run_args, add_student_args, add_distill_args],
    "tinybert": [add_data_args, add_eval_args, add_run_args, add_distill_args, add_tinybert_args],
    "label": [add_data_args, add_vocab_args, add_run_args, add_teacher_args, add_student_args, add_label_args],
    "export": [add_export_args],
    "predict": [add_predict_args],
}


def recipe_line_words(line):
    """The flags on one line of a recipe file: words, several to a line; # starts a comment."""
    return line.split("#", 1)[0].split()


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reads an @file argument (a recipe) line by line with recipe_line_words."""

    def convert_arg_line_to_args(self, line):
        return recipe_line_words(line)


def recipe(name):
    """The flags of recipes/<name>.txt, for the benches' commands."""
    with open(os.path.join(RECIPES, f"{name}.txt"), encoding="utf-8") as f:
        return [word for line in f for word in recipe_line_words(line)]


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows the description as written (a script's docstring, its commands indented) and each
    flag's default, unless it has none or its help already says it."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def job_label(job, args):
    """What a run is, for its VisualDL name: readable and short (the sidebar cuts at ~28 characters)."""
    if job == "teacher" or getattr(args, "model", None) == "teacher":
        return f"fine-tuned {args.model_type}"
    if job == "tinybert":
        return f"tinybert L{args.num_layers} h{args.hidden_size}"
    student = "" if args.student == "bilstm" else f"{args.student} "  # the Bi-LSTM's names as before
    return f"{'distilled' if job == 'distill' else 'alone'} {student}h{args.hidden_size}"


def recipe_of(job, model="teacher"):
    """The recipe recommended for a training job (label_errors.py: that of the --model it trains), or None."""
    name = model if job == "label" else job
    return name if os.path.exists(os.path.join(RECIPES, f"{name}.txt")) else None


def description(job, model="teacher"):
    """--help's text: the job's script's docstring, then the recipe recommended for it."""
    tree, _ = module_tree(SCRIPTS[job])
    text = ast.get_docstring(tree)
    name = recipe_of(job, model)
    if name:
        text += (f"\n\nRecommended settings: recipes/{name}.txt, read with @ (flags after it override it):\n"
                 f"    python {SCRIPTS[job]}.py @recipes/{name}.txt ...\n"
                 "Without a recipe file a run takes the defaults below (the original example's, or TinyBERT's, "
                 "settings)\nand says so at start-up.")
    return text


def label_model(argv):
    """label_errors.py's --model, read first: the training flags' defaults (--help's too) are its job's."""
    parser = ArgumentParser(add_help=False, fromfile_prefix_chars="@")
    parser.add_argument("--model", default="teacher")
    model = parser.parse_known_args(argv)[0].model
    return model if model in LABEL_MODELS else "teacher"  # the full parser refuses a wrong one


def build_parser(job, model="teacher"):
    """The job's parser; label_errors.py's takes the defaults of the --model it trains."""
    parser = ArgumentParser(description=description(job, model), formatter_class=HelpFormatter,
                            fromfile_prefix_chars="@")
    for add in JOB_ARGS[job]:
        add(parser)
    defaults = {**(JOB_DEFAULTS[model] if job == "label" else {}), **JOB_DEFAULTS.get(job, {})}
    parser.set_defaults(**{k: v for k, v in defaults.items() if k != "output_dir"})
    return parser


def warn_without_recipe(job, args, argv=None):
    """A training job started without a recipe file (no @file among argv) logs one warning: the
    settings it runs with that the recommended recipe would change, and that recipe."""
    argv = sys.argv[1:] if argv is None else argv
    name = recipe_of(job, getattr(args, "model", "teacher"))
    if name is None or any(arg.startswith("@") for arg in argv):
        return
    recommended = vars(parse_args(job, [f"@{os.path.join(RECIPES, name)}.txt", *argv]))
    changed = [key for key, value in vars(args).items() if recommended[key] != value]
    if changed:
        logging.getLogger("distill_lstm").warning(
            "no recipe file: running the original settings %s; @recipes/%s.txt gives the recommended %s",
            flags_text(vars(args), changed), name, flags_text(recommended, changed))


def flags_text(values, keys):
    """The flags `keys` with their `values` as a command line gives them: --lr 1.0 --ngram_range 2 10."""
    words = []
    for key in keys:
        value = values[key]
        words += [f"--{key}", *map(str, value if isinstance(value, list) else [value])]
    return " ".join(words)


def parse_args(job, argv=None):
    """Parse a job's flags, then fill the defaults that depend on others (and on Paddle)."""
    parser = build_parser(job, label_model(argv) if job == "label" else "teacher")
    args = parser.parse_args(argv)
    if "ngram_range" in args and args.ngram_range[0] > args.ngram_range[1]:
        parser.error(f"--ngram_range: MIN {args.ngram_range[0]} is above MAX {args.ngram_range[1]}")
    if "p_mask" in args and args.p_mask + args.p_pos + args.p_nn > 1:
        parser.error(f"--p_mask {args.p_mask} + --p_pos {args.p_pos} + --p_nn {args.p_nn}: a word's chances add up "
                     "to more than 1")
    if "p_nn" in args and args.p_nn > 0 and not args.nn_vectors:
        parser.error(f"--p_nn {args.p_nn}: give the word vectors its neighbours come from (--nn_vectors FILE)")
    if "add_vector_words" in args and args.add_vector_words and not args.init_embeddings:
        parser.error("--add_vector_words: give the vectors whose words it adds (--init_embeddings FILE)")
    names = [name for name, _ in getattr(args, "eval_sets", [])]
    if len(set(names)) < len(names):
        parser.error(f"--eval_sets: a name given twice ({', '.join(names)})")
    if job == "label":
        if args.folds < 2:
            parser.error(f"--folds: at least 2, got {args.folds}")
        if args.init_from_ckpt:
            parser.error("--init_from_ckpt: label_errors.py continues by itself (finished folds are kept)")
    if "task_name" in args and args.task_name is None:
        # A local task is named after its folder, so its runs never land on ChnSentiCorp's.
        args.task_name = os.path.basename(os.path.normpath(args.data_dir)) if args.data_dir else "chnsenticorp"
    if "output_dir" in JOB_DEFAULTS.get(job, {}) and args.output_dir is None:
        args.output_dir = os.path.join(JOB_DEFAULTS[job]["output_dir"], args.task_name.lower())
    if "logdir" in args and args.logdir is None:
        args.logdir = os.path.join(args.output_dir, "vdl")
    if "run_name" in args and args.run_name is None:
        # the job first: VisualDL's sidebar cuts names at ~28 characters
        args.run_name = f"{job_label(job, args)} · {os.path.basename(os.path.normpath(args.output_dir))}"
    if "device" in args and args.device is None:
        args.device = default_device()
    return args
