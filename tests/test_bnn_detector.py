"""The Bayesian Flipout detector: layers, ELBO, calibration, activation cache, and short fits through the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from bayesian_torch.layers.flipout_layers.linear_flipout import LinearFlipout

from evaluation import calibration
from evaluation.detector_callbacks import DetectorTestReport, ThresholdCalibration
from lit_modules.detectors.activation_cache import ActivationCache
from lit_modules.detectors.bnn_module import BNNDetectorModule
from lit_modules.detectors.detector_heads import SupervisedFlipoutHead, UnsupervisedProbeHead
from lit_modules.detectors.elbo import elbo_loss, kl_warmup
from lit_modules.detectors.flipout_head import FlipoutDetectorHead, flipout_kl, masked_mean_std, utterance_flipout
from tests.conftest import REPO_ROOT


def test_probe_statistics_split_the_predictive_entropy_as_hand_computed(monkeypatch):
    """Two Monte Carlo samples that are each certain but disagree: the mean prediction's entropy is ln 2 and all of it
    is epistemic (mutual information ln 2, epistemic fraction 1); frames past the length are zero."""
    from lit_modules.detectors.bayesian_probe import BayesianCTCProbe, epistemic_fraction, utterance_dispersion

    probe = BayesianCTCProbe(input_dim=4, vocabulary_size=2)
    certain = torch.tensor([[1 - 1e-6, 1e-6], [1e-6, 1 - 1e-6]]).log()  # sample 0 says class 0, sample 1 class 1
    monkeypatch.setattr(probe, "forward", lambda hidden, samples: (certain[:, None, None, :].expand(2, 1, 3, 2), None))
    frames = probe.frame_statistics(torch.zeros(1, 3, 4), torch.tensor([2]), samples=2)
    assert frames["entropy"][0, :2] == pytest.approx([math.log(2)] * 2, abs=1e-4)
    assert frames["mutual_information"][0, :2] == pytest.approx([math.log(2)] * 2, abs=1e-4)
    assert frames["dispersion"][0, :2] == pytest.approx([math.sqrt(0.5)] * 2, abs=1e-4)  # std of {0, 1}, unbiased
    assert float(frames["mutual_information"][0, 2]) == 0 and float(frames["entropy"][0, 2]) == 0
    lengths = torch.tensor([2])
    assert float(epistemic_fraction(frames["mutual_information"], frames["entropy"])[0]) == pytest.approx(1, abs=1e-4)
    assert float(utterance_dispersion(frames["mutual_information"], lengths)[0]) == pytest.approx(math.log(2), abs=1e-4)


def test_probe_mutual_information_vanishes_with_the_posterior_std():
    from lit_modules.detectors.bayesian_probe import BayesianCTCProbe

    torch.manual_seed(0)
    hidden, lengths = torch.randn(2, 5, 6), torch.tensor([5, 3])
    probe = BayesianCTCProbe(input_dim=6, vocabulary_size=4, posterior_rho_init=-4.0)
    with torch.no_grad():
        probe.output.mu_weight.normal_(0, 1.0)
    wide = probe.frame_statistics(hidden, lengths, samples=16)["mutual_information"]
    with torch.no_grad():
        probe.output.rho_weight.fill_(-30.0)
        probe.output.rho_bias.fill_(-30.0)
    narrow = probe.frame_statistics(hidden, lengths, samples=16)["mutual_information"]
    assert float(wide[0].mean()) > 1e-4 and float(narrow.abs().max()) < 1e-6


# ------------------------------------------------------------------------------------------ Flipout
def _layer(seed: int = 0, inputs: int = 6, outputs: int = 3) -> LinearFlipout:
    torch.manual_seed(seed)
    layer = LinearFlipout(inputs, outputs, prior_mean=0.0, prior_variance=1.0, posterior_rho_init=-2.0)
    with torch.no_grad():
        layer.mu_weight.normal_(0, 0.5)
        layer.mu_bias.normal_(0, 0.5)
    return layer


def test_flipout_mean_output_matches_the_deterministic_layer_with_posterior_means():
    layer = _layer()
    x = torch.randn(4, 6)
    outputs = torch.stack([layer(x)[0] for _ in range(4000)])
    expected = torch.nn.functional.linear(x, layer.mu_weight, layer.mu_bias)
    assert torch.allclose(outputs.mean(0), expected, atol=0.02)
    assert outputs.std(0).min() > 0.01  # it is stochastic


def test_flipout_perturbations_differ_across_examples_in_a_batch():
    layer = _layer(inputs=32, outputs=16)
    x = torch.randn(1, 32).repeat(8, 1)  # the same input eight times, one forward pass
    outputs, _ = layer(x)
    assert len({tuple(row.round(decimals=5).tolist()) for row in outputs}) == 8


def test_flipout_kl_is_the_closed_form_and_agrees_with_monte_carlo():
    layer = _layer()
    kl = flipout_kl(layer)
    _, library_kl = layer(torch.randn(2, 6))  # bayesian-torch averages over parameters: why flipout_kl exists
    assert float(library_kl) < float(kl) / 5
    sigma_w = torch.nn.functional.softplus(layer.rho_weight)
    sigma_b = torch.nn.functional.softplus(layer.rho_bias)

    def closed_form(mu, sigma):  # KL(N(mu, sigma^2) || N(0, 1)), summed
        return (-sigma.log() + (sigma**2 + mu**2) / 2 - 0.5).sum()

    expected = closed_form(layer.mu_weight, sigma_w) + closed_form(layer.mu_bias, sigma_b)
    assert torch.allclose(kl, expected, rtol=1e-4)
    posterior = torch.distributions.Normal(torch.cat([layer.mu_weight.flatten(), layer.mu_bias]),
                                           torch.cat([sigma_w.flatten(), sigma_b]))
    prior = torch.distributions.Normal(0.0, 1.0)
    draws = posterior.sample((20_000,))
    monte_carlo = (posterior.log_prob(draws) - prior.log_prob(draws)).sum(1).mean()
    assert abs(float(monte_carlo) - float(expected)) < 0.03 * float(expected) + 0.5


def test_utterance_flipout_shares_one_weight_sample_per_utterance_and_is_unbiased():
    torch.manual_seed(0)
    layer = _layer(inputs=6, outputs=5)
    frame = torch.randn(6)
    x = torch.stack([frame.repeat(3, 1), torch.randn(3, 6)])  # [B=2, T=3, D]: utterance 0 repeats one frame
    with torch.no_grad():
        out = utterance_flipout(layer, x, 4000)  # [S, B, T, H]
    assert out.shape == (4000, 2, 3, 5)
    assert torch.allclose(out[:, 0, 0], out[:, 0, 2])  # frames of one copy of an utterance: the same weights
    assert out[:, 0, 0].std(0).min() > 0.01  # copies differ: each has its own sign pattern
    expected = torch.nn.functional.linear(x, layer.mu_weight, layer.mu_bias)
    assert torch.allclose(out.mean(0), expected, atol=0.03)


@pytest.mark.parametrize("grad", [False, True])
def test_utterance_flipout_equals_the_flipout_definition_it_reorders(grad):
    """The frame layer folds each utterance's input signs into its noise matrices; with the same random draws it must
    give the textbook sum x W_mu^T + b_mu + ((x * s_in) dW_s^T + db_s) * s_out, copy by copy, and the same gradients."""
    from lit_modules.detectors.flipout_head import flipout_perturbation

    layer = _layer(inputs=6, outputs=5)
    x = torch.randn(3, 7, 6)  # [B, T, D]
    with torch.set_grad_enabled(grad):
        utterance_flipout(layer, x, 4)  # without gradients, draw the cached weight noise before seeding the signs
        torch.manual_seed(11)
        fast = utterance_flipout(layer, x, 4)
        torch.manual_seed(11)
        slow = torch.nn.functional.linear(x, layer.mu_weight, layer.mu_bias)[None] + flipout_perturbation(layer, x[None], 4)
    assert fast.shape == slow.shape == (4, 3, 7, 5)
    assert torch.allclose(fast, slow, atol=1e-5)
    if grad:
        first = torch.autograd.grad(fast.square().sum(), [layer.mu_weight, layer.rho_weight])
        second = torch.autograd.grad(slow.square().sum(), [layer.mu_weight, layer.rho_weight])
        assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(first, second))


def test_unpadded_pooling_equals_the_masked_formula():
    frames = torch.randn(4, 2, 9, 3)  # [S, B, T, H], nothing padded: the mask-free path
    padded = torch.cat([frames, torch.full((4, 2, 2, 3), 50.0)], dim=2)  # the same items padded: the masked path
    lengths = torch.tensor([9, 9])
    assert torch.allclose(masked_mean_std(frames, lengths), masked_mean_std(padded, lengths), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monte_carlo_copies_draw_independent_weight_noise(seed):
    """The spread over S copies is the posterior's, sum_j x_j^2 sigma_j^2 + sigma_b^2, whatever the call: with one
    weight-noise draw shared by all copies (bayesian-torch's one eps per pass) a 4-input unit's spread would be a
    chi-square of 5 terms (~60 % relative error) and would change from call to call."""
    from lit_modules.detectors.flipout_head import copy_flipout, utterance_flipout

    layer = LinearFlipout(4, 1, prior_mean=0.0, prior_variance=1.0, posterior_rho_init=-1.0)
    with torch.no_grad():
        layer.mu_weight.zero_()
        layer.mu_bias.zero_()
    sigma = torch.nn.functional.softplus(layer.rho_weight.detach())[0]
    expected = float((sigma**2).sum() + torch.nn.functional.softplus(layer.rho_bias.detach())[0] ** 2)
    torch.manual_seed(seed)
    x = torch.ones(1, 1, 4)
    frames = utterance_flipout(layer, x, samples=8000)  # [S, 1, 1, 1]
    pooled = copy_flipout(layer, torch.ones(8000, 1, 4))  # [S, 1, 1]
    for spread in (frames.flatten().var(), pooled.flatten().var()):
        assert float(spread) == pytest.approx(expected, rel=0.08)


def test_evaluation_reuses_its_weight_samples_until_the_parameters_change():
    from lit_modules.detectors.flipout_head import weight_noise

    layer, like = _layer(), torch.zeros(1)
    assert not torch.equal(weight_noise(layer, 4, like)[0], weight_noise(layer, 4, like)[0])  # training: fresh draws
    with torch.no_grad():
        first = weight_noise(layer, 4, like)[0]
        assert weight_noise(layer, 4, like)[0] is first  # scoring: S fixed posterior samples
        assert weight_noise(layer, 8, like)[0].shape[0] == 8
        layer.rho_weight.add_(0.5)  # an optimizer step changes the posterior: new samples, from the new std
        again = weight_noise(layer, 4, like)[0]
    assert again is not first and float(again.std()) > float(first.std())


def test_head_pools_only_valid_frames_and_samples_by_batch_tiling():
    torch.manual_seed(0)
    frames = torch.randn(2, 5, 3)
    padded = torch.cat([frames, torch.full((2, 4, 3), 100.0)], dim=1)
    lengths = torch.tensor([5, 3])
    pooled = masked_mean_std(padded, lengths)
    assert torch.allclose(pooled[0, :3], frames[0].mean(0), atol=1e-6)
    assert torch.allclose(pooled[1, :3], frames[1, :3].mean(0), atol=1e-6)
    head = FlipoutDetectorHead(3, 8)
    samples = head.sample(padded, lengths, 16)
    assert samples.shape == (16, 2) and samples.std(0).min() > 0


# ------------------------------------------------------------------------------------------ ELBO
def test_elbo_scales_the_kl_by_the_training_set_size():
    logits, labels, kl = torch.tensor([2.0, -1.0]), torch.tensor([1, 0]), torch.tensor(50.0)
    small, nll_small, kl_small = elbo_loss(logits, labels, kl, num_train=10)
    large, nll_large, kl_large = elbo_loss(logits, labels, kl, num_train=1000)
    assert torch.equal(nll_small, nll_large)
    assert math.isclose(float(kl_small), 5.0, rel_tol=1e-6) and math.isclose(float(kl_large), 0.05, rel_tol=1e-6)
    assert math.isclose(float(small - large), 5.0 - 0.05, rel_tol=1e-6)
    warm, _, _ = elbo_loss(logits, labels, kl, num_train=10, kl_weight=kl_warmup(4, 10))
    assert math.isclose(float(warm - nll_small), 0.5 * 5.0, rel_tol=1e-6)
    with pytest.raises(ValueError, match="N"):
        elbo_loss(logits, labels, kl, num_train=0)


# ------------------------------------------------------------------------------------------ calibration
def test_thresholds_and_error_rates_match_hand_computed_values():
    scores = [0.1, 0.2, 0.3, 0.4, 0.35, 0.6, 0.7, 0.9]
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    t = calibration.threshold_at_fpr(scores, labels, target_fpr=0.25)  # one benign of four may be flagged
    assert t == pytest.approx(0.325)  # midway between the benign 0.3 that must pass and 0.35: flags 0.35 and 0.4
    assert calibration.error_rates(scores, labels, t) == {"fp": 25.0, "fn": 0.0}
    # J = 0.75 at 0.35 (TPR 1, FPR 0.25) and at 0.6 (TPR 0.75, FPR 0): ties go to the lowest threshold
    assert calibration.threshold_youden(scores, labels) == 0.35
    assert calibration.error_rates(scores, labels, 0.6) == {"fp": 0.0, "fn": 25.0}
    with pytest.raises(ValueError, match="both"):
        calibration.threshold_youden([0.1, 0.2], [0, 0])


# clean speech scores spread out, the 10 dB noise control scores near 0: a pooled threshold puts every false positive
# on clean speech (50 % of it at a 25 % target), the per-kind one holds 25 % on each kind
KIND_SCORES = [0.1, 0.2, 0.3, 0.5, 0.0, 0.0, 0.0, 0.0, 0.6, 0.7, 0.4, 0.9]
KIND_LABELS = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
KINDS = ["clean"] * 4 + ["AG"] * 4 + ["AE"] * 4


def test_per_kind_threshold_holds_the_target_on_every_benign_kind():
    pooled = calibration.threshold_at_fpr(KIND_SCORES, KIND_LABELS, target_fpr=0.25)
    per_kind = calibration.threshold_at_fpr_per_kind(KIND_SCORES, KIND_LABELS, KINDS, target_fpr=0.25)
    assert pooled == pytest.approx(0.25) and per_kind == pytest.approx(0.35)  # midway 0.3 -> 0.4, the clean kind's
    clean_scores, clean_labels = KIND_SCORES[:4] + KIND_SCORES[8:], KIND_LABELS[:4] + KIND_LABELS[8:]
    assert calibration.error_rates(clean_scores, clean_labels, pooled)["fp"] == 50.0
    assert calibration.error_rates(clean_scores, clean_labels, per_kind)["fp"] == 25.0
    with pytest.raises(ValueError, match="one kind per score"):
        calibration.threshold_at_fpr_per_kind(KIND_SCORES, KIND_LABELS, KINDS[:-1])


@pytest.mark.parametrize("per_kind", [False, True])
def test_threshold_calibration_sets_the_modules_thresholds_per_kind_only_when_asked(per_kind):
    module = BNNDetectorModule(backend=None, backend_factory="tests.toy_system.toy_backend",
                               backend_options={"seed": 0})
    results = {"score": np.array(KIND_SCORES), "labels": np.array(KIND_LABELS, np.float32), "kinds": np.array(KINDS)}
    module.epoch_results = lambda: results
    module.log_dict = lambda *args, **kwargs: None
    ThresholdCalibration(target_fpr=0.25, per_kind=per_kind).on_validation_epoch_end(None, module)
    assert float(module.threshold_fpr) == pytest.approx(0.35 if per_kind else 0.25)
    assert float(module.threshold_youden) == pytest.approx(calibration.threshold_youden(KIND_SCORES, KIND_LABELS))
    del results["kinds"]
    if per_kind:  # a multi-process validation gathers no kinds: say so, never fall back to pooling
        with pytest.raises(RuntimeError, match="per-kind"):
            ThresholdCalibration(target_fpr=0.25, per_kind=True).on_validation_epoch_end(None, module)


def test_the_head_is_a_component_named_by_class_path():
    def module(head):
        return BNNDetectorModule(backend=None, backend_factory="tests.toy_system.toy_backend",
                                 backend_options={"seed": 0}, head=head)

    probe = module({"class_path": "lit_modules.detectors.detector_heads.UnsupervisedProbeHead",
                    "init_args": {"score": "dispersion"}})
    assert isinstance(probe.head, UnsupervisedProbeHead) and probe.head.score_name == "dispersion"
    assert probe.head.training_kinds == ("clean",)
    wide = module({"class_path": "lit_modules.detectors.detector_heads.SupervisedFlipoutHead",
                   "init_args": {"hidden_dim": 24}})
    assert isinstance(wide.head, SupervisedFlipoutHead) and wide.head.frame_layer.mu_weight.shape[0] == 24
    with pytest.raises(ValueError, match="takes no"):
        module({"class_path": "lit_modules.detectors.detector_heads.SupervisedFlipoutHead",
                "init_args": {"hiden_dim": 24}})
    with pytest.raises(ValueError, match="not a DetectorHead"):
        module({"class_path": "torch.nn.Linear"})


# ------------------------------------------------------------------------------------------ activation cache
def test_activation_cache_computes_once_and_returns_the_same_values(tmp_path):
    cache = ActivationCache(tmp_path)
    calls = []

    def compute(indices):
        calls.append(list(indices))
        lengths = torch.tensor([3 + i for i in indices])
        return torch.arange(len(indices) * 5 * 2, dtype=torch.float32).view(len(indices), 5, 2) / 7, lengths

    first, first_lengths = cache.get_batch(["a", "b"], compute)
    second, second_lengths = cache.get_batch(["b", "a", "c"], compute)
    assert calls == [[0, 1], [2]]  # "c" only
    assert torch.equal(first_lengths, torch.tensor([3, 4])) and torch.equal(second_lengths, torch.tensor([4, 3, 5]))
    assert torch.equal(second[0, :4], first[1, :4]) and torch.equal(second[1, :3], first[0, :3])
    assert cache.hits == 2 and cache.misses == 3


# ------------------------------------------------------------------------------------------ CLI fits
KL_WEIGHT = float(__import__("os").environ.get("KLW", "1e-3"))


UNSUPERVISED = "{class_path: lit_modules.detectors.detector_heads.UnsupervisedProbeHead}"
SUPERVISED = "{class_path: lit_modules.detectors.detector_heads.SupervisedFlipoutHead, init_args: {hidden_dim: 16}}"


def tiny_overrides(tiny_corpus: Path, tmp_path: Path, head: str = SUPERVISED, epochs: int = 60) -> list[str]:
    """configs/bnn.yaml on the toy recognizer and tiny corpus: AG at 0 dB (strong noise) plays the adversary (the
    toy system names no registry backend, so the linked ``model.backend`` is null and the factory builds the toy)."""
    return [
        "--config", str(REPO_ROOT / "configs/bnn.yaml"),
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.save_dir={tmp_path}",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.callbacks=[{class_path: evaluation.detector_callbacks.ThresholdCalibration}, "
        f"{{class_path: evaluation.detector_callbacks.DetectorTestReport, init_args: {{plot_dir: {tmp_path}}}}}, "
        "{class_path: lightning.pytorch.callbacks.ModelCheckpoint, init_args: "
        f"{{dirpath: {tmp_path}/ckpt, monitor: val/auc, mode: max, filename: best, save_last: true}}}}]",
        f"--trainer.max_epochs={epochs}", "--trainer.enable_progress_bar=false",
        "--model.init_args.backend_factory=tests.toy_system.toy_backend",
        "--model.init_args.backend_options={seed: 0}", f"--model.init_args.head={head}",
        f"--model.init_args.activation_cache_dir={tmp_path}/activations", "--model.init_args.mc_samples=8",
        "--model.init_args.kl_warmup_steps=0", f"--model.init_args.kl_weight={KL_WEIGHT}",
        "--model.init_args.optimizer.init_args.lr=0.01",
        f"--data.init_args.source.init_args.synthetic_dir={tiny_corpus}",
        "--data.init_args.source.init_args.test_splits=[train, dev, test]",
        "--data.init_args.system_factory=tests.toy_system.toy_system", "--data.init_args.system={seed: 0}",
        "--data.init_args.attacks=[{attack: {class_path: attacks.gaussian.GaussianNoise, init_args: {snr_db: 0.0}}, "
        "adversarial: true, only_successful: false}]",
        f"--data.init_args.cache_root={tmp_path}/adversarial", "--data.init_args.batch_size=8",
        "--data.init_args.query_budget=2", "--data.init_args.progress=false",
    ]


def report_of(cli) -> "DetectorTestReport":
    (report,) = [c for c in cli.trainer.callbacks if isinstance(c, DetectorTestReport)]
    return report


def test_supervised_fit_separates_clean_from_strongly_perturbed_speech(tiny_corpus, tmp_path):
    from train import cli_main

    cli = cli_main(["fit", *tiny_overrides(tiny_corpus, tmp_path)])
    module = cli.model
    assert module.hparams.backend is None and isinstance(module.head, SupervisedFlipoutHead)
    assert module.num_train == cli.datamodule.count_train_examples() > 0
    assert module.cache.hits > 0 and module.cache.misses == module.num_train + len(cli.datamodule.examples["val"])
    assert not math.isnan(float(module.threshold_fpr)) and not math.isnan(float(module.threshold_youden))
    last = cli.trainer.checkpoint_callback.last_model_path  # the tiny val split saturates val/auc early
    tested = cli_main(["test", *tiny_overrides(tiny_corpus, tmp_path), f"--ckpt_path={last}"])
    report = report_of(tested)
    assert report.results["auc"] >= 0.9, report.results
    assert tested.trainer.callback_metrics["test/auc"] == pytest.approx(report.results["auc"])
    assert len(report.plot_paths) == 2 and all(p.is_file() for p in report.plot_paths)


def test_unsupervised_fit_trains_on_clean_speech_only_and_flags_unseen_noise(tiny_corpus, tmp_path):
    from train import cli_main

    cli = cli_main(["fit", *tiny_overrides(tiny_corpus, tmp_path, head=UNSUPERVISED, epochs=15)])
    assert isinstance(cli.model.head, UnsupervisedProbeHead)
    assert cli.model.num_train == cli.datamodule.count_train_examples(("clean",))
    assert float(cli.model.head.reference.max()) > 0  # the clean reference distribution was recorded
    last = cli.trainer.checkpoint_callback.last_model_path
    tested = cli_main(["test", *tiny_overrides(tiny_corpus, tmp_path, head=UNSUPERVISED), f"--ckpt_path={last}"])
    assert report_of(tested).results["auc"] > 0.6, report_of(tested).results


def test_ddp_with_two_cpu_processes_shards_the_attacks_and_the_batches(tiny_corpus, tmp_path):
    """Two gloo ranks: each attacks its own shard of the sources (read from its own manifest: rank r holds the r-th
    of every two ids) and trains on its own batches (disjoint example ids)."""
    script = tmp_path / "ddp_step.py"
    args = tiny_overrides(tiny_corpus, tmp_path, epochs=1) + [
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp", "--trainer.max_steps=2",
        f"--trainer.callbacks+={{class_path: tests.ddp_probe.RecordTrainingExamples, init_args: {{folder: {tmp_path}/seen}}}}"]
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from train import cli_main
        if __name__ == "__main__":
            cli = cli_main(["fit", *{args!r}])
            trainer = cli.trainer  # one file per rank: the two ranks' stdout interleave
            with open({str(tmp_path)!r} + f"/finished-rank{{trainer.global_rank}}.txt", "w") as out:
                out.write(f"STEPS {{trainer.global_step}} WORLD {{trainer.world_size}}")
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [(tmp_path / f"finished-rank{r}.txt").read_text() for r in (0, 1)] == ["STEPS 2 WORLD 2"] * 2
    (campaign,) = (tmp_path / "adversarial").iterdir()
    shards = [[json.loads(line)["utterance_id"] for line in (campaign / f"manifest-rank{r}.jsonl").read_text().splitlines()]
              for r in (0, 1)]
    everything = sorted(shards[0] + shards[1])
    assert len(set(everything)) == len(everything) > 2
    assert [sorted(shard) for shard in shards] == [everything[0::2], everything[1::2]]
    seen = [(tmp_path / "seen" / f"examples-rank{r}.txt").read_text().split() for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) > 8 and len(set(seen[0]) & set(seen[1])) <= 1  # (<= 1 padding repeat)


def test_a_supervised_head_learns_only_the_attack_families_it_is_given():
    from datamodules.adversarial.batch import LabelledSpeechBatch

    kinds = ["clean", "AG", "AE", "AZ", "AC"]
    batch = LabelledSpeechBatch(torch.zeros(5, 1), torch.ones(5, dtype=torch.long), torch.tensor([0, 0, 1, 1, 1]),
                                kinds, [""] * 5, [""] * 5, [""] * 5)
    hidden, lengths = torch.randn(5, 7, 6), torch.tensor([7, 5, 7, 6, 4])
    everything = SupervisedFlipoutHead(6, hidden_dim=4)
    assert everything.training_kinds is None and everything.training_terms(hidden, lengths, batch)[2] == 5
    only_ae = SupervisedFlipoutHead(6, hidden_dim=4, adversarial_kinds=["AE"])
    assert only_ae.training_kinds == ("clean", "AG", "AE")  # N counts these
    torch.manual_seed(0)
    nll, _, size = only_ae.training_terms(hidden, lengths, batch)
    torch.manual_seed(0)
    logits, _ = only_ae(hidden[:3], lengths[:3])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([0.0, 0.0, 1.0]))
    assert size == 3 and float(nll) == pytest.approx(float(expected))  # AZ and AC never enter its likelihood
    unseen = batch._replace(kinds=["AZ", "AC", "AZ", "AZ", "AC"], labels=torch.ones(5, dtype=torch.long))
    assert only_ae.training_terms(hidden, lengths, unseen) is None  # nothing of its kinds: the batch is skipped
    with pytest.raises(ValueError, match="at least one"):
        SupervisedFlipoutHead(6, adversarial_kinds=[])
