"""TinyBERT's task distillation (Jiao et al., 2020): the student transformer's shape, its layer map onto the
teacher's layers, stage 1's layer losses and the two-stage job."""
import copy
import logging
import os
import re

import paddle
import paddle.nn as nn
from paddlenlp.data import Stack, Tuple

from checkpoint import SUMMARY, WEIGHTS, Run, load_paddle_file, read_checkpoint_meta, restore_checkpoint
from data import create_dataloader, is_pair
from losses import make_compute_loss
from teacher import Teacher, batchify_fn, encode, teacher_classes
from trainer import create_optimizer, fit, total_train_steps, write_summary
from transfer import transfer_targets
from utils import InputError, remove_path, world

logger = logging.getLogger("distill_lstm")


def layer_map(student_layers, teacher_layers):
    """Teacher layer (1-based) each student layer learns: the uniform mapping m -> m * N / M.

    A student deeper than its teacher is refused rather than mapped: the formula would send its first
    layer to the embeddings (0) and give two layers one target, and no mapping gives M > N layers a
    teacher layer each (TinyBERT compresses, M <= N)."""
    if student_layers > teacher_layers:
        raise InputError(f"--num_layers {student_layers}: the teacher has {teacher_layers} layers; TinyBERT's uniform "
                         "mapping (student layer m learns teacher layer m*N/M) needs a student no deeper than its "
                         f"teacher: give --num_layers {teacher_layers} or fewer")
    return [m * teacher_layers // student_layers for m in range(1, student_layers + 1)]


def student_config(args, teacher_config, num_classes):
    """The teacher's config, narrowed and shortened to the student's sizes."""
    config = copy.deepcopy(teacher_config)
    config.num_hidden_layers, config.hidden_size = args.num_layers, args.hidden_size
    config.num_attention_heads = teacher_config.num_attention_heads  # attention scores compared head by head
    config.intermediate_size = args.intermediate_size or (  # the teacher's ratio to the width
        teacher_config.intermediate_size * args.hidden_size // teacher_config.hidden_size)
    config.num_classes = num_classes
    if hasattr(config, "embedding_size"):
        config.embedding_size = args.hidden_size
    return config


def parameter_counts(student):
    """{"embedding": the token embedding table's parameters, "other": the rest}, as the word students count theirs."""
    embedding = getattr(student, student.base_model_prefix).embeddings.word_embeddings.weight.size
    return {"embedding": embedding, "other": sum(p.size for p in student.parameters()) - embedding}


def init_from_teacher(student, teacher, mapping):
    """Copy the teacher's embeddings, mapped layers, pooler and classifier into the student (of the teacher's
    widths; layer_map has checked its depth)."""
    source = teacher.state_dict()
    state = {}
    for name, tensor in student.state_dict().items():
        match = re.search(r"\.layers\.(\d+)\.", name)
        teacher_name = name if not match else name.replace(
            match[0], f".layers.{mapping[int(match[1])] - 1}.")
        if list(source[teacher_name].shape) != list(tensor.shape):
            raise InputError(f"--init_from_teacher: the teacher's {teacher_name} has shape "
                             f"{list(source[teacher_name].shape)}, the student's {list(tensor.shape)}; give "
                             f"--hidden_size {teacher.config.hidden_size} --intermediate_size "
                             f"{teacher.config.intermediate_size}, the teacher's sizes, or start at random")
        state[name] = source[teacher_name]
    student.set_state_dict(state)


class LayerDistiller(nn.Layer):
    """The student and stage 1's projections (learned where the widths differ)."""

    def __init__(self, student, student_width, teacher_width):
        super().__init__()
        self.student = student
        same = student_width == teacher_width
        self.project_embeddings = nn.Identity() if same else nn.Linear(student_width, teacher_width)
        self.project_hidden = nn.Identity() if same else nn.Linear(student_width, teacher_width)

    def forward(self, input_ids, token_type_ids):  # dev accuracy during stage 1
        return self.student(input_ids, token_type_ids)


def hidden_states(model, input_ids, token_type_ids):
    """The embeddings, then every layer's output."""
    encoder = getattr(model, model.base_model_prefix)
    return encoder(input_ids, token_type_ids, output_hidden_states=True, return_dict=True).hidden_states


def attention_scores(model, states, layer):
    """Layer `layer`'s (1-based) attention scores before the softmax, [batch, heads, query, key], recomputed
    from its input as TinyBERT compares them (PaddleNLP returns only the probabilities)."""
    block = getattr(model, model.base_model_prefix).encoder.layers[layer - 1]
    x = block.norm1(states[layer - 1]) if block.normalize_before else states[layer - 1]
    attn = block.self_attn

    def heads(t):  # [batch, length, width] -> [batch, heads, length, head width]
        return t.reshape([0, 0, attn.num_heads, attn.head_dim]).transpose([0, 2, 1, 3])

    return paddle.matmul(heads(attn.q_proj(x)), heads(attn.k_proj(x)), transpose_y=True) * attn.head_dim ** -0.5


def teacher_states(teacher, input_ids, token_type_ids, mapping):
    """What stage 1 learns from: the teacher's hidden states, and {layer: attention scores} of its mapped layers."""
    states = hidden_states(teacher, input_ids, token_type_ids)
    return states, {t: attention_scores(teacher, states, t) for t in mapping}


def masked_mse(student, teacher, mask):
    """Mean squared error over the elements `mask` keeps (broadcast to their shape: [batch, length, 1] keeps
    every width of the real tokens, [batch, 1, query, key] every head of the pairs of real tokens)."""
    mask = paddle.broadcast_to(mask, student.shape).astype(student.dtype)
    return ((student - teacher) ** 2 * mask).sum() / mask.sum()


def layer_losses(distiller, teacher, input_ids, token_type_ids, mapping, pad_id):
    """{"emb", "hidden", "attn"}: stage 1's three terms, on real tokens only."""
    with paddle.no_grad():
        t_hidden, t_attn = teacher_states(teacher, input_ids, token_type_ids, mapping)
    s_hidden = hidden_states(distiller.student, input_ids, token_type_ids)
    real = (input_ids != pad_id).unsqueeze(-1)  # [batch, length, 1]
    pairs = (real.unsqueeze(1) & real.unsqueeze(1).transpose([0, 1, 3, 2]))  # [batch, 1, query, key]
    terms = {"emb": masked_mse(distiller.project_embeddings(s_hidden[0]), t_hidden[0], real)}
    terms["hidden"] = sum(masked_mse(distiller.project_hidden(s_hidden[m]), t_hidden[t], real)
                          for m, t in enumerate(mapping, start=1))
    terms["attn"] = sum(masked_mse(attention_scores(distiller.student, s_hidden, m), t_attn[t], pairs)
                        for m, t in enumerate(mapping, start=1))
    return terms


def make_layer_loss(teacher, mapping, pad_id):
    def compute_loss(distiller, batch):
        input_ids, token_type_ids, *_ = batch
        terms = layer_losses(distiller, teacher, input_ids, token_type_ids, mapping, pad_id)
        return terms["emb"] + terms["hidden"] + terms["attn"], terms

    return compute_loss


def make_loaders(args, splits, teacher, t):
    """train: the transfer set in the teacher's tokens, with its logits and gold labels (-1 for none); dev, test
    and --eval_sets: their raw texts, as served."""
    records = [(ids, types, logits, label)
               for (ids, types), logits, label in zip(teacher.encode(t.sentences), t.logits, t.labels)]
    loaders = {"train": create_dataloader(records, Tuple(*teacher.pads, Stack(dtype="float32"), Stack(dtype="int64")),
                                          args.batch_size, shuffle=True, seed=args.seed)}
    for split in [s for s in splits if s != "train"]:
        if splits[split][0]["label"] is not None:
            texts = [ex["text"] for ex in splits[split]]
            encoded = encode(teacher.tokenizer, texts, teacher.max_seq_length)
            loaders[split] = create_dataloader([(*e, ex["label"]) for e, ex in zip(encoded, splits[split])],
                                               batchify_fn(teacher.tokenizer), args.batch_size)
    return loaders


def stage1(args, run, recorded, student, teacher, mapping, loaders, tokenizer, label_list, pairs):
    """Train the student's layers on the teacher's for --stage1_epochs, in <output_dir>/stage1 (reused once
    finished, continued from run.init_from_ckpt if that is its last/); leave its last weights in `student`."""
    stage = Run(os.path.join(run.output_dir, "stage1"), os.path.join(run.logdir, "stage1"), f"{run.name} · stage 1",
                run.init_from_ckpt)
    distiller = LayerDistiller(student, args.hidden_size, teacher.model.config.hidden_size)
    if not os.path.isfile(os.path.join(stage.output_dir, SUMMARY)):
        steps = total_train_steps(args, len(loaders["train"]), args.stage1_epochs)
        optimizer = create_optimizer(args, distiller, steps)
        state = None
        meta = {"args": {**recorded, "max_epoch": args.stage1_epochs}, "labels": label_list, "pairs": pairs,
                "tinybert": {"stage": 1, "layer_map": mapping}}
        if stage.init_from_ckpt:
            state = restore_checkpoint(stage.init_from_ckpt, distiller, optimizer, label_list, pairs, "teacher",
                                       meta["args"])["state"]
        else:
            remove_path(stage.output_dir)  # a stage 1 stopped midway and not resumed starts again
        state = fit(distiller, optimizer, loaders["train"], loaders["dev"],
                    make_layer_loss(teacher.model, mapping, tokenizer.pad_token_id), args, stage, meta, state,
                    epochs=args.stage1_epochs)
        write_summary(distiller, {"train": loaders["train"], "dev": loaders["dev"]}, args, stage, state, meta)
    distiller.set_state_dict(load_paddle_file(os.path.join(stage.output_dir, "last", WEIGHTS)))
    logger.info("stage 1: the student's layers from %s", os.path.join(stage.output_dir, "last"))


def train_tinybert(args, run, splits, label_list):
    """Stage 1 (if --stage1_epochs), then stage 2 on the teacher's cached logits over the transfer set, in `run`."""
    if world()[1] > 1:
        raise InputError("tinybert_distill.py runs in one process (its first stage reads the student's inner "
                         "states, which paddle.DataParallel does not synchronise)")
    if args.teacher_logits == "online":
        raise InputError("--teacher_logits online: the transformer student learns from cached logits only")
    pairs = is_pair(splits["train"])
    teacher = Teacher(args, label_list, pairs)
    # what export_model.py and predict.py load it as, and the length it reads: the student learns and is scored on
    # the teacher's tokens at the teacher's length (--max_seq_length is the word students'; served at 128, the
    # 256-token ChnSentiCorp students lost 4.6 points of dev)
    recorded = {**vars(args), "model_type": teacher.model_type, "max_seq_length": teacher.max_seq_length}
    tokenizer = teacher.tokenizer
    # Stage 1 and --init_from_teacher read the teacher's layers: without its weights the run stops here. Stage 2
    # alone reads only its cached logits, tokenizer and sizes: the weightless checkpoint the benches commit serves it.
    config = teacher.model.config if args.stage1_epochs or args.init_from_teacher else teacher.config
    # The student before the teacher's logits (minutes, and a cache entry): a depth or width it cannot have
    # stops the run before anything is written.
    mapping = layer_map(args.num_layers, config.num_hidden_layers)
    paddle.seed(args.seed)
    with paddle.utils.unique_name.guard():
        student = teacher_classes(teacher.model_type)[0](student_config(args, config, len(label_list)))
        if args.init_from_teacher:
            init_from_teacher(student, teacher.model, mapping)
        t = transfer_targets(args, splits, label_list, teacher)
        loaders = make_loaders(args, splits, teacher, t)
        parameters = parameter_counts(student)
        logger.info("student: %d layers (teacher layers %s), hidden %d, %d parameters (%d in the token embedding); "
                    "output in %s", args.num_layers, mapping, args.hidden_size, sum(parameters.values()),
                    parameters["embedding"], run.output_dir)
        resume_stage = None
        if run.init_from_ckpt:  # stage 1's <output_dir>/stage1/last, or stage 2's <output_dir>/last
            resume_stage = read_checkpoint_meta(run.init_from_ckpt).get("tinybert", {}).get("stage", 2)
        if args.stage1_epochs and resume_stage != 2:
            stage1(args, run, recorded, student, teacher, mapping, loaders, tokenizer, label_list, pairs)
        optimizer = create_optimizer(args, student, total_train_steps(args, len(loaders["train"])))
        state = None
        if resume_stage == 2:
            state = restore_checkpoint(run.init_from_ckpt, student, optimizer, label_list, pairs, "teacher",
                                       recorded)["state"]
        meta = {"args": recorded, "labels": label_list, "pairs": pairs,
                "tinybert": {"stage": 2, "layer_map": mapping, "parameters": parameters}}
        state = fit(student, optimizer, loaders["train"], loaders["dev"], make_compute_loss(args), args, run, meta,
                    state, extras=[tokenizer])
        write_summary(student, loaders, args, run, state, meta,
                      {"teacher_dev_acc": t.teacher_dev_acc, "teacher_dev_unseen_acc": t.teacher_dev_unseen_acc,
                       **({"teacher_dev_f1": t.teacher_dev_f1} if pairs else {}),
                       "parameters": parameters, "transfer_set": {"sentences": len(t.sentences)}})

