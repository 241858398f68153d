"""The statistical settings of an audit: one definition, used by the API, the config's ``[metrics]`` and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import InputError
from .._seeds import check_seed
from ._checks import check_confidence, check_fprs, check_probability

__all__ = ["AuditSettings", "DEFAULT_FPRS"]

DEFAULT_FPRS: tuple[float, ...] = (1e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class AuditSettings:
    """Statistical settings of an audit (results.json ``settings``).

    ``delta`` of the empirical epsilon bound; ``confidence`` of every interval, bound and of the verdict
    (its false-alarm rate is ``1 - confidence``); ``member_prior`` of the PPV; the target ``fprs``; ``seed``
    of every random split (the verdict's and the epsilon bound's selection/certification halves, cross-fitting).
    """

    delta: float = 1e-5
    confidence: float = 0.95
    member_prior: float = 0.5
    fprs: tuple[float, ...] = DEFAULT_FPRS
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for check in (
            lambda: check_probability(self.delta, "delta", low_open=False, high_open=True, example="1e-5"),
            lambda: check_confidence(self.confidence),
            lambda: check_probability(self.member_prior, "member_prior", low_open=True, high_open=True, example="0.5"),
            lambda: check_fprs(self.fprs),
            lambda: check_seed(self.seed),
        ):
            try:
                check()
            except InputError as exc:
                problems.append(str(exc))
        if problems:
            raise InputError("settings: " + "; ".join(problems))
        object.__setattr__(self, "fprs", tuple(float(f) for f in self.fprs))

    @classmethod
    def coerce(cls, value: AuditSettings | Mapping[str, Any] | None) -> AuditSettings:
        """``value`` as settings: None (defaults), an instance, or a mapping with some of the fields."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            valid = set(cls.__dataclass_fields__)
            unknown = set(value) - valid
            if unknown:
                raise InputError(f"settings: unknown key(s) {sorted(unknown)}; valid keys: {sorted(valid)}")
            kw = dict(value)
            if "fprs" in kw:
                kw["fprs"] = tuple(kw["fprs"])
            return cls(**kw)
        raise InputError(f"settings: expected AuditSettings or a mapping, got {type(value).__name__}")

    @property
    def alpha(self) -> float:
        """``1 - confidence``: the verdict's false-alarm rate on null games."""
        return 1.0 - self.confidence

    def to_dict(self) -> dict[str, Any]:
        return {"delta": self.delta, "confidence": self.confidence, "member_prior": self.member_prior,
                "fprs": list(self.fprs), "seed": self.seed}
