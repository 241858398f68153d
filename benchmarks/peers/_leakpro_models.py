"""Torch model classes that LeakPro loads by file path (`target.module_path`); LeakPro env only.

TorchMLP: the digits/Adult scikit-learn MLP (one hidden ReLU layer) as a torch module; its weights are copied
from the fitted MLPClassifier, so its logits are the sklearn model's (a one-output binary model becomes two
logits [0, z], the same softmax). Children are (fc1, act, fc2) so LeakPro's QMIA can drop the last layer.
SmallCNN: the same architecture as miaudit's `small_cnn` (two 3x3 conv blocks, then Linear-ReLU-Linear),
written out here because peers never import miaudit; children are (features, classifier).
"""

from __future__ import annotations

import torch
from torch import nn


class TorchMLP(nn.Module):
    def __init__(self, n_features: int = 64, hidden: int = 128, n_classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_features, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x.reshape(len(x), -1))))


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int = 1, n_classes: int = 10, image_size: int = 28, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * side * side, 4 * width), nn.ReLU(), nn.Linear(4 * width, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.classifier(self.features(x))


class UserDataset(torch.utils.data.Dataset):
    """LeakPro's UserDataset contract (data, targets; pickled as the population file, so defined at module level)."""

    def __init__(self, data, targets, **kwargs) -> None:  # noqa: ANN001, ANN003
        self.data = torch.as_tensor(data)
        self.targets = torch.as_tensor(targets)

    def return_params(self) -> dict:
        return {}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):  # noqa: ANN201
        return self.data[index], self.targets[index]
