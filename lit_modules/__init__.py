"""LightningModules and the ``nn.Module`` components they wire: ASR backends, detectors, enhancers."""
