"""Pretrained word vectors: reading a word2vec file (C binary or text), for the start Tang et al. give the
students' embedding rows (--init_embeddings) and for TinyBERT's nearest-neighbour word substitution (--p_nn).

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
import paddle
from tqdm import tqdm

from utils import InputError

logger = logging.getLogger("distill_lstm")

MAX_WORD_BYTES = 1000  # a binary record whose word runs longer is garbage, not a word


def read_vectors(path, words=None, dim=None):
    """({word: float32 vector} of the `words` the file has (all its words without `words`), the file's dim).
    With `dim`, a file of another dimension is refused before its records are read."""
    with mapped(path) as data:
        file_dim, records = header_and_records(path, data, dim)
        wanted, vectors = None if words is None else set(words), {}
        for word, where, vector in records:
            if wanted is None or word in wanted:
                vectors[word] = vector()
                if not np.all(np.isfinite(vectors[word])):
                    raise InputError(f"{path}: {where}: {word!r} has values that are not finite numbers")
    return vectors, file_dim


def vector_words(path):
    """The file's words, in its order (word2vec writes the most frequent first)."""
    with mapped(path) as data:
        _, records = header_and_records(path, data)
        return list(dict.fromkeys(word for word, _, _ in records))


def header_and_records(path, data, dim=None):
    """(the file's dim, its (word, where, vector getter) records, text or binary as the first record says)."""
    count, file_dim = read_header(path, data, dim)
    records = text_records if is_text(data) else binary_records
    return file_dim, records(path, data, count, file_dim)


def nearest_neighbours(path, words, k):
    """{word: its k nearest words in the file by cosine similarity} for each of `words` the file has: TinyBERT's
    candidates for replacing a whole word. Each word's neighbours are listed in the file's order, so which
    of them is drawn depends on which k they are, not on how their similarities compare in the last bits."""
    vectors, _ = read_vectors(path)
    file_words = list(vectors)
    index = {word: i for i, word in enumerate(file_words)}
    unit = np.stack(list(vectors.values()))
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    corpus = list(dict.fromkeys(words))
    queries = [word for word in corpus if word in index]
    k = min(k, len(file_words) - 1)
    neighbours = {}
    if k < 1:
        return neighbours
    chunk = max(1, 2 ** 25 // len(file_words))  # ~128 MB of similarities at a time
    for start in tqdm(range(0, len(queries), chunk), desc="nearest neighbours", unit="chunk", dynamic_ncols=True):
        rows = np.array([index[word] for word in queries[start:start + chunk]])
        similarity = unit[rows] @ unit.T
        similarity[np.arange(len(rows)), rows] = -np.inf  # a word is not its own neighbour
        top = np.sort(paddle.topk(paddle.to_tensor(similarity), k, axis=1)[1].numpy(), axis=1)  # 2x numpy's
        neighbours.update((file_words[row], tuple(file_words[j] for j in found)) for row, found in zip(rows, top))
    logger.info("%s: the %d nearest neighbours of %d of the corpus's %d words", path, k, len(neighbours),
                len(corpus))
    return neighbours


def check_header(path, dim=None):
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
