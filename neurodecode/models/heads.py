"""Output heads mapping an encoder's embedding to ``n_outputs`` values."""

from __future__ import annotations

from torch import Tensor, nn


class MLPHead(nn.Module):
    """LayerNorm → Linear → GELU → Dropout → Linear: ``(batch, in_features)`` → ``(batch, n_outputs)``.

    Parameters
    ----------
    in_features : int
        Embedding size.
    n_outputs : int
        Output size (classes, or 1 for a detector's logit).
    hidden : int
        Hidden layer size.
    dropout : float
        Dropout before the last layer.
    """

    def __init__(self, in_features: int, n_outputs: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.Sequential(
            nn.LayerNorm(in_features),
            nn.Linear(in_features, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )

    def forward(self, features: Tensor) -> Tensor:
        return self.layers(features)
