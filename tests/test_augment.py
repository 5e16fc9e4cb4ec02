import collections

import jieba.posseg
import numpy as np
import pytest

from data import MASK, Augmenter, augment_corpus, join_words, segment

# Words jieba's dictionary tags: nouns (n), adjectives (a) and adverbs (d).
NOUNS = ["酒店", "房间", "早餐", "价格", "服务员"]
ADJECTIVES = ["干净", "漂亮", "便宜", "舒适"]
ADVERBS = ["非常", "特别"]


def corpus(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.choice(NOUNS), rng.choice(ADVERBS), rng.choice(ADJECTIVES), "，", rng.choice(NOUNS),
             rng.choice(ADVERBS), rng.choice(ADJECTIVES)] for _ in range(n)]


def test_the_test_words_carry_the_expected_tags():
    tags = jieba.posseg.dt.word_tag_tab
    assert {tags[w] for w in NOUNS} == {"n"} and {tags[w] for w in ADJECTIVES} == {"a"}
    assert {tags[w] for w in ADVERBS} == {"d"} and "，" not in tags


def test_masking_rate_matches_p_mask():
    sentences = corpus()
    augment = Augmenter(sentences, p_mask=0.3, p_pos=0.0, p_ng=0.0)
    rng = np.random.default_rng(1)
    draws = [augment(s, rng) for s in sentences * 20]
    masked = sum(w == MASK for d in draws for w in d) / sum(len(d) for d in draws)
    assert masked == pytest.approx(0.3, abs=0.01)
    assert all(len(d) == 7 for d in draws)


def test_pos_replacement_keeps_the_tag_and_follows_the_unigram_distribution():
    sentences = corpus()
    augment = Augmenter(sentences, p_mask=0.0, p_pos=1.0, p_ng=0.0)
    tags = jieba.posseg.dt.word_tag_tab
    rng = np.random.default_rng(2)
    nouns = collections.Counter()
    for s in sentences * 10:
        new = augment(s, rng)
        assert [tags.get(w) for w in new] == [tags.get(w) for w in s]  # untagged "，" stays
        nouns.update(new[0:1] + new[4:5])
    expected = collections.Counter(w for s in sentences for w in (s[0], s[4]))
    total, expected_total = sum(nouns.values()), sum(expected.values())
    for word in NOUNS:
        assert nouns[word] / total == pytest.approx(expected[word] / expected_total, abs=0.02)


def test_ngram_sampling_rate_and_lengths():
    sentences = [[f"w{i}" for i in range(30)]] * 4000
    augment = Augmenter(sentences, p_mask=0.0, p_pos=0.0, p_ng=0.25, ngram_range=(2, 10))
    rng = np.random.default_rng(3)
    lengths = [len(augment(s, rng)) for s in sentences]
    cut = [n for n in lengths if n < 30]
    assert len(cut) / len(lengths) == pytest.approx(0.25, abs=0.02)
    assert set(cut) == set(range(2, 11))  # every n in the range, nothing outside it
    assert abs(np.mean(cut) - 6) < 0.3  # n is uniform over 2..10
    short = Augmenter([["a", "b"]], p_mask=0.0, p_pos=0.0, p_ng=1.0)
    assert short(["a", "b"], rng) == ["a", "b"]  # nothing to cut from a 2-word sentence


def test_augmented_corpus_is_reproducible_and_free_of_duplicates():
    sentences = corpus(50)
    augment = Augmenter(sentences)
    first = augment_corpus(sentences, augment, n_iter=5, seed=7)
    assert first == augment_corpus(sentences, augment, n_iter=5, seed=7)
    assert first != augment_corpus(sentences, augment, n_iter=5, seed=8)
    keys = [tuple(words) for _, words in first]
    assert len(keys) == len(set(keys)) and not set(keys) & {tuple(s) for s in sentences}
    # copies of a sentence do not depend on the sentences before it
    tail = augment_corpus(sentences, augment, n_iter=5, seed=7)
    assert [w for i, w in tail if i == 49] == [w for i, w in first if i == 49]


def test_teacher_text_describes_the_student_words():
    assert join_words(["这个", MASK, "很", "好"], "[MASK]") == "这个[MASK]很好"
    assert join_words(["iPhone", "12", "pro", "很", "好用"], "[MASK]") == "iPhone 12 pro很好用"
    text = "iPhone 12 pro 很好用，推荐！"
    assert join_words(segment([text])[0]) == "iPhone 12 pro很好用，推荐！"


def test_the_rules_draw_the_copies_the_published_transfer_sets_were_drawn_with():
    """The copies the three rules drew before the neighbour rule joined them (cdf7472): at p_nn 0 it takes no
    draw, so the recipe's transfer sets, and what its published runs trained on, stay the same."""
    import hashlib
    import json

    sentences = corpus(50)
    copies = augment_corpus(sentences, Augmenter(sentences), n_iter=5, seed=7)
    assert hashlib.sha256(json.dumps(copies, ensure_ascii=False).encode()).hexdigest()[:20] == "989ca3a4df5efa8664f7"
