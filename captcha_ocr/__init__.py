"""Read text captchas with a residual CNN + BiLSTM trained from scratch (see the README)."""
