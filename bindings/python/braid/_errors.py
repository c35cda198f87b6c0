"""braid's exceptions: one class per engine status code, all under BraidError."""


class BraidError(RuntimeError):
    """A braid operation failed; the message is the engine's."""

    code = None


class BraidInvalidArgument(BraidError, ValueError):
    code = 1


class BraidNotInitializedError(BraidInvalidArgument):
    """An operation before init() or after shutdown(): a misuse of the API, so also a
    BraidInvalidArgument (and a ValueError, as Horovod raises)."""

    code = 2


class BraidMismatchError(BraidError):
    code = 3


class BraidTimeoutError(BraidError):
    code = 4


class BraidAbortedError(BraidError):
    code = 5


class BraidBackendError(BraidError):
    code = 6


class BraidInternalError(BraidError):
    code = 7


class BraidDuplicateNameError(BraidError):
    code = 8


class BraidOutOfMemoryError(BraidError, MemoryError):
    """An allocation failed (host or GPU memory); on every rank of the collective."""

    code = 9


_BY_CODE = {
    cls.code: cls
    for cls in (
        BraidInvalidArgument,
        BraidNotInitializedError,
        BraidMismatchError,
        BraidTimeoutError,
        BraidAbortedError,
        BraidBackendError,
        BraidInternalError,
        BraidDuplicateNameError,
        BraidOutOfMemoryError,
    )
}


def error_class(code):
    """The exception class for an engine status code (BraidError when unknown)."""
    return _BY_CODE.get(code, BraidError)
