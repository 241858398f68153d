"""The PyTorch training recipe: one object that trains, re-trains and queries a PyTorch model.

Reference models must be trained with the target's recipe (architecture, optimiser, epochs, augmentation;
Carlini et al. 2022, Sec. IV-B and Fig. 11c), so the whole recipe is a value: :meth:`TorchRecipe.spec` is
JSON and enters the model-cache key, :meth:`TorchRecipe.from_spec` rebuilds it from the audit config's
``[model]`` section (``kind = "torch"``). It follows the :class:`miaudit.training.Recipe` protocol, plus
``train_group`` (G models at once, :mod:`miaudit.training.stacked`) and DP-SGD (:mod:`miaudit.training.dp`).

Threads: ``num_threads=N`` sets ``torch.set_num_threads(N)`` while training and predicting. With the default
``None`` the recipe uses 1 thread inside a worker process (a process pool already spreads models over the
cores; more threads would oversubscribe them) and otherwise leaves torch's setting alone, which is all cores
unless the caller limited it (``threadpoolctl.threadpool_limits(1)``, as ``train_models(jobs=1)`` does).
Results are deterministic for a given seed and thread count; PyTorch does not promise identical rounding
across thread counts (convolutions differ in the last bit), so the runner's one-thread-per-model policy is
what makes results independent of ``--jobs``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import ConfigError, InputError, TrainingError
from .._imports import import_object, import_optional

torch = import_optional("torch", "torch")

from ..models.torch import check_device, parse_query, resolve_device, torch_logits  # noqa: E402
from .dp import check_dp, dp_info, privacy_guarantee, train_dp  # noqa: E402
from .stacked import TrainSettings, _build, has_conv, is_stackable, train_one, train_stacked  # noqa: E402

__all__ = ["TorchRecipe", "TabularEncoding", "RECIPE_KEYS"]

#: Keys accepted by :meth:`TorchRecipe.from_spec` (the config's ``[model]`` table with ``kind = "torch"``).
RECIPE_KEYS = (
    "model", "model_kwargs", "n_classes", "optimizer", "lr", "momentum", "weight_decay", "epochs",
    "batch_size", "schedule", "augmentation", "max_shift", "label_smoothing", "queries", "train_fn", "dp",
    "group_size", "stack", "num_threads", "predict_batch_size", "device",
)


# -- tabular input --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TabularEncoding:
    """How a DataFrame becomes a float matrix: numeric and bool columns as they are, ``category`` columns
    one-hot over their dtype's categories (missing values -> all zeros). Object/string columns are refused
    (convert them with ``astype("category")`` first, so every model sees the same categories)."""

    columns: tuple[str, ...]
    categories: tuple[tuple[Any, ...] | None, ...]  # None for numeric columns

    @classmethod
    def of(cls, frame: Any) -> TabularEncoding:
        import pandas as pd
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        cats: list[tuple[Any, ...] | None] = []
        for c in frame.columns:
            dt = frame[c].dtype
            if isinstance(dt, pd.CategoricalDtype):
                cats.append(tuple(dt.categories.tolist()))
            elif is_numeric_dtype(dt) or is_bool_dtype(dt):
                cats.append(None)
            else:
                raise InputError(
                    f"X[{c!r}]: torch recipes need numeric or 'category' columns, got dtype {dt}; convert it with "
                    f"X[{c!r}] = X[{c!r}].astype('category') or one-hot encode it first"
                )
        return cls(tuple(str(c) for c in frame.columns), tuple(cats))

    @property
    def numeric_mask(self) -> np.ndarray:
        """bool (F,) over encoded features: True for numeric columns (standardised), False for one-hot ones."""
        parts = [np.ones(1, bool) if c is None else np.zeros(len(c), bool) for c in self.categories]
        return np.concatenate(parts) if parts else np.zeros(0, bool)

    def transform(self, frame: Any) -> np.ndarray:
        cols = tuple(str(c) for c in frame.columns)
        if cols != self.columns:
            raise InputError(
                f"X: expected the columns the model was trained on {list(self.columns)[:8]}, got {list(cols)[:8]}; "
                "pass the same table layout"
            )
        blocks = []
        for name, col, cats in zip(self.columns, frame.columns, self.categories):
            s = frame[col]
            if cats is None:
                v = s.to_numpy(dtype=np.float64, na_value=np.nan)
                if not np.isfinite(v).all():
                    raise InputError(f"X[{name!r}]: found NaN or inf; impute missing numbers before training")
                blocks.append(v[:, None])
            else:
                codes = np.asarray(s.cat.set_categories(list(cats)).cat.codes if hasattr(s, "cat") else
                                   s.astype("category").cat.set_categories(list(cats)).cat.codes)
                onehot = np.zeros((len(s), len(cats)), dtype=np.float64)
                ok = codes >= 0
                onehot[np.flatnonzero(ok), codes[ok]] = 1.0
                blocks.append(onehot)
        return np.concatenate(blocks, axis=1).astype(np.float32) if blocks else np.zeros((len(frame), 0), np.float32)


def _is_frame(X: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return False
    return isinstance(X, pd.DataFrame)


def _to_features(X: Any, encoding: TabularEncoding | None) -> np.ndarray:
    if _is_frame(X):
        enc = encoding if encoding is not None else TabularEncoding.of(X)
        return enc.transform(X)
    arr = np.asarray(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"X: expected a numeric array (N, F), (N, H, W) or (N, C, H, W), got dtype {arr.dtype}; "
                         "one-hot encode categorical columns or pass a DataFrame with 'category' columns")
    if arr.ndim < 2:
        raise InputError(f"X: expected shape (N, F), (N, H, W) or (N, C, H, W), got shape {arr.shape}; "
                         "reshape a single feature with X.reshape(-1, 1)")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise InputError("X: found NaN or inf; impute or drop them before training")
    return arr


def _check_labels(y: Any, n: int, n_classes: int) -> np.ndarray:
    yy = np.asarray(y)
    if yy.ndim != 1 or yy.shape[0] != n:
        raise InputError(f"y: expected shape ({n},) to match X, got shape {yy.shape}; pass one label per row")
    if yy.size and (not np.issubdtype(yy.dtype, np.integer) or yy.min() < 0 or yy.max() >= n_classes):
        raise InputError(f"y: expected integer labels in [0, {n_classes}), got dtype {yy.dtype} with range "
                         f"[{yy.min()}, {yy.max()}]; encode the classes as 0..C-1 or raise n_classes")
    return yy.astype(np.int64)


def _standardizer(x: np.ndarray, numeric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float64 -> float32) of numeric columns of ``x``; one-hot columns keep (0, 1)."""
    mu = np.zeros(x.shape[1], dtype=np.float64)
    sd = np.ones(x.shape[1], dtype=np.float64)
    if x.shape[0] and numeric.any():
        xn = x[:, numeric].astype(np.float64)
        mu[numeric] = xn.mean(axis=0)
        s = xn.std(axis=0)
        sd[numeric] = np.where(s > 0, s, 1.0)
    return mu.astype(np.float32), sd.astype(np.float32)


def _in_worker_process() -> bool:
    return multiprocessing.parent_process() is not None


# -- the recipe -----------------------------------------------------------------------------------------


class TorchRecipe:
    """Train a PyTorch classifier from a seed; train many at once; query it with augmentations.

    Parameters
    ----------
    model:
        ``"mlp"`` (:class:`miaudit.models._nets.MLP`, for (N, F) tables), ``"small_cnn"``
        (:class:`~miaudit.models._nets.SmallCNN`, for (N, H, W) / (N, C, H, W) images) or the import path of a
        factory (class or function) returning a ``torch.nn.Module`` that maps a float32 batch to logits.
    model_kwargs:
        Keyword arguments of the factory. For the built-ins, ``n_features`` / ``in_channels`` / ``image_size`` /
        ``n_classes`` are filled in from the data unless given.
    n_classes:
        Number of classes C (logits have C columns).
    optimizer, lr, momentum, weight_decay, epochs, batch_size, schedule, augmentation, max_shift,
    label_smoothing:
        Training settings (:class:`miaudit.training.stacked.TrainSettings`). ``weight_decay`` is L2 added to the
        gradient (``torch.optim`` semantics); ``momentum`` applies to SGD only.
    queries:
        Augmented queries for :meth:`predict_logits` (names for :func:`miaudit.models.torch.parse_query` such as
        ``"hflip"``, ``"shift:1,0"``, or import paths). Query 0 is always the identity: ``A = 1 + len(queries)``.
    train_fn:
        Optional import path of the user's ``train(model, dataset, seed)`` (``dataset`` a ``TensorDataset``
        of float32 features and int64 labels); it trains ``model`` in place (or returns the trained module).
        The settings above then only describe the recipe for the cache key.
    dp:
        Optional DP-SGD table (:func:`miaudit.training.dp.check_dp`): ``{"epsilon", "delta", "max_grad_norm"}``
        or ``{"noise_multiplier", "max_grad_norm", "delta"}``.
    group_size:
        How many models :meth:`train_group` trains at once as one stacked model (does not change the models).
    stack:
        ``"auto"`` (default), ``True`` or ``False``: whether :meth:`train_group` stacks models (see
        :attr:`stackable`); it never changes the models, only the speed.
    num_threads:
        torch threads while training/predicting; ``None``: 1 in a worker process, else torch's current setting
        (all cores unless the caller limited it).
    predict_batch_size:
        Examples per forward pass in :meth:`predict_logits`.
    device:
        ``"auto"`` (default: a GPU when torch sees one, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``:
        where miaudit's training loops (one by one and stacked) and :meth:`predict_logits` run
        (:func:`miaudit.models.torch.resolve_device`). ``"cuda"``/``"auto"`` put model k on GPU
        ``k mod n_gpus`` of the visible ones; a Ray task with ``num_gpus`` sees only its own. CUDA asked for
        where there is none is an :class:`~miaudit.InputError` when the model trains. DP-SGD (Opacus) and a
        user ``train_fn`` train on the CPU (the model is then queried on the device). Left out of the cache
        key, like ``stack``: a GPU changes the models only within rounding (``docs/torch.md``).

    DataFrames: numeric and ``category`` columns are accepted (``category`` columns are one-hot encoded over
    their dtype's categories, so every model sees the same features); numeric columns of a DataFrame are
    standardised with the training subset's mean and std (stored on the model). Arrays are used as given.
    """

    kind = "torch"

    def __init__(
        self,
        model: str = "mlp",
        model_kwargs: Mapping[str, Any] | None = None,
        *,
        n_classes: int,
        optimizer: str = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        epochs: int = 10,
        batch_size: int = 128,
        schedule: str = "constant",
        augmentation: str | None = None,
        max_shift: int = 2,
        label_smoothing: float = 0.0,
        queries: Sequence[Any] | None = None,
        train_fn: str | None = None,
        dp: Mapping[str, Any] | None = None,
        group_size: int = 16,
        stack: str | bool = "auto",
        num_threads: int | None = None,
        predict_batch_size: int = 1024,
        device: str = "auto",
    ) -> None:
        problems: list[str] = []
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
            problems.append(f"n_classes: expected an int >= 2, got {n_classes!r}")
        if not isinstance(model, str) or not model:
            problems.append(f"model: expected 'mlp', 'small_cnn' or an import path, got {model!r}")
        if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
            problems.append(f"model_kwargs: expected a table, got {type(model_kwargs).__name__}")
        if augmentation in ("none", "None", ""):
            augmentation = None
        for name, v, lo in (("group_size", group_size, 1), ("predict_batch_size", predict_batch_size, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                problems.append(f"{name}: expected an int >= {lo}, got {v!r}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 1):
            problems.append(f"num_threads: expected an int >= 1 or none, got {num_threads!r}")
        try:
            check_device(device)
        except InputError as exc:
            problems.append(str(exc))
        if stack not in ("auto", True, False):
            problems.append(f"stack: expected 'auto', true or false, got {stack!r}")
        if train_fn is not None and dp is not None:
            problems.append("train_fn and dp: give one; DP-SGD uses miaudit's own training loop")
        if problems:
            raise ConfigError("model: " + "; ".join(problems))
        self.settings = TrainSettings(
            optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, epochs=epochs,
            batch_size=batch_size, schedule=schedule, augmentation=augmentation, max_shift=max_shift,
            label_smoothing=label_smoothing,
        )
        self.model = model
        self.model_kwargs: dict[str, Any] = dict(model_kwargs or {})
        self.n_classes = int(n_classes)
        self.queries = list(queries or [])
        self._query_fns = [parse_query(q) for q in self.queries]
        self.train_fn = train_fn
        self.dp = check_dp(dp)
        self.stack = stack
        self.group_size = int(group_size) if self.stackable else 1
        self.num_threads = num_threads
        self.predict_batch_size = int(predict_batch_size)
        self.device = device
        self._factory_obj = self._resolve_factory()
        self._train_fn_obj = self._resolve_train_fn()

    # -- construction helpers ---------------------------------------------------------------------------
    def _resolve_factory(self) -> Callable[..., Any]:
        from ..models._nets import BUILTIN_MODELS

        if self.model in BUILTIN_MODELS:
            return BUILTIN_MODELS[self.model]
        if "." not in self.model:
            raise ConfigError(
                f"model.model: unknown built-in {self.model!r}; expected one of {', '.join(BUILTIN_MODELS)} "
                "or an import path such as 'mypackage.nets.ResNet'"
            )
        obj = import_object(self.model, key="model.model")
        if not callable(obj):
            raise ConfigError(f"model.model: {self.model!r} is not callable; name a class or function returning an nn.Module")
        return obj  # type: ignore[no-any-return]

    def _resolve_train_fn(self) -> Callable[..., Any] | None:
        if self.train_fn is None:
            return None
        fn = import_object(self.train_fn, key="model.train_fn")
        if not callable(fn):
            raise ConfigError(f"model.train_fn: {self.train_fn!r} is not callable; name a function train(model, dataset, seed)")
        return fn  # type: ignore[no-any-return]

    @property
    def stackable(self) -> bool:
        """True when :meth:`train_group` trains models as one stacked model.

        Never with DP-SGD or a user ``train_fn``. ``stack="auto"``: yes for MLPs and for imported modules
        without convolutions; no for ``small_cnn``, because on a CPU a grouped convolution over G models is
        slower than G ordinary ones (measured in ``benchmarks/bench_stacked_training.py``), so CNN reference
        models go to parallel processes instead. ``stack=True`` forces stacking (e.g. on a GPU).
        """
        if self.dp is not None or self.train_fn is not None or self.stack is False:
            return False
        return self.stack is True or self.model != "small_cnn"

    @property
    def n_queries(self) -> int:
        return 1 + len(self.queries)

    def preload_modules(self) -> list[str]:
        """Nothing for the forkserver to import: each worker imports torch when it unpickles the recipe (a
        forkserver that imported torch, or scikit-learn, would make the first worker wait for it)."""
        return []

    def factory(self, X_features: np.ndarray) -> Callable[[], Any]:
        """A zero-argument factory for data shaped like ``X_features`` (encoded float array)."""
        kwargs = dict(self.model_kwargs)
        if self.model == "mlp":
            kwargs.setdefault("n_features", int(np.prod(X_features.shape[1:])))
            kwargs.setdefault("n_classes", self.n_classes)
        elif self.model == "small_cnn":
            if X_features.ndim not in (3, 4):
                raise InputError(f"X: small_cnn expects images (N, H, W) or (N, C, H, W), got shape {X_features.shape}; "
                                 "use model = 'mlp' for tables")
            kwargs.setdefault("in_channels", 1 if X_features.ndim == 3 else int(X_features.shape[1]))
            kwargs.setdefault("image_size", int(X_features.shape[-1]))
            kwargs.setdefault("n_classes", self.n_classes)
        fn = self._factory_obj

        def make() -> Any:
            try:
                return fn(**kwargs)
            except TypeError as exc:
                raise ConfigError(f"model.model_kwargs: cannot build {self.model!r} with {kwargs!r} ({exc})") from None

        return make

    # -- protocol ---------------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """JSON description (cache key). ``group_size``, ``stack``, ``num_threads``, ``predict_batch_size`` and
        ``device`` are left out: they do not change the models (up to rounding)."""
        s = self.settings
        queries = [q if isinstance(q, str) else f"{getattr(q, '__module__', '?')}.{getattr(q, '__qualname__', repr(q))}"
                   for q in self.queries]
        return {
            "kind": "torch",
            "model": self.model,
            "model_kwargs": _jsonable(self.model_kwargs),
            "n_classes": self.n_classes,
            **s.to_dict(),
            "queries": queries,
            "train_fn": self.train_fn,
            "dp": self.dp,
            "torch_version": str(torch.__version__),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> TorchRecipe:
        """Build from a config ``[model]`` table or a :meth:`spec` dict; unknown keys are refused."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"model: expected a table, got {type(spec).__name__}")
        d = dict(spec)
        kind = d.pop("kind", "torch")
        if kind != "torch":
            raise ConfigError(f"model.kind: expected 'torch' for a TorchRecipe, got {kind!r}")
        d.pop("torch_version", None)
        unknown = sorted(set(d) - set(RECIPE_KEYS))
        if unknown:
            raise ConfigError(f"model: unknown key {unknown[0]!r} for kind = 'torch'; valid keys: "
                              f"{', '.join(sorted(RECIPE_KEYS))}")
        if "n_classes" not in d:
            raise ConfigError("model.n_classes: missing; set it to the number of classes of the data")
        return cls(**d)

    def _threads(self) -> None:
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        elif _in_worker_process():
            torch.set_num_threads(1)

    def _device(self) -> Any:
        """The ``torch.device`` this model trains and is queried on (resolved now, on this machine)."""
        return resolve_device(self.device, where="[model] device")

    def _encode(self, X: Any) -> tuple[np.ndarray, TabularEncoding | None]:
        enc = TabularEncoding.of(X) if _is_frame(X) else None
        return _to_features(X, enc), enc

    def _standardize(self, x: np.ndarray, enc: TabularEncoding | None) -> tuple[np.ndarray, np.ndarray] | None:
        if enc is None:
            return None
        return _standardizer(x, enc.numeric_mask)

    def _finish(self, model: Any, enc: TabularEncoding | None, stdz: tuple[np.ndarray, np.ndarray] | None) -> Any:
        model.miaudit_encoding_ = enc
        model.miaudit_standardize_ = stdz
        return model

    def train(self, X: Any, y: Any, *, seed: int) -> Any:
        """Train one model on all of ``(X, y)`` with randomness from ``seed`` (one by one; DP or user train_fn
        when configured). Returns a ``torch.nn.Module`` in eval mode with ``training_info_``."""
        self._threads()
        x, enc = self._encode(X)
        yy = _check_labels(y, x.shape[0], self.n_classes)
        stdz = self._standardize(x, enc)
        tens = (torch.from_numpy(stdz[0]), torch.from_numpy(stdz[1])) if stdz is not None else None
        xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(yy)
        make = self.factory(x)
        try:
            if self._train_fn_obj is not None:
                model = self._train_user(make, xt, yt, seed=int(seed), standardize=tens)
            elif self.dp is not None:
                model = train_dp(make, xt, yt, seed=int(seed), settings=self.settings, dp=self.dp, standardize=tens)
            else:
                model = train_one(make, xt, yt, seed=int(seed), settings=self.settings, standardize=tens,
                                  device=self._device())
        except (ConfigError, InputError, TrainingError):
            raise
        except RuntimeError as exc:
            raise TrainingError(f"model seed {seed}: training failed ({str(exc).splitlines()[0]})") from None
        return self._finish(model, enc, stdz)

    def _train_user(self, make: Callable[[], Any], xt: Any, yt: Any, *, seed: int,
                    standardize: tuple[Any, Any] | None) -> Any:
        model = _build(make, seed)
        if standardize is not None:
            xt = (xt - standardize[0]) / standardize[1]
        dataset = torch.utils.data.TensorDataset(xt, yt)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            out = self._train_fn_obj(model, dataset, int(seed))  # type: ignore[misc]
        if out is not None:
            if not isinstance(out, torch.nn.Module):
                raise TrainingError(f"model.train_fn: returned {type(out).__name__}; return the trained nn.Module or None")
            model = out
        model.eval()
        model.training_info_ = {"mode": "train_fn", "seed": seed, "n_train": int(xt.shape[0])}
        return model

    def train_group(self, X: Any, y: Any, masks: np.ndarray, seeds: Sequence[int]) -> list[Any]:
        """Train ``len(seeds)`` models, model g on the rows ``masks[g]``, as stacked models of up to
        ``group_size`` at a time (same models as :meth:`train` on ``X[masks[g]]`` with ``seeds[g]``, up to
        rounding). Falls back to one by one for DP, a user ``train_fn`` or modules with buffers."""
        x, enc = self._encode(X)
        yy = _check_labels(y, x.shape[0], self.n_classes)
        masks = np.asarray(masks)
        seeds = [int(s) for s in seeds]
        if masks.dtype != bool or masks.ndim != 2 or masks.shape != (len(seeds), x.shape[0]):
            raise InputError(f"masks: expected a bool array of shape ({len(seeds)}, {x.shape[0]}) (models x examples), "
                             f"got {masks.dtype} of shape {masks.shape}; pass one membership row per seed")
        make = self.factory(x)
        probe = _build(make, 0) if self.stackable else None
        if probe is None or not is_stackable(probe) or (self.stack == "auto" and has_conv(probe)):
            return [self.train(_rows(X, m), yy[m], seed=s) for m, s in zip(masks, seeds)]
        self._threads()
        xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(yy)
        out: list[Any] = []
        for start in range(0, len(seeds), max(1, int(getattr(self, "group_size", 16)))):
            part = slice(start, start + max(1, self.group_size))
            stdz = [self._standardize(x[m], enc) for m in masks[part]]
            pairs = [s for s in stdz if s is not None]  # all or none: None exactly when enc is None
            tens = None
            if pairs:
                tens = (torch.from_numpy(np.stack([s[0] for s in pairs])), torch.from_numpy(np.stack([s[1] for s in pairs])))
            try:
                models = train_stacked(make, xt, yt, masks[part], seeds[part], settings=self.settings, standardize=tens,
                                       device=self._device())
            except (ConfigError, InputError, TrainingError):
                raise
            except RuntimeError as exc:
                raise TrainingError(f"models with seeds {seeds[part]}: stacked training failed "
                                    f"({str(exc).splitlines()[0]})") from None
            out += [self._finish(mdl, enc, s) for mdl, s in zip(models, stdz)]
        return out

    def predict_logits(self, model: Any, X: Any) -> np.ndarray:
        """Logits (N, A, C) float64 of ``model`` on ``X`` for the identity and each configured query, with the
        model's own tabular encoding and standardisation applied first."""
        self._threads()
        enc = getattr(model, "miaudit_encoding_", None)
        x = _to_features(X, enc) if (enc is not None or _is_frame(X)) else X
        stdz = getattr(model, "miaudit_standardize_", None)
        if stdz is not None:
            x = (np.asarray(x, dtype=np.float32) - stdz[0]) / stdz[1]
        out = torch_logits(model, x, batch_size=self.predict_batch_size, queries=self._query_fns,
                           device=self._device())
        if out.shape[2] != self.n_classes:
            raise InputError(f"model: returned {out.shape[2]} logits per example, expected n_classes = {self.n_classes}; "
                             "make the last layer match the number of classes")
        return out

    @staticmethod
    def training_info(model: Any) -> dict[str, Any]:
        """The training record of ``model`` (mode, seed, n_train, steps, and ``dp`` for DP-SGD models)."""
        return dict(getattr(model, "training_info_", {}) or {})

    @staticmethod
    def dp_info(model: Any) -> dict[str, Any] | None:
        """Accountant epsilon, delta, noise multiplier and clipping norm of a DP-SGD model, else ``None``."""
        return dp_info(model)

    def dp_guarantee(self, n_train: int) -> dict[str, Any] | None:
        """The accountant's (epsilon, delta) guarantee of a model trained on ``n_train`` examples by this recipe,
        computed without training (``None`` without DP): the pipeline's ``game["dp"]``."""
        if self.dp is None:
            return None
        return privacy_guarantee(n_train, settings=self.settings, dp=self.dp)

    def __repr__(self) -> str:
        return f"TorchRecipe(model={self.model!r}, n_classes={self.n_classes}, {self.settings}, dp={self.dp})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TorchRecipe) and self.spec() == other.spec()

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_factory_obj"] = None
        state["_train_fn_obj"] = None
        state["_query_fns"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._factory_obj = self._resolve_factory()
        self._train_fn_obj = self._resolve_train_fn()
        self._query_fns = [parse_query(q) for q in self.queries]


def _rows(X: Any, mask: np.ndarray) -> Any:
    return X.loc[X.index[mask]] if _is_frame(X) else np.asarray(X)[mask]


def _jsonable(value: Any) -> Any:
    import json

    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.model_kwargs: expected JSON-like values, got {value!r} ({exc})") from None
