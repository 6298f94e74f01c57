"""Training DIDNet: config (TOML), data set, resumable loop. See docs/training.md."""
