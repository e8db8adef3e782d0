"""Caption and VQA metrics (`evaluation/text.py`) against values computed by hand, and against pycocoevalcap's."""

from __future__ import annotations

import math

import pytest

from spatialvlm_cli.evaluation.text import (
    bleu,
    caption_scores,
    cider_d,
    lcs_length,
    meteor,
    meteor_single,
    normalise_answer,
    rouge_l,
    tokenize,
    vqa_scores,
)


def test_tokens():
    assert tokenize("Two doors, one window.") == ["two", "doors", "one", "window"]
    assert tokenize("It's 3.5 m left-of the door!") == ["it's", "3.5", "m", "left", "of", "the", "door"]
    assert normalise_answer("Two doors.") == "2 doors"
    assert normalise_answer("  the LEFT ") == "left"


def test_bleu4_by_hand():
    """Item A: 'a man is riding a horse' against 'a man rides a horse' (5 tokens) and 'a man is riding a brown
    horse' (7). Closest reference length to 6: 5 and 7 tie, the shorter (5) counts, c = 6 >= 5, no brevity penalty.
    Clipped matches: 1-grams 6/6 (a ×2 occurs twice in a reference), 2-grams 5/5 (a horse from the first), 3-grams
    3/4 (riding a horse in neither), 4-grams 2/3 (a man is riding, man is riding a). BLEU-4 = (1·1·3/4·2/3)^(1/4) =
    0.5^(1/4) = 0.840896.
    Item B: 'a dog runs fast' against 'a dog runs': 3/4, 2/3, 1/2, 0/1; alone its 4-gram precision is 1e-15/1
    (pycocoevalcap's smoothing), c = 4 >= r = 3: BLEU ≈ (3/4·2/3·1/2·1e-15)^(1/4) = (2.5e-16)^(1/4) = 1.2574e-4.
    Corpus: 1-grams 9/10, 2-grams 7/8, 3-grams 4/6, 4-grams 2/4; c = 10 >= r = 5 + 3 = 8:
    (0.9·0.875·(2/3)·0.5)^(1/4) = 0.2625^(1/4) = 0.715785."""
    scores = bleu(["a man is riding a horse", "a dog runs fast"],
                  [["a man rides a horse", "a man is riding a brown horse"], ["a dog runs"]])
    assert scores.items[0] == pytest.approx(0.840896, abs=1e-6)
    assert scores.items[1] == pytest.approx(1.2574e-4, rel=1e-3)
    assert scores.corpus == pytest.approx(0.715785, abs=1e-6)


def test_bleu_brevity_penalty_by_hand():
    """'a dog' against 'a dog runs': precisions 2/2 and 1/1, 3- and 4-grams 0/0 -> (1e-15/1e-9)² under the root:
    (1e-12)^(1/4) = 1e-3; c = 2 < r = 3: × exp(1 - 3/2) = 0.606531 -> 6.06531e-4."""
    assert bleu(["a dog"], [["a dog runs"]]).corpus == pytest.approx(6.06531e-4, rel=1e-4)


def test_meteor_by_hand():
    """'the cat sat on the mat' against 'the cat is on the mat': 5 words align (the, cat, on, the, mat; 'the'
    twice, each to its own), in 2 chunks ('the cat' | 'on the mat'). P = R = 5/6, F = 10PR/(R + 9P) = 5/6,
    penalty = 0.5·(2/5)³ = 0.032, METEOR = 5/6 · 0.968 = 0.806667. Against the reversed 'mat the on sat cat the'
    every word aligns (m = 6) but in 6 chunks: F = 1, penalty 0.5·1³, METEOR = 0.5. The best reference counts."""
    prediction = tokenize("the cat sat on the mat")
    assert meteor_single(prediction, tokenize("the cat is on the mat")) == pytest.approx(0.806667, abs=1e-6)
    assert meteor_single(prediction, tokenize("mat the on sat cat the")) == pytest.approx(0.5)
    both = meteor(["the cat sat on the mat"], [["mat the on sat cat the", "the cat is on the mat"]])
    assert both.items[0] == both.corpus == pytest.approx(0.806667, abs=1e-6)
    assert meteor_single(prediction, tokenize("dogs bark")) == 0.0


def test_rouge_l_by_hand():
    """'the cat sat on the mat' (6) against 'the cat is on the red mat' (7): LCS 'the cat on the mat' = 5;
    P = 5/6, R = 5/7, F = (1 + 1.2²)PR / (R + 1.2²P) = 2.44·0.595238 / (0.714286 + 1.2) = 0.758706."""
    assert lcs_length(tokenize("the cat is on the red mat"), tokenize("the cat sat on the mat")) == 5
    assert rouge_l(["the cat sat on the mat"], [["the cat is on the red mat"]]).corpus == pytest.approx(
        0.758706, abs=1e-6)
    assert rouge_l([""], [["a door"]]).corpus == 0.0


def test_cider_d_by_hand():
    """Two items, so IDF = log 2 - log df, every n-gram here in at most one item's references: log 2.
    Item 1, 'red door' against 'red door': unigram and bigram vectors identical (cosine 1 each), no 3-, 4-grams
    (0), equal bigram counts (no penalty): 10 · (1 + 1 + 0 + 0)/4 = 5.
    Item 2, 'blue window' against 'blue wall': unigrams share 'blue': (log 2)² / (√2·log 2)² = 0.5; bigrams
    differ: 10 · 0.5/4 = 1.25. Corpus: (5 + 1.25)/2 = 3.125. A lone item has IDF log 1 - log 1 = 0: CIDEr 0."""
    scores = cider_d(["red door", "blue window"], [["red door"], ["blue wall"]])
    assert scores.items == pytest.approx((5.0, 1.25))
    assert scores.corpus == pytest.approx(3.125)
    assert cider_d(["red door"], [["red door"]]).corpus == 0.0


def test_cider_d_length_penalty_by_hand():
    """Item 1 'red door' against 'red door open now' (3 bigrams against 1: Δ = 2): unigram cosine
    2(log 2)² / (√2·log 2 · √4·log 2) = 1/√2, bigram cosine (log 2)²/(log 2 · √3·log 2) = 1/√3, both × exp(-4/72);
    item 2 shares nothing. Item 1 = 10·(1/√2 + 1/√3)·exp(-1/18)/4."""
    scores = cider_d(["red door", "blue window"], [["red door open now"], ["green wall"]])
    expected = 10 * (1 / math.sqrt(2) + 1 / math.sqrt(3)) * math.exp(-1 / 18) / 4
    assert scores.items[0] == pytest.approx(expected)
    assert scores.items[1] == 0.0


# pycocoevalcap 1.2 (`Bleu(4)`, `Rouge()`, `Cider()`, the Python scorers, no Java) run on these texts after
# `tokenize` (joined by spaces, in place of its PTB tokenizer): its corpus and per-item numbers.
FIXTURE_PREDICTIONS = ["a person riding a horse on a beach", "there are two doors and a window",
                       "a kitchen with a white table", "the room is empty", "a red picture hangs on the wall"]
FIXTURE_REFERENCES = [["a man rides a horse along the beach", "a person riding a brown horse on a beach"],
                      ["there are two doors and one window", "two doors, one window"],
                      ["a white kitchen table", "a kitchen with white cabinets and a table"],
                      ["an empty room with grey walls"],
                      ["a red painting on the back wall", "a picture on the wall"]]
PYCOCOEVALCAP = {
    "BLEU-4": (0.4798782066333677, [0.7186082237223492, 0.6434588839466586, 8.408964150540019e-05,
                                    1.8325568115857257e-12, 6.803749330907337e-05]),
    "ROUGE-L": (0.7245369506757625, [0.931297709923664, 0.8571428571428571, 0.782051282051282, 0.1930379746835443,
                                     0.8591549295774649]),
    "CIDEr-D": (3.0728291821821037, [4.056292290049331, 4.314992331028406, 3.040649122795214, 1.1242924506092864,
                                     2.8279197164282808]),
}


@pytest.mark.parametrize("metric", sorted(PYCOCOEVALCAP))
def test_matches_pycocoevalcap_on_a_fixture(metric: str):
    scores = caption_scores(FIXTURE_PREDICTIONS, FIXTURE_REFERENCES)[metric]
    corpus, items = PYCOCOEVALCAP[metric]
    assert scores.corpus == pytest.approx(corpus, rel=1e-12)
    assert scores.items == pytest.approx(items, rel=1e-12)


def test_vqa_by_hand():
    """'Two.' against ['2']: not exact, normalised '2' == '2'. 'yes' against 'Yes': normalised only. 'left'
    against 'left': both. 'a door' against 'two': neither. Exact 1/4, normalised 3/4."""
    scores = vqa_scores(["Two.", "yes", "left", "a door"], [["2"], ["Yes"], ["left"], ["two", "2"]])
    assert scores["exact"].items == (0.0, 0.0, 1.0, 0.0)
    assert scores["normalised"].items == (1.0, 1.0, 1.0, 0.0)
    assert (scores["exact"].corpus, scores["normalised"].corpus) == (0.25, 0.75)
