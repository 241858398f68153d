"""PyTorch adapter: any ``torch.nn.Module`` that returns logits becomes (N, A, C) float64 signals.

* :func:`torch_logits` runs a module in eval mode, without gradients, in batches, on the identity query and
  on optional augmented queries (LiRA, Carlini et al. 2022, Sec. VI-A: evaluating the model on
  augmentations of x, e.g. flips and shifts, raises TPR at low FPR; field notes §2).
* :func:`hflip`, :func:`shift` and :func:`parse_query` are the built-in image queries.
* :func:`check_device` / :func:`resolve_device`: ``"auto" | "cpu" | "cuda" | "cuda:N"`` to a
  ``torch.device``, with a clear error when CUDA is asked for and not available; :func:`model_slot` spreads
  models over the visible GPUs (model k on GPU ``k mod n_gpus``) when the device names no index.
* :func:`load_weights` loads a user's trained weights without unpickling arbitrary objects
  (``torch.load(..., weights_only=True)`` or safetensors).

torch is imported lazily: importing this module does not need torch.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from .._imports import import_object, import_optional

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import Tensor

__all__ = ["torch_logits", "hflip", "shift", "identity", "parse_query", "load_weights", "Query", "check_device",
           "resolve_device", "model_slot"]

#: A query maps a batch tensor to an augmented batch tensor of the same shape.
Query = Callable[["torch.Tensor"], "torch.Tensor"]
QueryLike = str | Query


def _torch() -> Any:
    return import_optional("torch", "torch")


_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_SLOT: contextvars.ContextVar[int] = contextvars.ContextVar("miaudit_model_slot", default=0)


def check_device(device: Any, *, where: str = "device") -> str:
    """``device`` if it is ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, else :class:`InputError`."""
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise InputError(f"{where}: expected 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU index), got {device!r}")
    return device


@contextlib.contextmanager
def model_slot(index: int) -> Iterator[None]:
    """While the block runs, ``resolve_device("cuda")`` / ``("auto")`` picks GPU ``index mod n_gpus``."""
    token = _SLOT.set(int(index))
    try:
        yield
    finally:
        _SLOT.reset(token)


def resolve_device(device: str, *, where: str = "device") -> Any:
    """The ``torch.device`` for ``device`` on this machine, now.

    ``"auto"``: a GPU when ``torch.cuda.is_available()``, else the CPU. ``"cuda"`` (and ``"auto"`` with
    GPUs): GPU ``slot mod torch.cuda.device_count()``, where the slot is the model's index
    (:func:`model_slot`), so models spread over the visible GPUs; a Ray task that asked for ``num_gpus``
    sees only its own GPU(s) (``CUDA_VISIBLE_DEVICES``). ``"cuda:N"``: that GPU. Asking for CUDA on a
    machine without one (or for a GPU index it does not have) raises :class:`InputError`.
    """
    torch = _torch()
    check_device(device, where=where)
    if device == "cpu":
        return torch.device("cpu")
    available = bool(torch.cuda.is_available())
    if device == "auto" and not available:
        return torch.device("cpu")
    if not available:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA"
        raise InputError(
            f"{where}: {device!r} was asked for but CUDA is not available here (torch {torch.__version__} built "
            f"{build}; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}); set "
            f"device = \"cpu\" or \"auto\", run on a machine with a GPU (with Ray: [execution] num_gpus > 0), "
            "or install a CUDA build of torch"
        )
    count = int(torch.cuda.device_count())
    if device in ("auto", "cuda"):
        return torch.device("cuda", _SLOT.get() % max(1, count))
    index = int(device.split(":", 1)[1])
    if index >= count:
        raise InputError(f"{where}: {device!r} was asked for but this machine has {count} visible GPU(s) "
                         f"(cuda:0..cuda:{count - 1}); pick one of them or use \"cuda\"")
    return torch.device("cuda", index)


def identity(x: torch.Tensor) -> torch.Tensor:
    """The un-augmented query (always query 0)."""
    return x


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Horizontal mirror of image batches (last axis is the image width)."""
    return x.flip(-1)


class shift:  # noqa: N801 - used like a function: shift(1, 0)
    """Translate image batches by ``dx`` pixels right and ``dy`` pixels down, filling with zeros.

    Works on (N, H, W) and (N, C, H, W) tensors. ``shift(0, 0)`` is the identity.
    """

    def __init__(self, dx: int, dy: int) -> None:
        for name, v in (("dx", dx), ("dy", dy)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InputError(f"shift: {name} must be an int number of pixels, got {v!r}; e.g. shift(1, 0)")
        self.dx, self.dy = int(dx), int(dy)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise InputError(
                f"shift query: expected image batches of shape (N, H, W) or (N, C, H, W), got shape {tuple(x.shape)}; "
                "use shifts on image data only"
            )
        h, w = x.shape[-2], x.shape[-1]
        out = x.new_zeros(x.shape)
        dx, dy = self.dx, self.dy
        if abs(dx) >= w or abs(dy) >= h:
            return out
        src_y = slice(max(0, -dy), h - max(0, dy))
        dst_y = slice(max(0, dy), h - max(0, -dy))
        src_x = slice(max(0, -dx), w - max(0, dx))
        dst_x = slice(max(0, dx), w - max(0, -dx))
        out[..., dst_y, dst_x] = x[..., src_y, src_x]
        return out

    def __repr__(self) -> str:
        return f"shift({self.dx}, {self.dy})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, shift) and (self.dx, self.dy) == (other.dx, other.dy)

    def __hash__(self) -> int:
        return hash(("shift", self.dx, self.dy))


_SHIFT_RE = re.compile(r"^shift[:(]\s*(-?\d+)\s*,\s*(-?\d+)\s*\)?$")


def parse_query(query: QueryLike) -> Query:
    """A query from its config name: ``"identity"``, ``"hflip"``, ``"shift:DX,DY"`` (or ``"shift(DX,DY)"``),
    or an import path ``"package.module.function"``; callables are returned unchanged."""
    if callable(query):
        return query
    if not isinstance(query, str):
        raise InputError(
            f"queries: expected a callable or a name such as 'hflip' or 'shift:1,0', got {type(query).__name__}"
        )
    q = query.strip()
    if q == "identity":
        return identity
    if q == "hflip":
        return hflip
    m = _SHIFT_RE.match(q)
    if m:
        return shift(int(m.group(1)), int(m.group(2)))
    if "." in q:
        fn = import_object(q, key="queries")
        if not callable(fn):
            raise InputError(f"queries: {q!r} is not callable; name a function f(batch) -> batch")
        return fn  # type: ignore[no-any-return]
    raise InputError(
        f"queries: unknown query {query!r}; expected 'identity', 'hflip', 'shift:DX,DY' or an import path"
    )


def _as_input_tensor(X: Any) -> torch.Tensor:
    torch = _torch()
    t: Tensor
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        try:
            import pandas as pd

            if isinstance(X, pd.DataFrame):
                X = X.to_numpy()
        except ImportError:  # pragma: no cover
            pass
        arr = np.asarray(X)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise InputError(
                f"X: expected a numeric array or tensor, got dtype {arr.dtype}; one-hot encode categorical columns first"
            )
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dim() == 0:
        raise InputError("X: expected an array with a first axis of examples, got a scalar; pass shape (N, ...)")
    if t.is_floating_point():
        return t.float()
    return t.to(torch.get_default_dtype())


def torch_logits(
    module: Any,
    X: Any,
    *,
    batch_size: int = 512,
    queries: Sequence[QueryLike] | None = None,
    device: Any = "cpu",
) -> np.ndarray:
    """Logits of ``module`` on ``X`` for the identity query and each augmented query.

    Parameters
    ----------
    module:
        A ``torch.nn.Module`` mapping a float32 batch (B, ...) to logits (B, C). It is put in eval mode for the
        call (and its previous mode restored after), run under ``torch.inference_mode()``.
    X:
        ndarray, DataFrame (numeric columns only) or tensor, shape (N, ...); cast to float32.
    batch_size:
        Examples per forward pass.
    queries:
        Augmented queries (callables on a batch tensor, or names understood by :func:`parse_query`). The
        identity is always query 0, so ``A = 1 + len(queries)``.
    device:
        Where to run (``"cpu"``, ``"cuda"``, a ``torch.device``, ...); the module is moved there for the call
        and back to where its parameters were afterwards.

    Returns
    -------
    ndarray of shape (N, A, C), float64.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"module: expected a torch.nn.Module, got {type(module).__name__}; pass the model itself")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    fns: list[Query] = [identity] + [parse_query(q) for q in (queries or [])]
    x_all = _as_input_tensor(X)
    n = int(x_all.shape[0])
    was_training = module.training
    home = next((p.device for p in module.parameters()), None)
    module.eval()
    module.to(device)
    outs: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for start in range(0, n, int(batch_size)):
                xb = x_all[start : start + int(batch_size)].to(device)
                per_query = []
                for fn in fns:
                    z = module(fn(xb))
                    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] != xb.shape[0]:
                        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
                        raise InputError(
                            f"module: expected logits of shape ({xb.shape[0]}, C) for a batch of {xb.shape[0]}, "
                            f"got {shape}; the module must return one row of class logits per example"
                        )
                    per_query.append(z.detach().to("cpu", torch.float64))
                outs.append(torch.stack(per_query, dim=1).numpy())
    finally:
        module.train(was_training)
        if home is not None:
            module.to(home)
    if not outs:
        n_classes = int(getattr(module, "n_classes", 0))
        return np.zeros((0, len(fns), n_classes), dtype=np.float64)
    return np.concatenate(outs, axis=0)


def load_weights(module: Any, path: str | os.PathLike[str], *, strict: bool = True) -> Any:
    """Load a state dict from ``path`` into ``module`` without unpickling arbitrary objects.

    ``.safetensors`` files are read with safetensors (optional dependency); anything else with
    ``torch.load(path, weights_only=True, map_location="cpu")``, which refuses pickled classes and functions.
    The file may hold a state dict or ``{"state_dict": ...}`` / ``{"model_state_dict": ...}``.
    Returns ``module`` (loaded in place).
    """
    torch = _torch()
    p = Path(path)
    if not p.exists():
        raise InputError(f"weights: file {str(p)!r} does not exist; pass the path of a saved state dict")
    if p.is_dir():
        raise InputError(f"weights: {str(p)!r} is a directory; pass the path of a .pt or .safetensors file")
    if p.suffix == ".safetensors":
        st = import_optional("safetensors.torch", "torch")
        try:
            state = st.load_file(str(p), device="cpu")
        except Exception as exc:
            raise InputError(f"weights: {p.name!r} is not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    else:
        try:
            state = torch.load(str(p), weights_only=True, map_location="cpu")
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"weights: {p.name!r} cannot be loaded with weights_only=True ({type(exc).__name__}: {first}); "
                "save only the state dict (torch.save(model.state_dict(), path)) or use safetensors"
            ) from None
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(
            f"weights: {p.name!r} holds a {type(state).__name__}, not a state dict of tensors; "
            "save it with torch.save(model.state_dict(), path)"
        )
    try:
        module.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        raise InputError(
            f"weights: {p.name!r} does not fit the module ({' '.join(s.strip() for s in lines[:2])}); "
            "build the module with the same architecture it was saved from"
        ) from None
    return module
