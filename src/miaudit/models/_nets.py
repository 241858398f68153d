"""Built-in small PyTorch architectures for audits and benchmarks.

Both networks are deliberately small so that dozens of reference models (LiRA, Carlini et al. 2022,
Sec. IV-B) train in minutes on a CPU, and both are free of buffers (no batch normalisation), so that
many copies can be trained at once as one stacked model (:mod:`miaudit.training.stacked`).

Importing this module imports torch; :mod:`miaudit.models` itself never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import ConfigError
from .._imports import import_optional

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

torch = import_optional("torch", "torch")
nn = torch.nn

__all__ = ["MLP", "SmallCNN", "BUILTIN_MODELS"]


def _positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"model_kwargs.{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


class MLP(nn.Module):  # type: ignore[misc, name-defined]
    """Multi-layer perceptron for tabular data: ``Linear -> ReLU [-> Dropout]`` per hidden layer.

    Parameters
    ----------
    n_features:
        Input width F; inputs of shape (N, F) (extra trailing dimensions are flattened).
    n_classes:
        Output width C (logits).
    hidden:
        Widths of the hidden layers; ``()`` gives multinomial logistic regression.
    dropout:
        Dropout probability after each hidden ReLU (0 = none).
    """

    def __init__(
        self, n_features: int, n_classes: int, hidden: Sequence[int] = (256,), dropout: float = 0.0
    ) -> None:
        super().__init__()
        n_features = _positive_int(n_features, "n_features")
        n_classes = _positive_int(n_classes, "n_classes", minimum=2)
        if isinstance(hidden, int):
            hidden = (hidden,)
        hidden = tuple(_positive_int(h, "hidden") for h in hidden)
        if not (isinstance(dropout, (int, float)) and 0.0 <= float(dropout) < 1.0):
            raise ConfigError(f"model_kwargs.dropout: expected a float in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = []  # type: ignore[name-defined]
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(float(dropout)))
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)
        self.n_features = n_features
        self.n_classes = n_classes

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.net(x.reshape(x.shape[0], -1))
        return logits


class SmallCNN(nn.Module):  # type: ignore[misc, name-defined]
    """Two 3x3 conv blocks (``conv -> ReLU -> 2x2 max-pool``, ``width`` and ``2 * width`` channels), then
    ``Linear(., 4 * width) -> ReLU -> Linear(., n_classes)``.

    About 0.1M parameters at ``width=16`` on 28x28 inputs; accepts (N, H, W) (one channel) or
    (N, C, H, W) float inputs of side ``image_size`` (28 for MNIST, 32 for CIFAR-10).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, image_size: int = 28, width: int = 16) -> None:
        super().__init__()
        in_channels = _positive_int(in_channels, "in_channels")
        n_classes = _positive_int(n_classes, "n_classes", minimum=2)
        width = _positive_int(width, "width")
        image_size = _positive_int(image_size, "image_size", minimum=4)
        if image_size % 4:
            raise ConfigError(f"model_kwargs.image_size: expected a multiple of 4 (28 or 32), got {image_size}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * side * side, 4 * width),
            nn.ReLU(),
            nn.Linear(4 * width, n_classes),
        )
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.image_size = image_size

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        logits: Tensor = self.classifier(self.features(x))
        return logits


#: Built-in names accepted by ``TorchRecipe(model=...)``.
BUILTIN_MODELS = {"mlp": MLP, "small_cnn": SmallCNN}
