"""Datasets, jieba segmentation, the word vocabulary, augmentation and length-grouped DataLoaders.

Over 350 lines because it holds what the design card puts here; the segmentation and augmentation code's source
is part of the teacher-logits cache key (transfer.code_version), so it is not moved for length alone."""
import collections
import decimal
import inspect
import logging
import os
import re

import jieba
import jieba.posseg
import numpy as np
import paddle
from paddlenlp.data import Vocab
from paddlenlp.datasets import MapDataset, load_dataset
from tqdm import tqdm

from utils import InputError, world
from vectors import nearest_neighbours

PAD, UNK = "[PAD]", "[UNK]"
# Column layouts PaddleNLP's task files use; a header line names them. A pair task's (text matching: LCQMC)
# adds text_b, and each of its texts is the pair (text_a, text_b).
SINGLE_LAYOUTS = (("label", "text_a"), ("qid", "label", "text_a"), ("qid", "text_a"), ("text_a",))
LAYOUTS = SINGLE_LAYOUTS + tuple(layout + ("text_b",) for layout in SINGLE_LAYOUTS)
DEV_UNSEEN = "dev_unseen"  # the split of dev's texts not in train
TEXT_COLUMN = "text_a"  # the column every layout's text is in: what the models are trained on
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")  # a label that is a number (no exponent, nan or inf)

logger = logging.getLogger("distill_lstm")
jieba.setLogLevel(logging.WARNING)


def utf8_lines(path):
    """Yield (line number, line without its newline) of a UTF-8 file (a BOM is allowed), or an
    InputError naming the file and the line that is not UTF-8."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})")


def read_tsv(path):
    """Yield {"text", "label", "line"} from a PaddleNLP-style tsv, checking every row; a pair layout's text is
    the pair (text_a, text_b)."""
    columns = None
    for lineno, line in utf8_lines(path):
        fields = line.split("\t")
        if columns is None:
            columns = tuple(c.strip() for c in fields)
            if columns not in LAYOUTS:
                raise InputError(f"{path}:{lineno}: header {line!r} is not one of "
                                 + ", ".join("<TAB>".join(c) for c in LAYOUTS))
            continue
        if not line:
            continue
        if len(fields) != len(columns):
            raise InputError(f"{path}:{lineno}: expected {len(columns)} tab-separated fields "
                             f"({', '.join(columns)}), found {len(fields)}")
        row = dict(zip(columns, fields))
        sides = [c for c in (TEXT_COLUMN, "text_b") if c in columns]
        for side in sides:
            if not row[side].strip():
                raise InputError(f"{path}:{lineno}: empty {side if len(sides) > 1 else 'text'}")
        text = tuple(row[side].strip() for side in sides)
        label = clean_label(row.get("label", ""))
        if "label" in columns and label is None:
            raise InputError(f"{path}:{lineno}: empty label")
        yield {"text": text if len(text) > 1 else text[0], "label": label, "line": lineno}
    if columns is None:
        raise InputError(f"{path}: empty file")


def clean_label(field):
    """A label as written in a tsv, or None when empty: the one rule of training, --eval_sets,
    label_errors.py and predict.py --eval. Spaces around it are dropped (the public ChnSentiCorp test
    file has a '  1') and a number is one class whatever its spelling: a column pandas saved as floats
    reads 1.0 where the rest of the file reads 1."""
    label = field.strip()
    return canonical_number(label) if NUMBER.fullmatch(label) else label or None


def canonical_number(text):
    """A number's one spelling: '1.0', '+1', '01' -> '1'; '0.50', '.5' -> '0.5'."""
    value = decimal.Decimal(text)
    return str(int(value)) if value == int(value) else format(value, "f").rstrip("0")


def read_lines(path, pairs=False):
    """The non-blank lines of a UTF-8 text file of sentences, one per line, stripped; with pairs, each
    line is a pair's two texts separated by a tab, read as (text_a, text_b)."""
    lines = [pair_of(line, f"{path}:{lineno}") if pairs else line.strip()
             for lineno, line in utf8_lines(path) if line.strip()]
    if not lines:
        raise InputError(f"{path}: no sentences")
    return lines


def pair_of(line, where):
    """(text_a, text_b) of a line holding the two texts separated by a tab; `where` names the line in errors."""
    pair, error = split_pair(line)
    if error:
        raise InputError(f"{where}: {error}")
    return pair


def split_pair(line):
    """((text_a, text_b), None) of a line holding the two texts separated by a tab, or (None, why it is not one):
    the one rule of unlabelled pair files and predict.py's lines, which answers a bad line with an error row."""
    fields = line.strip("\r\n").split("\t")
    if len(fields) != 2:
        return None, (f"expected a pair, text_a and text_b separated by a tab; found {len(fields)} "
                      f"field{'s' if len(fields) > 1 else ''}")
    for name, text in zip(("text_a", "text_b"), fields):
        if not text.strip():
            return None, f"empty {name}"
    return tuple(text.strip() for text in fields), None


def sorted_labels(labels):
    """Numeric labels in numeric order ('2' before '10'), others alphabetically."""
    labels = set(labels)
    if all(NUMBER.fullmatch(label) for label in labels):
        return sorted(labels, key=decimal.Decimal)
    return sorted(labels)


def load_local_splits(data_dir):
    """train/dev (and test.tsv when present) from data_dir; the labels come from train."""
    paths = {s: os.path.join(data_dir, f"{s}.tsv") for s in ("train", "dev", "test")}
    if not os.path.exists(paths["test"]):
        del paths["test"]
    splits = {s: load_dataset(read_tsv, path=p, lazy=False) for s, p in paths.items()}
    for split, ds in splits.items():
        if len(ds) == 0:
            raise InputError(f"{paths[split]}: no rows after the header")
    for split in ("train", "dev"):
        if splits[split][0]["label"] is None:
            raise InputError(f"{paths[split]}:1: the {split} split needs a label column")
    for split in splits:
        check_kind(splits[split], paths[split], is_pair(splits["train"]), paths["train"])
    label_list = sorted_labels(ex["label"] for ex in splits["train"])
    if len(label_list) < 2:
        raise InputError(f"{paths['train']}: every row has label {label_list[0]!r}; "
                         "a classifier needs at least two labels")
    for split, ds in splits.items():
        to_label_ids(ds, paths[split], label_list)
    return splits, label_list


def is_pair(ds):
    """Whether a dataset's texts are pairs (text_a, text_b): a text-matching task's."""
    return isinstance(ds[0]["text"], tuple)


def texts_kind(pairs):
    """What a task's texts are, in words."""
    return "pairs (text_a, text_b)" if pairs else "single texts (no text_b)"


def positive_class(label_list, pairs):
    """The class whose F1 a text-matching task reports beside accuracy, as GLUE's QQP and LCQMC do: label "1"
    (the same intent) of a two-label pair task; None elsewhere (accuracy only)."""
    return label_list.index("1") if pairs and len(label_list) == 2 and "1" in label_list else None


def check_kind(ds, path, pairs, task):
    """A file of the task's kind: pairs where the task has pairs, single texts where it has single texts."""
    if is_pair(ds) != pairs:
        raise InputError(f"{path}: {texts_kind(not pairs)}, where {task} has {texts_kind(pairs)}")


def to_label_ids(ds, path, label_list):
    """Replace each example's label by its index in label_list (train's labels)."""
    label_ids = {label: i for i, label in enumerate(label_list)}
    for ex in ds:
        if ex["label"] is None:
            continue
        if ex["label"] not in label_ids:
            raise InputError(f"{path}:{ex['line']}: unknown label {ex['label']!r} "
                             f"(train has {', '.join(label_list)})")
        ex["label"] = label_ids[ex["label"]]


def load_eval_sets(eval_sets, label_list, pairs):
    """{name: dataset} of --eval_sets, read and checked as dev is, labels mapped to train's."""
    sets = {}
    for name, path in eval_sets:
        ds = load_dataset(read_tsv, path=path, lazy=False)
        if len(ds) == 0:
            raise InputError(f"{path}: no rows after the header")
        if ds[0]["label"] is None:
            raise InputError(f"{path}:1: --eval_sets {name} needs a label column")
        check_kind(ds, path, pairs, "the task")
        to_label_ids(ds, path, label_list)
        sets[name] = ds
    return sets


# The tasks PaddleNLP downloads (load_dataset), and each one's text in its examples.
ONLINE_TASKS = {"chnsenticorp": lambda ex: ex["text"], "lcqmc": lambda ex: (ex["query"], ex["title"])}


def load_online_splits(task_name):
    task = task_name.lower()
    if task not in ONLINE_TASKS:
        raise InputError(f"task {task_name!r}: online loading knows {', '.join(ONLINE_TASKS)}; "
                         "give other tasks' files with --data_dir")
    try:
        train, dev = load_dataset(task, splits=["train", "dev"])
    except Exception as e:  # network errors come as many kinds, through PaddleNLP's downloader
        raise InputError(f"{task}: download failed ({type(e).__name__}: {e}); "
                         "offline? give the task's train.tsv and dev.tsv with --data_dir")
    text_of = ONLINE_TASKS[task]
    splits = {name: MapDataset([{"text": text_of(ex), "label": ex["label"]} for ex in ds])
              for name, ds in (("train", train), ("dev", dev))}
    return splits, list(train.label_list)


def load_splits(args):
    """({split: MapDataset of {"text", "label"}}, label_list) for the task: train, dev, test when
    there is one, dev_unseen (dev's texts that train does not hold), then each of --eval_sets under
    its name."""
    if args.data_dir:
        splits, label_list = load_local_splits(args.data_dir)
    else:
        splits, label_list = load_online_splits(args.task_name)
    unseen = unseen_rows(splits["dev"], splits["train"])
    if unseen:
        splits[DEV_UNSEEN] = MapDataset([splits["dev"][i] for i in unseen])
    else:
        logger.warning("every dev text is also in train: dev measures memory only, no dev_unseen accuracy")
    splits.update(load_eval_sets(getattr(args, "eval_sets", []), label_list, is_pair(splits["train"])))
    logger.info("data %s: %s; labels %s", args.data_dir or args.task_name,
                ", ".join(f"{s} {len(ds)}" for s, ds in splits.items()), label_list)
    return splits, label_list


def unseen_rows(dev, train):
    """Indices of dev's examples whose text train does not hold word for word (a pair in either order).
    Public splits repeat texts (338 of ChnSentiCorp's 1,200 dev texts are in train, 323 of LCQMC's 8,802 dev
    pairs), and a model can answer those from memory: these rows measure what it learnt beyond them. They
    never choose a checkpoint."""
    seen = {text_key(ex["text"]) for ex in train}
    return [i for i, ex in enumerate(dev) if text_key(ex["text"]) not in seen]


def text_key(text):
    """What makes two texts the same: a pair and its sides swapped are one pair."""
    return tuple(sorted(text)) if isinstance(text, tuple) else text


def segment(texts):
    """jieba words of each text, spaces dropped; a pair's words are the pair of its sides' words."""
    return [tuple(segment(t)) if isinstance(t, tuple) else [w for w in jieba.lcut(t) if w.strip()] for t in texts]


def text_line(text):
    """A text as one line: a pair's sides joined by a tab, as its file has them."""
    return "\t".join(text) if isinstance(text, tuple) else text


def per_side(fn, words):
    """fn of each side of a pair (the pair of results), or of the words themselves."""
    return tuple(fn(side) for side in words) if isinstance(words, tuple) else fn(words)


def sides(words):
    """The word lists of one text's words: a pair's two sides, or the words themselves."""
    return words if isinstance(words, tuple) else (words,)


def all_words(sentences):
    """Every word of the sentences, in order, both sides of a pair."""
    return (w for words in sentences for side in sides(words) for w in side)


def load_vocab(path):
    """A word dictionary: one word per line (Windows line ends and a BOM allowed), [PAD] on the
    first line, [UNK] on another, no word twice. Errors name the file and line."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such vocabulary file (build it with build_vocab.py)")
    lines = [line for _, line in utf8_lines(path)]
    while lines and not lines[-1].strip():
        lines.pop()  # blank lines at the end
    if not lines:
        raise InputError(f"{path}: empty vocabulary file")
    if lines[0] != PAD:
        raise InputError(f"{path}:1: the vocabulary must start with {PAD}, found {lines[0]!r}")
    first_seen = {}
    for lineno, word in enumerate(lines, start=1):
        if not word.strip():
            raise InputError(f"{path}:{lineno}: empty word")
        if word in first_seen:
            raise InputError(f"{path}:{lineno}: {word!r} again (first on line {first_seen[word]})")
        first_seen[word] = lineno
    if UNK not in first_seen:
        raise InputError(f"{path}: no {UNK} line")
    return vocab_from_words(lines)


def lean_vocab(vocab, sentences, min_freq=1):
    """[PAD], [UNK] and every word seen at least min_freq times in `sentences`: the dictionary's
    words in its order, then the others, most frequent first.

    The table shrinks from the dictionary's size to the corpus's, and no training word is lost
    to [UNK] for not being in the dictionary (years, brand names, punctuation of a new task)."""
    counts = collections.Counter(all_words(sentences))
    seen = {w for w, n in counts.items() if n >= min_freq} - {PAD, UNK}
    known = [w for w in vocab_words(vocab) if w in seen]
    new = sorted(seen - set(known), key=lambda w: (-counts[w], w))
    return vocab_from_words([PAD, UNK] + known + new)


def vocab_words(vocab):
    """The vocabulary's words in id order."""
    return vocab.to_tokens(list(range(len(vocab))))


def vocab_from_words(words):
    return Vocab.from_dict({w: i for i, w in enumerate(words)}, unk_token=UNK, pad_token=PAD)


def jieba_dictionary():
    """(word, frequency) pairs of jieba's bundled dictionary."""
    with jieba.get_dict_file() as f:
        for raw in f:
            word, freq = raw.decode("utf-8").split(" ")[:2]
            yield word, int(freq)


def build_word_dict(sentences):
    """[PAD], [UNK], the corpus's words by count, then jieba's other words by frequency."""
    counts = collections.Counter(all_words(sentences))
    words = sorted(counts, key=lambda w: (-counts[w], w))
    jieba_freq = {}
    for word, freq in jieba_dictionary():  # a few words stand twice in jieba's file
        jieba_freq[word] = max(freq, jieba_freq.get(word, 0))
    extra = sorted(set(jieba_freq) - set(words) - {PAD, UNK}, key=lambda w: (-jieba_freq[w], w))
    return [PAD, UNK] + words + extra


class LengthGroupedBatchSampler:
    """Batches of sentences of similar length, so little compute is spent on padding.

    Training: shuffle, sort pools of `pool_batches` batches by length, cut them into
    batches, shuffle the batches. The order is a function of (seed, epoch) only, so a
    resumed run replays its epoch and skips the batches it already trained on.
    Evaluation (shuffle=False): sorted by length.

    With ranks > 1 (training under paddle.distributed.launch) the batches are cut for all ranks
    at once, ranks x batch_size sentences each, and rank r takes every ranks-th sentence of each:
    every rank has the same number of steps, and together they train on the batches one process
    of that global batch size would (a last batch too small to share is dropped)."""

    def __init__(self, lengths, batch_size, shuffle=False, seed=0, pool_batches=100, rank=0, ranks=1):
        self.lengths = np.asarray(lengths)
        self.rank, self.ranks = rank, ranks
        self.batch_size, self.shuffle, self.seed = batch_size * ranks, shuffle, seed
        self.pool = batch_size * pool_batches
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch, skip_batches=0):
        self.epoch, self.skip = epoch, skip_batches

    def batches(self):
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool):
            pool = order[start:start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches)) if len(batches[i]) >= self.ranks]

    def __iter__(self):
        for batch in self.batches()[self.skip:]:
            yield batch[self.rank::self.ranks].tolist()

    def __len__(self):
        return len(self.batches()) - self.skip


def create_dataloader(records, batchify_fn, batch_size, shuffle=False, seed=0):
    """DataLoader over records whose first field is a token id list, grouped by its length.
    Training batches (shuffle) are shared by the ranks of a distributed run, batch_size each."""
    rank, ranks = world() if shuffle else (0, 1)
    sampler = LengthGroupedBatchSampler([len(r[0]) for r in records], batch_size, shuffle, seed, rank=rank, ranks=ranks)
    return paddle.io.DataLoader(MapDataset(records), batch_sampler=sampler, collate_fn=batchify_fn)


MASK = "[MASK]"  # a masked word: [UNK] for the student, the tokenizer's mask token for the teacher


def join_words(words, mask_token=MASK):
    """The text the teacher reads for a word list: words joined, with a space only between two
    Latin words or numbers (which jieba separated at a space), masks as mask_token."""
    text = ""
    for word in words:
        word = mask_token if word == MASK else word
        if text and text[-1].isascii() and text[-1].isalnum() and word[0].isascii() and word[0].isalnum():
            text += " "
        text += word
    return text


class Augmenter:
    """The paper's transfer-set rules on jieba words (Tang et al., 2019, section 3.3), and TinyBERT's
    for whole words (Jiao et al., 2020, section 3.2).

    Each word is masked with probability p_mask, else replaced with probability p_pos by a word
    of the same part of speech drawn from the corpus's unigram distribution of that tag (jieba's
    dictionary tags; words it does not tag stay), else with probability p_nn by one of its nn_k
    nearest neighbours in the word vectors nn_vectors, drawn uniformly (words without a vector
    stay). Then, with probability p_ng, the sentence is cut to a random n-gram of
    ngram_range[0]..ngram_range[1] words."""

    def __init__(self, sentences, p_mask=0.1, p_pos=0.1, p_ng=0.25, ngram_range=(2, 10), p_nn=0.0, nn_k=15,
                 nn_vectors=None):
        self.p_mask, self.p_pos, self.p_ng, self.p_nn = p_mask, p_pos, p_ng, p_nn
        self.ngram_range = ngram_range
        if p_nn > 0 and nn_vectors is None:
            raise ValueError("p_nn > 0 needs the word vectors its neighbours come from (nn_vectors)")
        self.neighbours = nearest_neighbours(nn_vectors, all_words(sentences), nn_k) if p_nn > 0 else {}
        tags = jieba.posseg.dt.word_tag_tab
        counts = collections.Counter(w for w in all_words(sentences) if w in tags)
        by_tag = collections.defaultdict(list)
        for word, n in counts.items():
            by_tag[tags[word]].append((word, n))
        self.tag_of = {w: tags[w] for w in counts}
        self.pool = {}  # tag -> (words, cumulative unigram probabilities)
        for tag, pairs in by_tag.items():
            words, freq = zip(*sorted(pairs))
            self.pool[tag] = (words, np.cumsum(freq) / sum(freq))

    @classmethod
    def settings(cls, args):
        """Every rule setting the augmenter takes (its parameters but the corpus), read from args:
        an option added to the rules is picked up wherever the settings are used (the logits cache key)."""
        return {name: getattr(args, name) for name in list(inspect.signature(cls).parameters)[1:]}

    def same_tag_word(self, word, rng):
        tag = self.tag_of.get(word)
        if tag is None:
            return word
        words, cumulative = self.pool[tag]
        return words[min(np.searchsorted(cumulative, rng.random(), side="right"), len(words) - 1)]

    def neighbour(self, word, rng):
        candidates = self.neighbours.get(word)
        return candidates[int(rng.integers(len(candidates)))] if candidates else word

    def __call__(self, words, rng):
        """An augmented copy of a sentence's words; of a pair, each side augmented on its own, as the original does."""
        return per_side(lambda side: self.augmented(side, rng), words)

    def augmented(self, words, rng):
        out = []
        for word in words:
            draw = rng.random()
            if draw < self.p_mask:
                out.append(MASK)
            elif draw < self.p_mask + self.p_pos:
                out.append(self.same_tag_word(word, rng))
            elif draw < self.p_mask + self.p_pos + self.p_nn:
                out.append(self.neighbour(word, rng))
            else:
                out.append(word)
        low, high = self.ngram_range
        if rng.random() < self.p_ng and len(out) > low:
            n = int(rng.integers(low, min(high, len(out)) + 1))
            start = int(rng.integers(0, len(out) - n + 1))
            out = out[start:start + n]
        return out


def augment_corpus(sentences, augmenter, n_iter, seed):
    """(source index, words) of the n_iter augmented copies of each sentence, duplicates (of
    each other or of any original sentence) dropped. Copy i of sentence j depends only on
    (seed, j, i), so the set does not change with how or in what order it is built."""
    seen = {tuple(map(tuple, sides(words))) for words in sentences}
    augmented = []
    for index, words in enumerate(tqdm(sentences, desc="augmenting", unit="sentence", dynamic_ncols=True)):
        rng = np.random.default_rng([seed, index])
        for _ in range(n_iter):
            new = augmenter(words, rng)
            key = tuple(map(tuple, sides(new)))
            if all(sides(new)) and key not in seen:
                seen.add(key)
                augmented.append((index, new))
    return augmented
