"""The distillation losses, by --distill_loss name: a name args.py offers and this registry lacks is a
KeyError, never a silent fall-through to another loss."""
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
