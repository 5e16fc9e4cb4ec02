"""Pretrained word vectors, the start Tang et al. give the students: reading a word2vec file (C binary or
text) and starting a student's embedding rows from it (--init_embeddings).

Both formats open with a "count dim" line. The binary one then has count records of a word, a space and
dim little-endian float32 (a newline between records allowed); the text one, count lines of a word and
dim numbers. The format is told from the first record, not from the file's name (synonyms' words.vector
is binary). The file is streamed: only the vectors asked for are kept."""
import contextlib
import functools
import logging
import mmap
import os

import numpy as np

from data import PAD, UNK, vocab_words
from utils import InputError, file_sha256

logger = logging.getLogger("distill_lstm")

MAX_WORD_BYTES = 1000  # a binary record whose word runs longer is garbage, not a word


def init_embeddings(embedder, vocab, path, word_counts):
    """Start the rows of `vocab`'s words that the file at `path` has from their vectors; the others keep their
    random start ([PAD]'s stays 0; [UNK] is not looked up). `word_counts` [vocab size] are the training set's.
    Returns what the checkpoint records: the file (path, sha256, dim) and how much of the vocabulary and of the
    training words it covered."""
    words = vocab_words(vocab)
    vectors, dim = read_vectors(path, [w for w in words if w not in (PAD, UNK)], embedder.weight.shape[1])
    found = [i for i, word in enumerate(words) if word in vectors]
    weight = embedder.weight.numpy()
    if found:
        weight[found] = np.stack([vectors[words[i]] for i in found])
    embedder.weight.set_value(weight)
    share = float(word_counts[found].sum() / max(word_counts.sum(), 1))
    logger.info("--init_embeddings %s: %d of the vocabulary's %d words start from their vectors (%.1f%% of the "
                "training words); the others at random", path, len(found), len(words) - 2, 100 * share)
    return {"path": os.path.abspath(path), "sha256": file_sha256(path), "dim": dim, "words_found": len(found),
            "vocab_words": len(words) - 2, "training_words_share": share}


def read_vectors(path, words, dim=None):
    """({word: float32 vector} of the `words` the file has, the file's dim). With `dim`, a file of another
    dimension is refused before its records are read."""
    with mapped(path) as data:
        count, file_dim = read_header(path, data, dim)
        records = text_records if is_text(data) else binary_records
        wanted, vectors = set(words), {}
        for word, where, vector in records(path, data, count, file_dim):
            if word in wanted:
                vectors[word] = vector()
                if not np.all(np.isfinite(vectors[word])):
                    raise InputError(f"{path}: {where}: {word!r} has values that are not finite numbers")
    return vectors, file_dim


def check_header(path, dim):
    """Refuse, in a moment, a file that is missing, has no word2vec header or vectors of another dim than `dim`."""
    with mapped(path) as data:
        read_header(path, data, dim)


@contextlib.contextmanager
def mapped(path):
    """The file's bytes, mapped (read as needed, never all held)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such word-vector file")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty file, not word2vec vectors")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


def read_header(path, data, dim=None):
    """(count, dim) of the "count dim" line, refused unless its dim is `dim` (if given); `data` is left at the
    first record."""
    line = data.readline()
    fields = line.split()
    if not line.endswith(b"\n") or len(fields) != 2 or not all(f.isdigit() and int(f) > 0 for f in fields):
        raise InputError(f"{path}:1: expected word2vec's header 'count dim' (two positive integers), "
                         f"found {line[:40]!r}")
    count, file_dim = int(fields[0]), int(fields[1])
    if dim is not None and file_dim != dim:
        raise InputError(f"{path}: {file_dim}-dimensional vectors, the student's embedding has {dim} "
                         f"(--emb_dim {dim}); give --emb_dim {file_dim}")
    return count, file_dim


def is_text(data):
    """Whether the first record is a line of a word and numbers (binary floats never read as that)."""
    start = data.tell()
    line = data.readline()
    data.seek(start)
    try:
        fields = line.decode("utf-8").rstrip("\r\n ").split(" ")
        np.asarray(fields[1:], dtype=np.float32)
    except (UnicodeDecodeError, ValueError):
        return False
    return len(fields) > 1


def text_records(path, data, count, dim):
    """(word, where, its vector's getter) of each line; every line is checked."""
    lineno = 1
    for lineno, line in enumerate(iter(data.readline, b""), start=2):
        if lineno > count + 1:
            if line.strip():
                raise InputError(f"{path}:{lineno}: more lines than the {count} the header announces")
            continue
        try:
            word, *values = line.decode("utf-8").rstrip("\r\n ").split(" ")
            vector = np.asarray(values, dtype=np.float32)
        except UnicodeDecodeError as e:
            raise InputError(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})")
        except ValueError:
            raise InputError(f"{path}:{lineno}: not a word and {dim} numbers")
        if len(values) != dim:
            raise InputError(f"{path}:{lineno}: {len(values)} numbers after the word, the header says {dim}")
        yield word, f"line {lineno}", vector.copy
    if lineno < count + 1:
        raise InputError(f"{path}: {lineno - 1} lines of vectors, the header announces {count} (truncated?)")


def binary_records(path, data, count, dim):
    """(word, where, its vector's getter) of each record; a vector is decoded only when asked for."""
    size, pos = 4 * dim, data.tell()
    for record in range(1, count + 1):
        while data[pos:pos + 1] == b"\n":
            pos += 1
        where = f"record {record} of {count} (byte {pos})"
        space = data.find(b" ", pos, pos + MAX_WORD_BYTES)
        if space < 0 or space + 1 + size > len(data):
            garbled = space < 0 and pos + MAX_WORD_BYTES <= len(data)
            problem = f"no word ending in a space within {MAX_WORD_BYTES} bytes" if garbled else "truncated"
            raise InputError(f"{path}: {where}: {problem} (not a complete word2vec binary file)")
        try:
            word = data[pos:space].decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: {where}: the word is not valid UTF-8 ({e.reason})")
        yield word, where, functools.partial(float32s, data, space + 1, dim)
        pos = space + 1 + size
    rest = data[pos:].strip()
    if rest:
        raise InputError(f"{path}: {len(rest)} bytes after the {count} records the header announces")


def float32s(data, offset, dim):
    return np.frombuffer(data[offset:offset + 4 * dim], dtype="<f4").astype(np.float32)
