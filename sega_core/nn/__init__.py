"""The model API: layers, activations, losses, optimizers, schedulers and the model itself."""
