"""The CNN target's training function for SACRO-ML's `PytorchModel` (SACRO-ML env only).

SACRO-ML retrains a PyTorch target's shadow models by importing a *train module* by file name
(`train_module_path`) and calling its `train(model=..., dataloader=..., **train_params)`; the model class
comes from `model_module_path` / `model_name` (here `_leakpro_models.py` / `SmallCNN`, the same architecture
as miaudit's `small_cnn`). This is the target's recipe: SGD with momentum, constant learning rate, cross-entropy,
the given number of epochs over SACRO-ML's own shuffled DataLoader (batch size = the target's, set on the
PytorchModel); SACRO-ML seeds torch through `PytorchModel.set_params(random_state=idx)` before each shadow model.
"""

from __future__ import annotations

import torch


def train(model: torch.nn.Module, dataloader, epochs: int = 15, lr: float = 0.05,  # noqa: ANN001
          momentum: float = 0.9, weight_decay: float = 0.0) -> torch.nn.Module:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(int(epochs)):
        for xb, yb in dataloader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    model.eval()
    return model
