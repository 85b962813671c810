"""Errors that stop the program at once with a clear message, and the exit code of each.

Anything that retrying cannot fix stops a command before it does harm: a malformed setting or
argument, credentials a server refuses, arguments that differ from the open run's
(``ConfigurationError`` and its kinds: ``EXIT_CONFIG``), a server that cannot be reached before
a run begins (``ServiceUnavailable``: ``EXIT_UNAVAILABLE``). ``exit_for(exc)`` maps an error
raised while a command starts to its exit code and its message (secrets masked), or None for
an unexpected error (shown with its traceback, exit 1).
"""

from __future__ import annotations

from pymongo.errors import ConfigurationError as MongoConfigurationError
from pymongo.errors import OperationFailure
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    NoPermissionError,
)

from crawler.outcome import EXIT_CONFIG, EXIT_UNAVAILABLE
from crawler.params import ArgumentError
from crawler.redact import redact

# MongoDB's codes for refused credentials or rights: AuthenticationFailed, Unauthorized.
MONGO_AUTH_CODES = frozenset({13, 18})

REDIS_AUTH_ERRORS = (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    NoPermissionError,
)


class ConfigurationError(RuntimeError):
    """A setting, an argument or a credential the program cannot run with."""


class RunConflict(ConfigurationError):
    """A crawl's explicit arguments differ from those of the run open in Redis: it is refused
    rather than silently joining that run with the run's arguments."""


class ServiceUnavailable(RuntimeError):
    """Redis or MongoDB could not be reached before a run began."""


def is_auth_error(exc: BaseException) -> bool:
    """Credentials or rights a server refused (never worth retrying)."""
    if isinstance(exc, REDIS_AUTH_ERRORS):
        return True
    return isinstance(exc, OperationFailure) and exc.code in MONGO_AUTH_CODES


def exit_for(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and message for an error that stopped a command, or None (unexpected)."""
    if isinstance(exc, ServiceUnavailable):
        return EXIT_UNAVAILABLE, redact(str(exc))
    if isinstance(exc, ConfigurationError | ArgumentError | MongoConfigurationError):
        return EXIT_CONFIG, redact(str(exc))
    if is_auth_error(exc):
        return EXIT_CONFIG, redact(f"credentials refused: {exc}")
    if isinstance(exc, ValueError):  # the settings' validation errors name their setting
        return EXIT_CONFIG, redact(str(exc))
    return None
