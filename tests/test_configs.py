"""Every YAML config under configs/ instantiates (the Lightning CLI's class_path / init_args format)."""

from pathlib import Path

import lightning as L
import pytest
import yaml
from jsonargparse import ArgumentParser

from datamodules import SyntheticCorpusConfig
from tests.conftest import REPO_ROOT

OVERLAY_BASES = {"asr/surrogate.yaml": "asr/conformer_ctc.yaml", "se_gaussian.yaml": "se.yaml"}
CONFIGS = sorted(p for p in (REPO_ROOT / "configs").rglob("*.yaml")
                 if "benchmarks" not in p.parts)  # benchmark presets: tests/test_benchmarks.py
COMPONENT_BASES = {"detectors": L.LightningModule, "data": L.LightningDataModule}  # folders of component files
TOY_BNN = ["--model.init_args.backend_factory=tests.toy_system.toy_backend", "--data.init_args.system={seed: 0}",
           "--data.init_args.system_factory=tests.toy_system.toy_system"]  # the toy recognizer: no training here


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(REPO_ROOT).as_posix() for p in CONFIGS])
def test_config_instantiates(path: Path, tmp_path):
    content = yaml.safe_load(path.read_text())
    if "class_path" in content:  # a component file: it instantiates on its own (the BNN on the toy recognizer)
        folder = path.relative_to(REPO_ROOT / "configs").parts[0]
        assert folder in COMPONENT_BASES, f"{path}: a component outside {sorted(COMPONENT_BASES)}"
        parser = ArgumentParser()
        parser.add_subclass_arguments(COMPONENT_BASES[folder], "component")
        extra = (["--component.init_args.backend=null", TOY_BNN[0].replace("--model", "--component")]
                 if "BNNDetectorModule" in content["class_path"] else [])
        objects = parser.instantiate(parser.parse_args(["--component", str(path), *extra]))
        assert isinstance(objects.component, COMPONENT_BASES[folder])
        if getattr(objects.component, "root", "") is None:  # the synthetic corpus' settings reach it
            assert isinstance(objects.component.synthetic, SyntheticCorpusConfig)
            assert objects.component.synthetic.train_speakers == content["init_args"]["synthetic"]["train_speakers"]
        return
    if "trainer" in content and "model" not in content:  # an overlay: applied on the recipe it extends
        from train import cli_main

        overlay = path.relative_to(REPO_ROOT / "configs").as_posix()
        assert overlay in OVERLAY_BASES, f"{overlay}: an overlay without a base recipe in OVERLAY_BASES"
        recipe = REPO_ROOT / "configs" / OVERLAY_BASES[overlay]
        cli = cli_main(["--config", str(recipe), "--config", str(path), f"--trainer.default_root_dir={tmp_path}",
                        "--trainer.logger=false"], run=False)
        if overlay == "asr/surrogate.yaml":
            assert cli.datamodule.synthetic.seed == content["data"]["init_args"]["synthetic"]["seed"] != 0
            assert cli.config["seed_everything"] == content["seed_everything"]
        else:  # se_gaussian.yaml: Gaussian pairs only, transcribed by PocketSphinx
            adversarial = cli.datamodule.adversarial
            assert adversarial.system == {"backend": "pocketsphinx"}
            assert [type(spec.attack).__name__ for spec in adversarial.attacks] == ["GaussianNoise"]
            assert cli.trainer.max_epochs == content["trainer"]["max_epochs"]
        return
    if "model" in content:  # a full training config: build trainer, model and data through train.py's CLI
        from train import cli_main

        extra = []
        if "bnn" in path.name:  # the toy recognizer: no training in this test
            extra = [*TOY_BNN, "--trainer.logger=false"]
        cli = cli_main(["--config", str(path), f"--trainer.default_root_dir={tmp_path}", *extra], run=False)
        assert isinstance(cli.model, L.LightningModule) and isinstance(cli.datamodule, L.LightningDataModule)
        assert sum(p.numel() for p in cli.model.parameters()) > 0
        if "bnn" in path.name:  # the components it composes, and the backend linked from the data module
            assert cli.model.hparams.backend is None and cli.datamodule.system == {"seed": 0}
            assert cli.model.hparams.head == yaml.safe_load(
                (REPO_ROOT / "configs/detectors/bnn.yaml").read_text())["init_args"]["head"]
            names = {type(c).__name__ for c in cli.trainer.callbacks}
            assert {"ThresholdCalibration", "DetectorTestReport"} <= names
        return
    if "attack" in content:  # an attack campaign: python attack.py --config ...
        from attack import build_parser
        from attacks.base import Attack

        parser = build_parser()
        objects = parser.instantiate(parser.parse_args(["--config", str(path)]))
        assert isinstance(objects.attack, Attack) and isinstance(objects.data, L.LightningDataModule)
        return
    raise AssertionError(f"{path}: neither a component, a recipe, an overlay nor an attack campaign")


def test_there_are_configs():
    assert CONFIGS
