"""PocketSphinx (CMU Sphinx, real en-us acoustic model + trigram LM from the PyPI package): a genuine black box.

It offers transcripts only: no hidden activations, no scores. Decoding is sequential on the CPU (~0.25 x real time).
"""

from __future__ import annotations

import numpy as np
import torch

from core.text import normalize_transcript
from lit_modules.backends.base import ASRBackend, Capability

_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]"}


class PocketSphinxBackend(ASRBackend):
    """PocketSphinx with its bundled US-English model.

    Args:
        language_model: path of an n-gram LM (default: the package's en-us LM).
        dictionary: pronunciation dictionary (default: the package's CMUdict).
    """

    capabilities = frozenset({Capability.TRANSCRIBE})

    def __init__(self, language_model: str | None = None, dictionary: str | None = None) -> None:
        super().__init__()
        try:
            from pocketsphinx import Config, Decoder, get_model_path
        except ImportError as error:
            raise RuntimeError("PocketSphinx needs the PyPI package 'pocketsphinx==5.1.1'") from error
        config = Config()
        config["hmm"] = get_model_path("en-us/en-us")
        config["lm"] = language_model or get_model_path("en-us/en-us.lm.bin")
        config["dict"] = dictionary or get_model_path("en-us/cmudict-en-us.dict")
        config["samprate"] = self.sample_rate
        config["loglevel"] = "FATAL"
        self.decoder = Decoder(config)
        # PocketSphinx carries feature state (its live cepstral-mean estimate) from one utterance to the next, so the
        # same audio got a different transcript depending on what was decoded before it (measured): every utterance
        # starts from freshly initialized features and the initial CMN
        self._initial_cmn = self.decoder.get_cmn()

    def _transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        texts = []
        for waveform, length in zip(waveforms.cpu(), lengths.cpu().tolist()):
            pcm = (waveform[:length].clamp(-1, 1).numpy() * 32767).astype(np.int16).tobytes()
            self.decoder.reinit_feat()
            self.decoder.set_cmn(self._initial_cmn)
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            hypothesis = self.decoder.hyp()
            words = [] if hypothesis is None else [w for w in hypothesis.hypstr.split() if w not in _FILLERS]
            texts.append(normalize_transcript(" ".join(w.split("(")[0] for w in words)))
        return texts
