"""The bytes a cache of the teacher states TinyBERT's stage 1 reads would hold (bench_tinybert.py's question)."""
import numpy as np


def cache_bytes(lengths, mapping, teacher_config, bytes_per_value):
    """Bytes of the teacher states stage 1 reads for sentences of `lengths` tokens: embeddings and
    each mapped layer's hidden states (length x width), each mapped layer's attention scores
    (heads x length x length)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    hidden = (1 + len(mapping)) * lengths * teacher_config.hidden_size
    attention = len(mapping) * teacher_config.num_attention_heads * lengths ** 2
    return int((hidden + attention).sum()) * bytes_per_value
