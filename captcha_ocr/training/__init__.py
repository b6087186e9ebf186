"""Training and evaluation with Lightning: the LightningModule, the CLI glue, callbacks, per-image
evaluation and cross-validation."""
