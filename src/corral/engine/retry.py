"""Retry decisions and backoff delays. Pure: the random source is passed in."""

from __future__ import annotations

from collections.abc import Callable

from corral.core.errors import HandlerError, NonRetryable
from corral.core.model import RetryPolicy

__all__ = ["backoff_delay", "should_retry"]


def backoff_delay(policy: RetryPolicy, attempt: int, rand: Callable[[], float]) -> float:
    """Delay after failed attempt ``attempt`` (1-based) before the next one.

    ``backoff * multiplier ** (attempt - 1)``, capped at ``max_backoff``, then
    scaled by a uniform factor in ``[1 - jitter, 1 + jitter]`` so that many
    steps failing together do not retry in lockstep.
    """
    base = min(policy.max_backoff, policy.backoff * policy.multiplier ** (attempt - 1))
    if policy.jitter:
        base *= 1.0 + policy.jitter * (2.0 * rand() - 1.0)
    return max(0.0, base)


def should_retry(policy: RetryPolicy, exc: BaseException, attempt: int) -> bool:
    """Whether a step whose attempt ``attempt`` raised ``exc`` gets another attempt."""
    if attempt >= policy.attempts:
        return False
    if isinstance(exc, (NonRetryable, HandlerError)):
        return False
    if not policy.retry_on:
        return True
    names = {cls.__name__ for cls in type(exc).__mro__} | {
        f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__
    }
    return any(name in names for name in policy.retry_on)
