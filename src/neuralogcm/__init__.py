"""NeuralOGCM: a hybrid ocean model with a differentiable physics core and a neural corrector."""

__version__ = "0.1.0"
