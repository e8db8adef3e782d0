"""Caption and VQA metrics, offline and dependency-free: BLEU-4, METEOR, ROUGE-L and CIDEr-D as reported on
captioning benchmarks (panollava reports them on QuIC-360), exact-match and normalised VQA accuracy.

Each caption metric takes a list of predictions and, per prediction, one or more references, and returns the corpus
score and one score per item (all in [0, 1] except CIDEr-D, in [0, 10]). Texts go through `tokenize` first.

- **Tokens** (`tokenize`): lower-cased; runs of letters/digits, with inner apostrophes (don't) and decimal
  points/commas (3.5, 1,000) kept; every other character (punctuation, hyphens, quotes) separates and is dropped.
  pycocoevalcap runs the Stanford PTB tokenizer (Java) and drops punctuation tokens; the two agree on plain
  sentences and differ on contractions (PTB: do n't) and hyphenated words (PTB keeps left-hand as one token).
- **BLEU-4** as pycocoevalcap's `Bleu(4)` with option 'closest': per item, n-gram counts clipped by each n-gram's
  largest count in any one reference; reference length = the reference length closest to the prediction's (the
  shorter on a tie). Corpus: clipped matches and n-gram totals summed over items, BLEU = BP · Π_{n=1..4}
  ((matches_n + 1e-15) / (total_n + 1e-9))^(1/4), BP = exp(1 - r/c) when c < r (c, r: summed lengths, each
  plus 1e-15 / 1e-9). Per item: the same formula on that item alone.
- **METEOR**: the original definition (Banerjee & Lavie 2005) with the *exact-match module only*: no stemming,
  no WordNet synonyms, no paraphrase table (what METEOR 1.5 in pycocoevalcap adds), so scores are at most, and
  usually below, pycocoevalcap's. Unigrams aligned one-to-one by exact match (greedy, left to right, preferring
  the reference word right after the previous alignment, else the first free one); P = m/|pred|, R = m/|ref|,
  F = 10PR / (R + 9P), penalty = 0.5 · (chunks/m)³, score = F · (1 - penalty), best reference per item; corpus:
  mean over items.
- **ROUGE-L** as pycocoevalcap's `Rouge`: LCS with each reference, P_max and R_max the largest LCS/|pred| and
  LCS/|ref| over references, score = (1 + β²)·P·R / (R + β²·P) with β = 1.2; corpus: mean over items.
- **CIDEr-D** as pycocoevalcap's `Cider` (which is CIDEr-D): 1- to 4-gram TF-IDF vectors, document frequency =
  number of items whose references hold the n-gram, IDF = log(items) - log(max(1, df)); per n the clipped cosine
  Σ min(p, r)·r / (|p|·|r|) (0 when a norm is 0) times exp(-(Δ²)/(2·6²)), with Δ the difference in *bigram*
  counts (pycocoevalcap's `length`); mean over n, mean over references, × 10; corpus: mean over items. The IDF
  comes from the evaluated references, so a lone item scores 0 and scores depend on the whole set.
- **VQA**: exact match (strings equal after stripping surrounding white space) and normalised accuracy (equal
  after `normalise_answer`), against any reference; corpus: mean.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

_TOKEN = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:'[^\W_]+)*")
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"))}
_ARTICLES = {"a", "an", "the"}
BLEU_TINY = 1e-15
BLEU_SMALL = 1e-9
ROUGE_BETA = 1.2
CIDER_SIGMA = 6.0
CIDER_MAX_N = 4

CAPTION_METRICS = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
VQA_METRICS = ("exact", "normalised")


@dataclass(frozen=True)
class MetricScores:
    """corpus: the corpus-level score. items: one score per prediction, in input order."""

    corpus: float
    items: tuple[float, ...]


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of `text`, punctuation dropped (module docstring)."""
    return _TOKEN.findall(text.lower())


def normalise_answer(text: str) -> str:
    """A short answer in comparable form: tokens (punctuation dropped), articles a/an/the removed, number words
    zero … twelve as digits, joined by single spaces. 'Two doors.' -> '2 doors'."""
    return " ".join(_NUMBER_WORDS.get(token, token) for token in tokenize(text) if token not in _ARTICLES)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _all_ngrams(tokens: Sequence[str], max_n: int) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for n in range(1, max_n + 1):
        counts.update(_ngrams(tokens, n))
    return counts


def _bleu_from_counts(matches: Sequence[float], totals: Sequence[float], length: float, ref_length: float) -> float:
    score = 1.0
    for match, total in zip(matches, totals, strict=True):
        score *= (match + BLEU_TINY) / (total + BLEU_SMALL)
    score **= 1.0 / len(matches)
    ratio = (length + BLEU_TINY) / (ref_length + BLEU_SMALL)
    return score * math.exp(1 - 1 / ratio) if ratio < 1 else score


def bleu(predictions: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4) -> MetricScores:
    """BLEU-`max_n` of tokenized texts (module docstring). references[i]: the references of predictions[i]."""
    sums = [0.0] * max_n, [0.0] * max_n
    total_length = total_ref_length = 0.0
    items = []
    for prediction, refs in zip(predictions, references, strict=True):
        tokens = tokenize(prediction)
        ref_tokens = [tokenize(ref) for ref in refs]
        ref_length = min((abs(len(ref) - len(tokens)), len(ref)) for ref in ref_tokens)[1]
        matches, totals = [], []
        for n in range(1, max_n + 1):
            counts = _ngrams(tokens, n)
            best = Counter()
            for ref in ref_tokens:
                best |= _ngrams(ref, n)  # the largest count of each n-gram in any one reference
            matches.append(sum(min(count, best[gram]) for gram, count in counts.items()))
            totals.append(max(len(tokens) - n + 1, 0))
        for n in range(max_n):
            sums[0][n] += matches[n]
            sums[1][n] += totals[n]
        total_length += len(tokens)
        total_ref_length += ref_length
        items.append(_bleu_from_counts(matches, totals, len(tokens), ref_length))
    corpus = _bleu_from_counts(sums[0], sums[1], total_length, total_ref_length) if items else 0.0
    return MetricScores(corpus=corpus, items=tuple(items))


def _align(prediction: Sequence[str], reference: Sequence[str]) -> list[tuple[int, int]]:
    """Exact-match unigram alignment (prediction index, reference index), one-to-one, in prediction order; the
    reference word right after the previous alignment is preferred (longer chunks), else the first free one."""
    free: dict[str, list[int]] = {}
    for index, word in enumerate(reference):
        free.setdefault(word, []).append(index)
    pairs: list[tuple[int, int]] = []
    for index, word in enumerate(prediction):
        options = free.get(word)
        if not options:
            continue
        follow = pairs[-1][1] + 1 if pairs and pairs[-1][0] == index - 1 else None
        chosen = follow if follow in options else options[0]
        options.remove(chosen)
        pairs.append((index, chosen))
    return pairs


def meteor_single(prediction: Sequence[str], reference: Sequence[str]) -> float:
    """Exact-match METEOR of one tokenized prediction against one tokenized reference (module docstring)."""
    pairs = _align(prediction, reference)
    matched = len(pairs)
    if matched == 0:
        return 0.0
    precision, recall = matched / len(prediction), matched / len(reference)
    fmean = 10 * precision * recall / (recall + 9 * precision)
    chunks = 1 + sum(1 for (p0, r0), (p1, r1) in pairwise(pairs) if not (p1 == p0 + 1 and r1 == r0 + 1))
    return fmean * (1 - 0.5 * (chunks / matched) ** 3)


def meteor(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> MetricScores:
    """Exact-match METEOR: best reference per item, corpus = mean over items."""
    items = tuple(max(meteor_single(tokenize(prediction), tokenize(ref)) for ref in refs)
                  for prediction, refs in zip(predictions, references, strict=True))
    return MetricScores(corpus=_mean(items), items=items)


def lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    previous = [0] * (len(second) + 1)
    for word in first:
        current = [0]
        for j, other in enumerate(second):
            current.append(previous[j] + 1 if word == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> MetricScores:
    """ROUGE-L F (β = 1.2) with the best precision and best recall over references; corpus = mean over items."""
    items = []
    for prediction, refs in zip(predictions, references, strict=True):
        tokens = tokenize(prediction)
        ref_tokens = [tokenize(ref) for ref in refs]
        lcs = [lcs_length(ref, tokens) for ref in ref_tokens]
        precision = max((length / len(tokens) if tokens else 0.0) for length in lcs)
        recall = max((length / len(ref) if ref else 0.0) for length, ref in zip(lcs, ref_tokens, strict=True))
        if precision and recall:
            items.append((1 + ROUGE_BETA**2) * precision * recall / (recall + ROUGE_BETA**2 * precision))
        else:
            items.append(0.0)
    return MetricScores(corpus=_mean(items), items=tuple(items))


def cider_d(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> MetricScores:
    """CIDEr-D as pycocoevalcap computes it (module docstring); item and corpus scores in [0, 10]."""
    cooked_refs = [[_all_ngrams(tokenize(ref), CIDER_MAX_N) for ref in refs] for refs in references]
    frequency: Counter[tuple[str, ...]] = Counter()
    for refs in cooked_refs:
        frequency.update({gram for ref in refs for gram in ref})
    log_items = math.log(len(cooked_refs)) if cooked_refs else 0.0

    def vectors(counts: Counter[tuple[str, ...]]) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        """Per n: n-gram -> tf·idf, the vector's norm; and the bigram count (pycocoevalcap's `length`)."""
        vec: list[dict[tuple[str, ...], float]] = [{} for _ in range(CIDER_MAX_N)]
        for gram, count in counts.items():
            vec[len(gram) - 1][gram] = count * (log_items - math.log(max(1.0, frequency[gram])))
        norms = [math.sqrt(sum(value * value for value in part.values())) for part in vec]
        return vec, norms, sum(count for gram, count in counts.items() if len(gram) == 2)

    items = []
    for prediction, refs in zip(predictions, cooked_refs, strict=True):
        vec, norms, length = vectors(_all_ngrams(tokenize(prediction), CIDER_MAX_N))
        total = 0.0
        for ref in refs:
            ref_vec, ref_norms, ref_length = vectors(ref)
            penalty = math.exp(-((length - ref_length) ** 2) / (2 * CIDER_SIGMA**2))
            for n in range(CIDER_MAX_N):
                if norms[n] == 0 or ref_norms[n] == 0:
                    continue
                dot = sum(min(value, ref_vec[n].get(gram, 0.0)) * ref_vec[n].get(gram, 0.0)
                          for gram, value in vec[n].items())
                total += dot / (norms[n] * ref_norms[n]) * penalty
        items.append(10.0 * total / CIDER_MAX_N / len(refs))
    return MetricScores(corpus=_mean(items), items=tuple(items))


def caption_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, MetricScores]:
    """Every caption metric, keyed by CAPTION_METRICS names."""
    return {"BLEU-4": bleu(predictions, references), "METEOR": meteor(predictions, references),
            "ROUGE-L": rouge_l(predictions, references), "CIDEr-D": cider_d(predictions, references)}


def vqa_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, MetricScores]:
    """Exact-match and normalised accuracy (1.0 when the prediction equals any reference), keyed by VQA_METRICS."""
    exact = tuple(float(any(prediction.strip() == ref.strip() for ref in refs))
                  for prediction, refs in zip(predictions, references, strict=True))
    normalised = tuple(float(any(normalise_answer(prediction) == normalise_answer(ref) for ref in refs))
                       for prediction, refs in zip(predictions, references, strict=True))
    return {"exact": MetricScores(_mean(exact), exact), "normalised": MetricScores(_mean(normalised), normalised)}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
