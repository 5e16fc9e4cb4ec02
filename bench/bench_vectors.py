"""Pretrained word vectors against ChnSentiCorp (issue 43): what they cover, and what the neighbour rule costs.

    python bench/bench_vectors.py coverage     # word types and tokens with a vector, per set
    python bench/bench_vectors.py neighbours   # the nearest-neighbour table of the transfer corpus: time, examples

The vectors are tools/get_word_vectors.sh's (fetched if missing); the words are jieba's, as the students read
them. `coverage` counts, for train, dev, dev's texts not in train ("dev, unseen"), the unlabelled reviews and
shopping5 (out of domain), the word types and tokens that have a vector, and for the held-out sets the tokens
of words no transfer sentence has (train and unlabelled reviews: the augmentation draws only their words) with
the share of those that have a vector: the words --add_vector_words gives rows. `neighbours` times
vectors.nearest_neighbours over the transfer corpus's words (k 15, as --nn_k) and keeps the neighbours of a
few review words. Both write bench/results/vectors/<what>.json.
"""
import argparse
import collections
import os
import time

# common first: it puts the project on sys.path
from common import ROOT, SHARED_DATA, cpu_model, fetch_word_vectors, write_results

RESULTS = os.path.join(ROOT, "bench", "results", "vectors")
UNLABELED = os.path.join(SHARED_DATA, "unlabeled", "reviews_unlabeled.txt")
EXAMPLES = ["干净", "失望", "推荐", "便宜", "差劲", "酒店", "屏幕", "服务员"]


def corpus_words():
    """{set name: its texts' jieba words, a list per text}."""
    from data import load_local_splits, read_lines, read_tsv, segment, unseen_rows

    splits, _ = load_local_splits(os.path.join(SHARED_DATA, "chnsenticorp"))
    texts = {"train": [ex["text"] for ex in splits["train"]], "dev": [ex["text"] for ex in splits["dev"]],
             "unlabeled": read_lines(UNLABELED, pairs=False),
             "shopping5": [ex["text"] for ex in read_tsv(os.path.join(SHARED_DATA, "ood", "shopping5.tsv"))]}
    texts["dev_unseen"] = [texts["dev"][i] for i in unseen_rows(splits["dev"], splits["train"])]
    return {name: segment(t) for name, t in texts.items()}


def coverage(args):
    from vectors import vector_words

    path = fetch_word_vectors()
    known = set(vector_words(path))
    words = corpus_words()
    transfer = {w for name in ("train", "unlabeled") for sentence in words[name] for w in sentence}
    result = {"vectors": path, "vector_words": len(known), "sets": {}}
    for name, sentences in words.items():
        tokens = collections.Counter(w for sentence in sentences for w in sentence)
        total = sum(tokens.values())
        row = {"texts": len(sentences), "word_types": len(tokens), "tokens": total,
               "types_with_vector": sum(w in known for w in tokens) / len(tokens),
               "tokens_with_vector": sum(n for w, n in tokens.items() if w in known) / total}
        if name not in ("train", "unlabeled"):
            unseen = {w: n for w, n in tokens.items() if w not in transfer}
            row["tokens_in_no_transfer_sentence"] = sum(unseen.values()) / total
            row["of_those_with_vector"] = sum(n for w, n in unseen.items() if w in known) / max(sum(unseen.values()), 1)
        result["sets"][name] = row
    print("| set | texts | word types with a vector | tokens with a vector | tokens of words no transfer sentence has "
          "| of those, with a vector |\n|---|---|---|---|---|---|")
    for name, row in result["sets"].items():
        unseen = (f"{row['tokens_in_no_transfer_sentence']:.1%} | {row['of_those_with_vector']:.1%}"
                  if "of_those_with_vector" in row else "- | -")
        print(f"| {name} | {row['texts']} | {row['types_with_vector']:.1%} of {row['word_types']} "
              f"| {row['tokens_with_vector']:.1%} of {row['tokens']} | {unseen} |")
    write_results(os.path.join(RESULTS, "coverage.json"), result)


def neighbours(args):
    import paddle

    from vectors import nearest_neighbours

    path = fetch_word_vectors()
    paddle.base.core.set_num_threads(args.num_threads)
    words = corpus_words()
    corpus = [w for name in ("train", "unlabeled") for sentence in words[name] for w in sentence]
    start = time.time()
    table = nearest_neighbours(path, corpus, 15)
    seconds = time.time() - start
    print(f"{len(table)} of the transfer corpus's {len(set(corpus))} word types have neighbours: {seconds:.0f} s")
    for word in EXAMPLES:
        print(word, " ".join(table.get(word, ())))
    write_results(os.path.join(RESULTS, "neighbours.json"), {
        "vectors": path, "k": 15, "corpus": "ChnSentiCorp train + unlabelled reviews", "seconds": seconds,
        "corpus_word_types": len(set(corpus)), "with_neighbours": len(table), "threads": args.num_threads,
        "cpu": cpu_model(), "examples": {w: table.get(w) for w in EXAMPLES}})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["coverage", "neighbours"])
    parser.add_argument("--num_threads", type=int, default=2, help="neighbours: CPU threads")
    args = parser.parse_args()
    {"coverage": coverage, "neighbours": neighbours}[args.what](args)


if __name__ == "__main__":
    main()
