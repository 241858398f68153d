"""Input validation shared by every metric (one place, one-line messages).

Validators collect every problem first and raise once, so a user fixes all of them in one go.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._errors import InputError

__all__ = ["check_scores", "check_confidence", "check_fprs", "check_probability", "fpr_key"]


def _describe(a: np.ndarray) -> str:
    return f"dtype {a.dtype} and shape {a.shape}"


def check_scores(is_member: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise ``(is_member, scores)``.

    Returns ``is_member`` as a bool array of shape (N,) and ``scores`` as a float64 array of
    shape (N,). Raises :class:`InputError` (one line, every problem listed) when ``is_member`` is
    not boolean/0-1 of shape (N,), ``scores`` is not finite real of shape (N,), the lengths differ,
    or there is not at least one member and one non-member.
    """
    problems: list[str] = []
    m = np.asarray(is_member)
    s = np.asarray(scores)

    member_ok = False
    if m.ndim != 1:
        problems.append(
            f"is_member: expected a boolean (or 0/1) array of shape (N,), got {_describe(m)}; "
            "pass one flag per example, e.g. is_member.ravel()"
        )
    elif m.dtype == bool:
        member_ok = True
    elif m.dtype.kind in "iuf":
        if m.size and not np.isin(m, (0, 1)).all():
            bad = m[~np.isin(m, (0, 1))]
            problems.append(
                f"is_member: expected booleans or 0/1, got other values such as {bad[0].item()!r}; "
                "encode members as 1/True and non-members as 0/False"
            )
        else:
            m = m.astype(bool)
            member_ok = True
    else:
        problems.append(
            f"is_member: expected a boolean (or 0/1) array of shape (N,), got {_describe(m)}; "
            "encode members as 1/True and non-members as 0/False"
        )

    scores_ok = False
    if s.ndim != 1 or s.dtype.kind not in "biuf":
        problems.append(
            f"scores: expected a real-valued array of shape (N,), got {_describe(s)}; "
            "pass one float score per example (higher = more likely member)"
        )
    else:
        s = s.astype(np.float64, copy=False)
        finite = np.isfinite(s)
        if not finite.all():
            n_bad = int((~finite).sum())
            first = int(np.flatnonzero(~finite)[0])
            problems.append(
                f"scores: expected finite floats, got {n_bad} NaN/inf value(s) (first at index {first}); "
                "drop or impute those examples before computing metrics"
            )
        else:
            scores_ok = True

    if member_ok and scores_ok:
        if m.shape[0] != s.shape[0]:
            problems.append(
                f"is_member and scores: expected the same length, got {m.shape[0]} and {s.shape[0]}; "
                "pass one membership flag and one score per example"
            )
        elif m.shape[0] == 0:
            problems.append("is_member and scores: expected at least 2 examples, got empty arrays")
        else:
            n_members = int(m.sum())
            if n_members == 0 or n_members == m.shape[0]:
                what = "no members" if n_members == 0 else "no non-members"
                problems.append(
                    f"is_member: expected at least one member and one non-member, got {what} "
                    f"among {m.shape[0]} examples; evaluate on a mix of members and non-members"
                )
    if problems:
        raise InputError("; ".join(problems))
    return m, s


def check_confidence(confidence: Any, name: str = "confidence") -> float:
    """A confidence level strictly between 0 and 1."""
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        c = math.nan
    if not 0.0 < c < 1.0:
        raise InputError(
            f"{name}: expected a number strictly between 0 and 1 (e.g. 0.95), got {confidence!r}"
        )
    return c


def check_probability(value: Any, name: str, *, low_open: bool, high_open: bool, example: str) -> float:
    """A float in [0, 1] with the stated open/closed ends."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    ok = (v > 0.0 if low_open else v >= 0.0) and (v < 1.0 if high_open else v <= 1.0)
    if not ok:
        lo = "(0" if low_open else "[0"
        hi = "1)" if high_open else "1]"
        raise InputError(f"{name}: expected a number in {lo}, {hi} (e.g. {example}), got {value!r}")
    return v


def fpr_key(fpr: float) -> str:
    """The results.json key of a target FPR: ``format(fpr, "g")`` (``0.001 -> "0.001"``)."""
    return format(float(fpr), "g")


def check_fprs(fprs: Any) -> tuple[float, ...]:
    """A non-empty sequence of distinct target FPRs in (0, 1)."""
    if isinstance(fprs, (str, bytes)) or not isinstance(fprs, Iterable):
        raise InputError(
            f"fprs: expected a sequence of target false-positive rates in (0, 1), got {fprs!r}; "
            "e.g. fprs=(0.001, 0.01, 0.1)"
        )
    out = tuple(check_probability(f, "fprs", low_open=True, high_open=True, example="0.001") for f in fprs)
    if not out:
        raise InputError("fprs: expected at least one target false-positive rate, got none; e.g. fprs=(0.001, 0.01)")
    keys = [fpr_key(f) for f in out]
    if len(set(keys)) != len(keys):
        raise InputError(f"fprs: expected distinct values, got {list(out)!r}; remove the duplicates")
    return out
