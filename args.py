"""The one command line shared by every script of the project.

Each script asks for its job's flags (`parse_args("student")`, ...); the names are those of
PaddleNLP's original distill_lstm example, so its commands keep working.
"""
import argparse
import os

# Defaults that differ by job, as in the original example: the student alone trains with
# Adam at 3e-4, distillation with Adadelta at 1.0.
JOB_DEFAULTS = {
    "vocab": {},
    "student": {"optimizer": "adam", "lr": 3e-4, "dropout_prob": 0.2, "max_epoch": 20,
                "output_dir": "small_models"},
    "distill": {"optimizer": "adadelta", "lr": 1.0, "dropout_prob": 0.1, "max_epoch": 6,
                "output_dir": "distilled_models"},
}


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def default_device():
    import paddle

    return "gpu" if paddle.device.is_compiled_with_cuda() else "cpu"


def default_num_threads():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--task_name", default="chnsenticorp",
                       help="Task name; online, 'chnsenticorp' loads through paddlenlp.datasets.")
    group.add_argument("--data_dir", default=None,
                       help="Local task files train.tsv, dev.tsv [, test.tsv] in PaddleNLP's layouts "
                            "(label<TAB>text_a or qid<TAB>label<TAB>text_a, with a header line). "
                            "Without it the task is downloaded.")
    group.add_argument("--vocab_path", default="senta_word_dict.txt",
                       help="Word dictionary, one word per line, [PAD] then [UNK] first.")


def add_run_args(parser):
    group = parser.add_argument_group("run")
    group.add_argument("--max_seq_length", type=positive_int, default=128,
                       help="Longest input kept, in jieba words; longer texts are truncated.")
    group.add_argument("--batch_size", type=positive_int, default=64, help="Sentences per batch.")
    group.add_argument("--max_epoch", type=positive_int, help="Epochs to train.")
    group.add_argument("--optimizer", choices=["adam", "adadelta"], help="Optimizer.")
    group.add_argument("--lr", type=float, help="Learning rate.")
    group.add_argument("--lr_schedule", choices=["constant", "linear"], default="constant",
                       help="Keep the learning rate, or decay it linearly to 0 over the run.")
    group.add_argument("--max_grad_norm", type=float, default=1.0,
                       help="Clip gradients to this global norm (0 disables).")
    group.add_argument("--seed", type=int, default=2021, help="Random seed.")
    group.add_argument("--device", default=default_device(), choices=["gpu", "cpu", "xpu"],
                       help="Device; gpu when Paddle was built with CUDA, else cpu.")
    group.add_argument("--num_threads", type=positive_int, default=default_num_threads(),
                       help="CPU threads for Paddle's kernels (Paddle's own default is 1).")
    group.add_argument("--output_dir", help="Where checkpoints and the run summary go "
                                            "(default: <job dir>/<task_name>).")
    group.add_argument("--logdir", help="VisualDL log directory (default: <output_dir>/vdl).")
    group.add_argument("--log_freq", type=positive_int, default=10, help="Log training scalars every N steps.")
    group.add_argument("--save_steps", type=positive_int, default=100,
                       help="Evaluate on dev and checkpoint every N steps (and after every epoch).")
    group.add_argument("--init_from_ckpt", default=None,
                       help="Checkpoint directory to resume from (model, optimizer and step).")


def add_student_args(parser):
    group = parser.add_argument_group("Bi-LSTM student")
    group.add_argument("--emb_dim", type=positive_int, default=300, help="Word embedding size.")
    group.add_argument("--hidden_size", type=positive_int, default=300, help="LSTM hidden size per direction.")
    group.add_argument("--num_layers", type=positive_int, default=1, help="LSTM layers.")
    group.add_argument("--dropout_prob", type=float, help="Dropout on embeddings and sentence vector.")
    group.add_argument("--min_freq", type=positive_int, default=1,
                       help="Words seen fewer times in training get no embedding row: they map to [UNK].")
    group.add_argument("--init_scale", type=float, default=0.1,
                       help="Embedding and dense weights start uniform in [-init_scale, init_scale].")
    # The original example asked for the vocabulary size by hand; it is now read from the data.
    group.add_argument("--vocab_size", type=int, default=None, help=argparse.SUPPRESS)


def add_distill_args(parser):
    group = parser.add_argument_group("distillation")
    group.add_argument("--teacher_dir", help="Fine-tuned teacher weights (.pdparams).")
    group.add_argument("--model_name", default="ernie-gram-zh",
                       help="Teacher model and tokenizer name or directory.")
    group.add_argument("--n_iter", type=int, default=20,
                       help="Augmented copies drawn per training sentence.")
    group.add_argument("--alpha", type=float, default=0.0,
                       help="Loss = alpha * CE(gold) + (1 - alpha) * distillation loss.")


JOB_ARGS = {
    "vocab": [add_data_args],
    "student": [add_data_args, add_run_args, add_student_args],
    "distill": [add_data_args, add_run_args, add_student_args, add_distill_args],
}


def parse_args(job, argv=None):
    parser = argparse.ArgumentParser(description=f"distill_lstm: {job}")
    for add in JOB_ARGS[job]:
        add(parser)
    parser.set_defaults(**{k: v for k, v in JOB_DEFAULTS[job].items() if k != "output_dir"})
    args = parser.parse_args(argv)
    if "output_dir" in args and args.output_dir is None:
        args.output_dir = os.path.join(JOB_DEFAULTS[job]["output_dir"], args.task_name.lower())
    if "logdir" in args and args.logdir is None:
        args.logdir = os.path.join(args.output_dir, "vdl")
    return args
