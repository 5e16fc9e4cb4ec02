"""The distillation losses, by --distill_loss name: the flag offers this registry's keys (args.registry_keys), so
a new loss is its function and its line in DISTILL_LOSSES; and make_compute_loss, the loss a distillation trains on."""
import paddle
import paddle.nn.functional as F


def mse(student_logits, teacher_logits, temperature):
    """Mean squared error on the logits (Tang et al., 2019); temperature unused."""
    return F.mse_loss(student_logits, teacher_logits)


def kl(student_logits, teacher_logits, temperature):
    """KL divergence of the student's softened distribution from the teacher's, scaled by T^2 so that its
    gradients keep their size as T changes (Hinton et al., 2015)."""
    soft_targets = F.softmax(teacher_logits / temperature, axis=-1)
    log_probs = F.log_softmax(student_logits / temperature, axis=-1)
    return F.kl_div(log_probs, soft_targets, reduction="batchmean") * temperature ** 2


def hard(student_logits, teacher_logits, temperature):
    """Cross-entropy on the teacher's argmax labels (ERNIE's data distillation); temperature unused."""
    return F.cross_entropy(student_logits, teacher_logits.argmax(axis=-1))


DISTILL_LOSSES = {"mse": mse, "kl": kl, "hard": hard}


def distill_loss(student_logits, teacher_logits, kind, temperature):
    return DISTILL_LOSSES[kind](student_logits, teacher_logits, temperature)


def make_compute_loss(args, teacher=None, student_inputs=2):
    """compute_loss(model, batch) for fit(): batch = (the student's inputs: ids, lengths, and a pair's second
    ids and lengths: student_inputs fields; teacher logits | teacher inputs; gold labels, -1 for sentences
    without one)."""

    def compute_loss(model, batch):
        inputs, (*targets, labels) = batch[:student_inputs], batch[student_inputs:]
        if teacher is None:
            (teacher_logits,) = targets
        else:
            with paddle.no_grad():
                teacher_logits = teacher.model(*targets)
        logits = model(*inputs)
        soft = distill_loss(logits, teacher_logits, args.distill_loss, args.temperature)
        terms = {args.distill_loss: soft}
        loss = (1 - args.alpha) * soft
        if args.alpha > 0:
            gold = labels >= 0
            if bool(gold.any()):
                terms["ce"] = F.cross_entropy(logits[gold], labels[gold])
                loss = loss + args.alpha * terms["ce"]
        return loss, terms

    return compute_loss
