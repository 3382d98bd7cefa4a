// train/ — the training loop of the base model (placeholder until the training-engine issue lands).
