"""Character vocabulary for the small CTC / transducer models trained here."""

from __future__ import annotations

import torch

from core.text import normalize_transcript


def pad_token_ids(encoded: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets [B, U] zero-padded, target lengths [B]) of token id lists."""
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
    targets = torch.zeros(len(encoded), max(1, int(lengths.max())), dtype=torch.long)
    for row, ids in enumerate(encoded):
        targets[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return targets, lengths


class CharacterVocabulary:
    """Index 0 is the blank; then space, apostrophe and A-Z (the transcript convention's alphabet)."""

    blank = 0

    def __init__(self) -> None:
        self.symbols = ["<blank>", " ", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
        self.index = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        """Token ids of a transcript (normalized first; digits are spelled out)."""
        return [self.index[ch] for ch in normalize_transcript(text)]

    def encode_batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets [B, U] zero-padded, target lengths [B])."""
        return pad_token_ids([self.encode(t) for t in texts])

    def decode(self, ids: list[int]) -> str:
        """Text of token ids (blanks dropped), normalized."""
        return normalize_transcript("".join(self.symbols[i] for i in ids if i != self.blank))
