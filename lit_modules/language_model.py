"""A character n-gram language model (interpolated absolute discounting) for shallow fusion in beam search."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

from core.text import normalize_transcript

BOS, EOS = "<", ">"


class CharacterNGramLM:
    """P(next character | previous ``order - 1`` characters), trained on transcripts.

    Args:
        order: n-gram order (context = order - 1 characters).
        discount: absolute discount in (0, 1).
    """

    def __init__(self, order: int = 5, discount: float = 0.7) -> None:
        if order < 1 or not 0 < discount < 1:
            raise ValueError(f"need order >= 1 and 0 < discount < 1, got {order}, {discount}")
        self.order = order
        self.discount = discount
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.alphabet: set[str] = {EOS}

    def fit(self, transcripts: list[str]) -> "CharacterNGramLM":
        for text in transcripts:
            chars = BOS * (self.order - 1) + normalize_transcript(text) + EOS
            self.alphabet.update(chars[self.order - 1 :])
            for i in range(self.order - 1, len(chars)):
                for n in range(self.order):
                    self.counts[chars[i - n : i]][chars[i]] += 1
        return self

    def probability(self, context: str, char: str) -> float:
        """Interpolated probability of ``char`` after ``context`` (only its last order-1 characters count)."""
        context = (BOS * (self.order - 1) + context)[-(self.order - 1) :] if self.order > 1 else ""
        probability = 1.0 / len(self.alphabet)
        for n in range(0, len(context) + 1):
            history = context[len(context) - n :] if n else ""
            counts = self.counts.get(history)
            if not counts:
                continue
            total = sum(counts.values())
            lower = probability
            probability = max(counts[char] - self.discount, 0) / total + self.discount * len(counts) / total * lower
        return probability

    def log_probability(self, context: str, char: str) -> float:
        return math.log(max(self.probability(context, char), 1e-12))

    def sentence_log_probability(self, text: str) -> float:
        text = normalize_transcript(text)
        return sum(self.log_probability(text[:i], ch) for i, ch in enumerate(text + EOS))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"order": self.order, "discount": self.discount,
                                          "counts": {k: dict(v) for k, v in self.counts.items()}}), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "CharacterNGramLM":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        lm = cls(data["order"], data["discount"])
        lm.counts = defaultdict(Counter, {k: Counter(v) for k, v in data["counts"].items()})
        lm.alphabet = {ch for counts in lm.counts.values() for ch in counts}
        return lm


def main(argv: list[str] | None = None) -> None:
    """``python -m lit_modules.language_model ROOT --splits train --out lm.json``: train on a corpus's transcripts."""
    import argparse

    from datamodules.librispeech_index import scan_split

    parser = argparse.ArgumentParser(description="Train a character n-gram LM on LibriSpeech-layout transcripts.")
    parser.add_argument("root")
    parser.add_argument("--splits", nargs="+", default=["train"])
    parser.add_argument("--order", type=int, default=6)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    texts = [u.transcript for split in args.splits for u in scan_split(args.root, split)[0]]
    CharacterNGramLM(args.order).fit(texts).save(args.out)
    print(f"trained a {args.order}-gram character LM on {len(texts)} transcripts -> {args.out}")


if __name__ == "__main__":
    main()
