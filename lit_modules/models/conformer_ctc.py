"""Conformer-CTC (torchaudio ``models.Conformer``) with a convolutional subsampling front-end and characters."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from lit_modules.features import LogMelFrontend, SpecAugment
from lit_modules.models.ctc import CTCModel
from lit_modules.models.subsampling import ConvSubsampling


class PaddingMaskedConv1d(nn.Module):
    """Zeroes padded frames before a Conformer block's depthwise convolution, so that padding added by batching
    cannot leak into an utterance's last frames (torchaudio's block does not mask there).

    ``keep`` ([B, 1, T], 1 = valid frame) is set by the owner before each forward pass.
    """

    def __init__(self, inner: nn.Conv1d) -> None:
        super().__init__()
        self.inner = inner
        self.keep: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, C, T]
        return self.inner(x if self.keep is None else x * self.keep.to(x.dtype))


def _mask_depthwise_convolutions(conformer: nn.Module) -> list[PaddingMaskedConv1d]:
    """Wrap the depthwise Conv1d of every block's convolution module; returns the wrappers in block order."""
    wrappers = []
    for layer in conformer.conformer_layers:
        sequential = layer.conv_module.sequential
        index = next(i for i, m in enumerate(sequential) if isinstance(m, nn.Conv1d) and m.groups > 1)
        sequential[index] = PaddingMaskedConv1d(sequential[index])
        wrappers.append(sequential[index])
    return wrappers


class ConformerCTC(CTCModel):
    """Log-mel -> SpecAugment (training) -> conv subsampling -> Conformer blocks -> linear -> CTC over characters.

    Args:
        d_model: model width. num_layers: Conformer blocks. num_heads: attention heads.
        ffn_multiplier: feed-forward width / d_model. kernel_size: depthwise convolution kernel. dropout: rate.
        n_mels: log-mel bins.
    """

    def __init__(self, d_model: int = 144, num_layers: int = 6, num_heads: int = 4, ffn_multiplier: int = 4,
                 kernel_size: int = 15, dropout: float = 0.1, n_mels: int = 80) -> None:
        super().__init__()
        self.frontend = LogMelFrontend(n_mels)
        self.augment = SpecAugment()
        self.subsampling = ConvSubsampling(n_mels, d_model)
        self.conformer = torchaudio.models.Conformer(
            input_dim=d_model, num_heads=num_heads, ffn_dim=ffn_multiplier * d_model, num_layers=num_layers,
            depthwise_conv_kernel_size=kernel_size, dropout=dropout,
        )
        self._masked_convolutions = _mask_depthwise_convolutions(self.conformer)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(d_model, len(self.vocabulary))

    @property
    def layer_names(self) -> list[str]:
        return ["subsampling"] + [f"conformer.layer_{i}" for i in range(len(self.conformer.conformer_layers))]

    def _layer_outputs(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        """Yields (layer name, states [B, T', d_model], lengths [B]) after each layer in ``layer_names`` order."""
        features, frames = self.frontend(waveforms, lengths)
        x, out_lengths = self.subsampling(self.augment(features), frames)
        yield "subsampling", x, out_lengths
        padding_mask = torch.arange(x.shape[1], device=x.device)[None, :] >= out_lengths[:, None]
        for wrapper in self._masked_convolutions:
            wrapper.keep = (~padding_mask).unsqueeze(1)
        x = x.transpose(0, 1)
        for index, layer in enumerate(self.conformer.conformer_layers):
            x = layer(x, padding_mask)
            yield f"conformer.layer_{index}", x.transpose(0, 1), out_lengths

    def encode(self, waveforms: torch.Tensor, lengths: torch.Tensor, upto: str | None = None):
        """Encoder states [B, T', d_model] and lengths [B]; ``upto`` stops at that layer name."""
        for name, states, out_lengths in self._layer_outputs(waveforms, lengths):
            if name == upto:
                break
        return states, out_lengths

    def encode_and_tap(self, waveforms: torch.Tensor, lengths: torch.Tensor, layer: str):
        """Final encoder states [B, T', d_model], lengths [B] and ``layer``'s states [B, T', d_model], one pass."""
        tapped = None
        for name, states, out_lengths in self._layer_outputs(waveforms, lengths):
            if name == layer:
                tapped = states
        return states, out_lengths, tapped

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, out_lengths = self.encode(waveforms, lengths)
        return self.classifier(self.dropout(states)).log_softmax(dim=-1), out_lengths
