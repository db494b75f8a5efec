"""The algorithm: VGG features, losses, optimizers and the engine (torch; no files, no prints)."""
