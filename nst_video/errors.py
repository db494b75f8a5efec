"""One exception family; the CLI turns any of them into one line on stderr and exit code 1."""

from __future__ import annotations

from collections.abc import Iterable


class NstError(Exception):
    """Base class of every error a user can cause (bad input, bad option, missing weights...)."""


class InputError(NstError):
    """A file or directory the user named is missing, unreadable or of an unsupported kind."""


class OptionError(NstError):
    """An option value is out of range or unknown."""


class WeightsError(NstError):
    """No usable VGG19 weights."""


class OutputError(NstError):
    """The output cannot be written (exists, unwritable, disk full)."""


class DivergenceError(NstError):
    """The loss became NaN or infinite."""


class FFmpegError(NstError):
    """ffmpeg failed; the message is its most relevant stderr line."""


class ResumeError(NstError):
    """A work directory cannot be resumed with the given settings."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is an allocation failure: MemoryError (numpy), torch's OutOfMemoryError
    (CUDA, MPS) or its CPU allocator's RuntimeError, which has no class of its own."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def out_of_memory_error(exc: BaseException, size: int | None) -> NstError:
    """One line for an allocation failure, naming a size that needs a quarter of the memory."""
    detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    detail = detail.split("DefaultCPUAllocator: ")[-1]
    at = f"at --size {size}" if size else "at this size"
    smaller = f"--size {size // 2}" if size and size > 1 else "a smaller --size"
    return NstError(f"out of memory {at} ({detail.rstrip('.')}); try {smaller}")


def plural(count: int, noun: str) -> str:
    """'1 frame', '2 frames': counts in messages go through here."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def unknown_choice(what: str, value: object, valid: Iterable[object]) -> OptionError:
    """Error that names the bad value and lists the valid ones."""
    listed = ", ".join(str(v) for v in valid)
    return OptionError(f"unknown {what} {value!r}; valid: {listed}")


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; raised from the signal handler so work stops at once.

    A BaseException, like KeyboardInterrupt, so no `except Exception` swallows it.
    """

    def __init__(self, signum: int):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
