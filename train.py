"""Training entry point (Lightning CLI): ``python train.py fit --config configs/asr/conformer_ctc.yaml``.

Subcommands fit / validate / test / predict; components come from the YAML (``class_path`` / ``init_args``);
configs compose (``--config a.yaml --config b.yaml``, last wins). A checkpoint given with ``--ckpt_path`` is loaded
with ``weights_only=True`` (tensors and plain values only: a checkpoint cannot run code) unless
``--weights_only=false`` is passed for a trusted one. With an adversarial data module (``configs/bnn.yaml``) its
missing campaigns are generated first (``lit_modules.cli``).
"""

from core import logs
from lit_modules.cli import cli_main

if __name__ == "__main__":
    logs.configure(logs.verbose())  # quiet unless ASR_ROBUSTNESS_VERBOSE=1
    cli_main()
