"""A tiny training run through train.py's CLI overfits a few utterances; its checkpoint loads as a frozen backend."""

import jiwer
import pytest

from lit_modules.language_model import CharacterNGramLM

from lit_modules.backends.trained import TrainedModelBackend
from train import cli_main

MODELS = {
    "conformer_ctc": ["--model.init_args.model=lit_modules.models.conformer_ctc.ConformerCTC",
                      "--model.init_args.model.init_args.d_model=64", "--model.init_args.model.init_args.num_layers=2",
                      "--model.init_args.model.init_args.num_heads=2", "--model.init_args.model.init_args.dropout=0.0"],
    "rnnt": ["--model.init_args.model=lit_modules.models.rnnt.RNNTransducer",
             "--model.init_args.model.init_args.encoder_layers=1", "--model.init_args.model.init_args.encoder_dim=96",
             "--model.init_args.model.init_args.prediction_dim=64", "--model.init_args.model.init_args.dropout=0.0"],
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_tiny_training_run_overfits_and_reloads(name, tiny_corpus, tmp_path):
    args = [
        "fit", "--config", "configs/asr/conformer_ctc.yaml", *MODELS[name],
        f"--trainer.default_root_dir={tmp_path}", '--trainer.logger={"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "%s"}}' % tmp_path,
        "--trainer.max_epochs=60", "--trainer.max_time=null",
        "--trainer.log_every_n_steps=1", "--trainer.enable_progress_bar=false", "--trainer.check_val_every_n_epoch=60",
        f"--data.init_args.root={tiny_corpus}", "--data.init_args.train_splits=[train]",
        "--data.init_args.val_splits=[train]", "--data.init_args.train_subset=4", "--data.init_args.val_subset=4",
        "--data.init_args.batch_size=4", "--data.init_args.num_workers=0", "--model.init_args.optimizer.init_args.lr=0.003",
    ]
    cli = cli_main(args)
    metrics = cli.trainer.callback_metrics
    assert metrics["val/loss"] < 0.5 * 3.3  # untrained CTC / transducer loss per character is ~3.3 nats (ln 29)
    checkpoint = next(tmp_path.rglob("last.ckpt"))
    backend = TrainedModelBackend.from_checkpoint(checkpoint)
    batch = next(iter(cli.datamodule.val_dataloader()))
    own = backend.score(batch.waveforms, batch.lengths, batch.transcripts)
    reversed_texts = [t[::-1] for t in batch.transcripts]  # same length and characters, wrong order
    other = backend.score(batch.waveforms, batch.lengths, reversed_texts)
    assert (own < other).all()
    assert all(p.requires_grad is False for p in backend.parameters())

    # beam search with a character LM of the training transcripts is at least as good as greedy decoding
    lm_path = tmp_path / "lm.json"
    CharacterNGramLM(order=4).fit(batch.transcripts).save(lm_path)
    greedy = jiwer.wer(batch.transcripts, backend.transcribe(batch.waveforms, batch.lengths))
    beam = TrainedModelBackend.from_checkpoint(checkpoint, decoding={"beam_size": 4, "lm_path": str(lm_path),
                                                                     "lm_weight": 0.5})
    assert jiwer.wer(batch.transcripts, beam.transcribe(batch.waveforms, batch.lengths)) <= greedy


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        TrainedModelBackend.from_checkpoint(tmp_path / "nope.ckpt")


def test_unknown_backend_name():
    from lit_modules.backends.registry import load_backend

    with pytest.raises(KeyError, match="unknown backend"):
        load_backend("deepspeech")
