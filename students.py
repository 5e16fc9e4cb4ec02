"""The students: small classifiers over jieba word ids, the one factory that builds them, and what they
read (their vocabulary, word ids, batches).

Every student reads (word ids padded at the end, true lengths) and gives logits, so training,
distillation, export and predict.py treat them alike. On a pair task (text matching) it reads both
sides' (word ids, lengths), encodes each with the same layers (a siamese encoder) and classifies their
combination (pair_op). A checkpoint's "model" entry is the config
student_config() made ({"student": name, **constructor arguments}); build_student() rebuilds any
student from it. A new student is a class here and its line in STUDENTS, which --student offers
(args.registry_keys), with any size flag of its own in args.add_student_args.
"""
import inspect
import logging
import os

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.data import Pad, Stack, Tuple

from checkpoint import read_checkpoint_meta, require_kind
from data import PAD, UNK, lean_vocab, load_vocab, sides, vocab_from_words, vocab_words
from utils import InputError, file_sha256
from vectors import read_vectors, vector_words

logger = logging.getLogger("distill_lstm")


# How a pair's two sentence vectors h1, h2 meet: [h1, h2, h1 op h2, |h1 - h2|] goes to the dense layer.
# Tang et al. (2019) multiply; PaddleNLP's distill_lstm adds.
PAIR_OPS = {"mul": paddle.multiply, "add": paddle.add}


class Student(nn.Layer):
    """Embedding (+ word dropout) -> the subclass's encoder -> dropout -> tanh dense -> logits.

    A subclass creates its encoder layers between super().__init__() and add_head(), and
    implements encode(embedded, seq_len) -> one vector per sentence that ignores the padding,
    so a sentence's logits never depend on its batch. With a pair_op the student reads pairs: both
    sides through the same embedding and encoder, their vectors combined by PAIR_OPS[pair_op]."""

    def __init__(self, vocab_size, emb_dim, dropout_prob, init_scale, padding_idx, word_dropout, unk_id, pair_op=None):
        super().__init__()
        self.padding_idx, self.word_dropout, self.unk_id, self.pair_op = padding_idx, word_dropout, unk_id, pair_op
        self.uniform = paddle.ParamAttr(initializer=nn.initializer.Uniform(-init_scale, init_scale))
        self.embedder = nn.Embedding(vocab_size, emb_dim, padding_idx=padding_idx, weight_attr=self.uniform)
        self.dropout = nn.Dropout(dropout_prob)

    def add_head(self, sentence_size, hidden_size, num_classes, fc_hidden_size=0):
        """A tanh dense layer of hidden_size, and a second one of fc_hidden_size unless 0, before the logits."""
        if self.pair_op:
            sentence_size *= 4  # [h1, h2, h1 op h2, |h1 - h2|]
        self.fc = nn.Linear(sentence_size, hidden_size, weight_attr=self.uniform)
        self.fc2 = nn.Linear(hidden_size, fc_hidden_size, weight_attr=self.uniform) if fc_hidden_size else None
        self.output_layer = nn.Linear(fc_hidden_size or hidden_size, num_classes, weight_attr=self.uniform)

    def forward(self, input_ids, seq_len, input_ids_b=None, seq_len_b=None):
        sentence = self.sentence(input_ids, seq_len)
        if self.pair_op:
            other = self.sentence(input_ids_b, seq_len_b)
            sentence = paddle.concat([sentence, other, PAIR_OPS[self.pair_op](sentence, other),
                                      paddle.abs(sentence - other)], axis=-1)
        hidden = paddle.tanh(self.fc(self.dropout(sentence)))
        if self.fc2 is not None:
            hidden = paddle.tanh(self.fc2(hidden))
        return self.output_layer(hidden)

    def sentence(self, input_ids, seq_len):
        """One vector per sentence."""
        if self.training and self.word_dropout > 0:
            input_ids = self.drop_words(input_ids)
        return self.encode(self.dropout(self.embedder(input_ids)), seq_len)

    def drop_words(self, input_ids):
        """Replace words by [UNK] at rate word_dropout: regularises, and trains the [UNK] row
        that unseen dev and test words map to (every training word has its own row)."""
        drop = (paddle.rand(input_ids.shape) < self.word_dropout) & (input_ids != self.padding_idx)
        return paddle.where(drop, paddle.full_like(input_ids, self.unk_id), input_ids)


class BiRNN(Student):
    """One bidirectional recurrent layer; the sentence is [last forward state; last backward state]
    (Tang et al.). A subclass names its cell: the layer's attribute, hence its weights' names."""
    cell, name = None, None

    def __init__(self, vocab_size, num_classes, emb_dim=300, hidden_size=300, num_layers=1, dropout_prob=0.0,
                 init_scale=0.1, padding_idx=0, word_dropout=0.0, unk_id=1, pair_op=None):
        super().__init__(vocab_size, emb_dim, dropout_prob, init_scale, padding_idx, word_dropout, unk_id, pair_op)
        setattr(self, self.name, self.cell(emb_dim, hidden_size, num_layers, direction="bidirect",
                                           dropout=dropout_prob if num_layers > 1 else 0.0))
        self.add_head(2 * hidden_size, hidden_size, num_classes)

    def encode(self, embedded, seq_len):
        # sequence_length stops each direction at the sentence's own end: padding never reaches the final states
        _, final = getattr(self, self.name)(embedded, sequence_length=seq_len)
        hidden = final[0] if isinstance(final, tuple) else final  # an LSTM's are (hidden, cell)
        return paddle.concat([hidden[-2], hidden[-1]], axis=-1)


class BiLSTM(BiRNN):
    cell, name = nn.LSTM, "lstm"


class BiGRU(BiRNN):
    """model_distill's student."""
    cell, name = nn.GRU, "gru"


class TextCNN(Student):
    """Kim's CNN (2014): convolutions of several window sizes over the words, tanh, max over time."""

    def __init__(self, vocab_size, num_classes, emb_dim=300, hidden_size=300, num_filters=100,
                 window_sizes=(3, 4, 5), dropout_prob=0.0, init_scale=0.1, padding_idx=0, word_dropout=0.0,
                 unk_id=1, pair_op=None):
        super().__init__(vocab_size, emb_dim, dropout_prob, init_scale, padding_idx, word_dropout, unk_id, pair_op)
        self.window_sizes = list(window_sizes)
        self.convs = nn.LayerList([nn.Conv1D(emb_dim, num_filters, w, data_format="NLC") for w in self.window_sizes])
        self.add_head(num_filters * len(self.window_sizes), hidden_size, num_classes)

    def encode(self, embedded, seq_len):
        # Zero rows (as padding embeds) after every sentence: a sentence shorter than a window
        # still has one, and a window's content never depends on how wide the batch is.
        widest = max(self.window_sizes)
        embedded = F.pad(embedded, [0, widest - 1], data_format="NLC")
        pooled = []
        for width, conv in zip(self.window_sizes, self.convs):
            features = paddle.tanh(conv(embedded))  # [batch, positions, filters]
            # windows that start inside the sentence (at least one): the batch's padding is left out
            valid = paddle.maximum(seq_len - width + 1, paddle.ones_like(seq_len))
            starts = paddle.arange(paddle.shape(features)[1], dtype=seq_len.dtype)
            mask = (starts.unsqueeze(0) < valid.unsqueeze(1)).unsqueeze(-1)
            # -2 is below tanh's range: a masked window never wins the max
            pooled.append(max_over_time(paddle.where(mask, features, paddle.full_like(features, -2.0))))
        return paddle.concat(pooled, axis=-1)


def max_over_time(features):
    """features [batch, positions, channels] -> [batch, channels]: max(axis=1) in values and gradient, as
    argmax + gather, because Paddle's CPU backward of max over a middle axis is slow (1.75 s for a batch
    of 64 x 120 windows x 100 filters; this, 6 ms: TextCNN trained 3 s a step)."""
    return paddle.take_along_axis(features, features.argmax(axis=1, keepdim=True), axis=1).squeeze(1)


class BOW(Student):
    """Bag of words: the mean of the sentence's word embeddings, or as PaddleNLP's BoW model
    (pooling="sum", fc_hidden_size=96) tanh of their sum and a second tanh layer."""

    def __init__(self, vocab_size, num_classes, emb_dim=300, hidden_size=300, pooling="mean", fc_hidden_size=0,
                 dropout_prob=0.0, init_scale=0.1, padding_idx=0, word_dropout=0.0, unk_id=1, pair_op=None):
        super().__init__(vocab_size, emb_dim, dropout_prob, init_scale, padding_idx, word_dropout, unk_id, pair_op)
        self.pooling = pooling
        self.add_head(emb_dim, hidden_size, num_classes, fc_hidden_size)

    def encode(self, embedded, seq_len):
        # the sentence's own words, by its length (the padding's row is zero as well; the length also
        # keeps seq_len an input of the exported program, which a sum alone would not read)
        positions = paddle.arange(paddle.shape(embedded)[1], dtype=seq_len.dtype)
        words = (positions.unsqueeze(0) < seq_len.unsqueeze(1)).unsqueeze(-1).astype(embedded.dtype)
        summed = (embedded * words).sum(axis=1)
        if self.pooling == "sum":
            return paddle.tanh(summed)  # a sum grows with the sentence: tanh bounds it, as PaddleNLP's
        return summed / paddle.clip(seq_len, min=1).astype(embedded.dtype).unsqueeze(-1)


STUDENTS = {"bilstm": BiLSTM, "gru": BiGRU, "textcnn": TextCNN, "bow": BOW}


def student_config(args, vocab, num_classes, pairs):
    """{"student": args.student, **its constructor's arguments}: sizes from args, the rest from the data."""
    from_data = {"vocab_size": len(vocab), "num_classes": num_classes, "padding_idx": vocab.to_indices(PAD),
                 "unk_id": vocab.to_indices(UNK), "pair_op": args.pair_op if pairs else None}
    names = list(inspect.signature(STUDENTS[args.student]).parameters)
    if pairs and "pair_op" not in names:
        raise InputError(f"--student {args.student} reads single texts: it has no pair_op for a pair task")
    return {"student": args.student, **{n: from_data[n] if n in from_data else getattr(args, n) for n in names}}


def build_student(config):
    """The student a config describes (a checkpoint's "model" entry; bilstm before it was recorded)."""
    config = dict(config)
    return STUDENTS[config.pop("student", "bilstm")](**config)


def parameter_counts(model):
    """{"embedding": the word table's parameters, "other": the rest}: the table is most of a student, and
    what grows with the data."""
    embedding = model.embedder.weight.size
    return {"embedding": embedding, "other": sum(p.size for p in model.parameters()) - embedding}


def convert_example(words, vocab, max_seq_length, unseen_words="unk"):
    """(word ids, length) of a segmented sentence, truncated to max_seq_length words. A word
    without an embedding row reads as [UNK] or, with unseen_words="chars", as its characters
    when every one has a row (很甜 -> 很 甜)."""
    if unseen_words == "chars":
        words = spell_unseen(words, vocab.token_to_idx)
    ids = vocab.to_indices(words[:max_seq_length])
    return ids, len(ids)


def spell_unseen(words, known):
    """`words`, each one not in `known` spelled out in its characters if they all are."""
    spelled = []
    for word in words:
        if word in known or not all(char in known for char in word):
            spelled.append(word)
        else:
            spelled.extend(word)
    return spelled


def student_dictionary(args, resume_from=None):
    """The words the student may have rows for, read and checked: the vocabulary of the checkpoint a run
    resumes from, else --vocab_path's dictionary."""
    if resume_from:
        meta = read_checkpoint_meta(resume_from)
        require_kind(resume_from, meta, "student")
        trained = meta["model"].get("student", "bilstm")
        if trained != args.student:
            raise InputError(f"{resume_from}: a {trained} checkpoint; resume it with --student {trained}")
        return vocab_from_words(meta["vocab"])
    vocab = load_vocab(args.vocab_path)
    if args.vocab_size is not None:
        logger.warning("--vocab_size is no longer needed: it is read from %s", args.vocab_path)
    return vocab


def student_vocab(args, dictionary, train_words, resume_from=None):
    """The vocabulary the student's embedding rows follow: a resumed run keeps its checkpoint's, a new
    one takes the dictionary's words the training sentences use, then with --add_vector_words the words
    of --init_embeddings' file that it lacks (those no training sentence has keep their vectors: no gradient
    reaches their rows; those under --min_freq then train)."""
    if resume_from:
        return dictionary
    vocab = lean_vocab(dictionary, train_words, args.min_freq)
    if args.add_vector_words:
        words = vocab_words(vocab)
        known = set(words)
        added = [w for w in vector_words(args.init_embeddings) if w not in known]
        logger.info("--add_vector_words: %d words of %s that the vocabulary lacks get rows",
                    len(added), args.init_embeddings)
        vocab = vocab_from_words(words + added)
    return vocab


def init_embeddings(embedder, vocab, path, word_counts, init_scale):
    """Start the rows of `vocab`'s words that the file at `path` has from their vectors; the others keep their
    random start, uniform in ±init_scale ([PAD]'s stays 0; [UNK] is not looked up). The vectors are scaled by
    one factor (their directions kept) so that their values spread as the random rows' do: word2vec files
    differ in scale (synonyms' values have a standard deviation of 2.8, 50x the random rows'), and rows that
    start 50x apart would keep the words without a vector (不, 很, 好) faint all through training.
    `word_counts` [vocab size] are the training set's. Returns what the checkpoint records: the file (path,
    sha256, dim), the factor, and how much of the vocabulary and of the training words it covered."""
    words = vocab_words(vocab)
    vectors, dim = read_vectors(path, [w for w in words if w not in (PAD, UNK)], embedder.weight.shape[1])
    found = [i for i, word in enumerate(words) if word in vectors]
    weight = embedder.weight.numpy()
    scale = 1.0
    if found:
        table = np.stack([vectors[words[i]] for i in found])
        spread = float(table.std())
        scale = init_scale / np.sqrt(3) / spread if spread > 0 else 1.0  # uniform in ±a: std a / sqrt(3)
        weight[found] = table * scale
    embedder.weight.set_value(weight)
    share = float(word_counts[found].sum() / max(word_counts.sum(), 1))
    untrained = int((word_counts[found] == 0).sum())
    logger.info("--init_embeddings %s: %d of the vocabulary's %d words start from their vectors, scaled by %.4g "
                "(%.1f%% of the training words; %d in no training sentence); the others at random", path,
                len(found), len(words) - 2, scale, 100 * share, untrained)
    return {"path": os.path.abspath(path), "sha256": file_sha256(path), "dim": dim, "scale": scale,
            "words_found": len(found), "vocab_words": len(words) - 2, "training_words_share": share,
            "words_found_untrained": untrained}


def student_inputs(words, vocab, max_seq_length, unseen_words="unk"):
    """(ids, length) of a segmented sentence; (ids_a, length_a, ids_b, length_b) of a pair."""
    return tuple(x for side in sides(words) for x in convert_example(side, vocab, max_seq_length, unseen_words))


def to_records(words, labels, vocab, args):
    """(*student inputs, label) of each segmented sentence or pair, as args.max_seq_length and
    args.unseen_words say."""
    return [(*student_inputs(w, vocab, args.max_seq_length, args.unseen_words), label)
            for w, label in zip(words, labels)]


def word_counts(records, vocab_size, pairs):
    """How often each word id occurs in to_records' records, both sides of a pair: [vocab_size]."""
    ids = [record[field] for record in records for field in ((0, 2) if pairs else (0,))]
    return np.bincount(np.fromiter((i for side in ids for i in side), dtype=np.int64), minlength=vocab_size)


def input_fields(pad_id, pairs):
    """How a batch stacks the student's inputs: word ids padded per batch, lengths; for each side of a pair."""
    return (Pad(axis=0, pad_val=pad_id, dtype="int64"), Stack(dtype="int64")) * (2 if pairs else 1)


def batchify_fn(pad_id, pairs):
    """(the student's inputs, targets) batches from to_records' records."""
    return Tuple(*input_fields(pad_id, pairs), Stack())
