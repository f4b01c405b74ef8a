"""Speech corpora in LibriSpeech layout (real or synthetic) served as ``SpeechBatch`` batches."""

from core.batch import SpeechBatch
from datamodules.librispeech import LibriSpeechDataModule
from datamodules.synthetic.corpus_config import SyntheticCorpusConfig

__all__ = ["LibriSpeechDataModule", "SpeechBatch", "SyntheticCorpusConfig"]
