"""One exception type for every mistake a user can fix (the CLI prints its message, no traceback), and
the few words that show an error in a table or a note."""


class RunnerError(Exception):
    """A problem the user can fix; the message says what and how."""


class UsageError(RunnerError):
    """The command line itself is wrong (an option's value, a --set): exit code 2, as click's own."""


class ConfigError(RunnerError):
    """The experiment file or a --set override is wrong."""


class OverrideError(ConfigError, UsageError):
    """A --set that cannot be read or names no setting."""


class UnknownModelError(RunnerError):
    pass


class DataError(RunnerError):
    """A dataset on disk is missing, incomplete or corrupt."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or []
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class DivergedError(RunnerError):
    """Training produced a non-finite loss."""


def close_matches(word: str, choices, n: int = 5) -> str:
    """', '.join of the choices that look like `word`, for 'did you mean' hints."""
    import difflib

    choices = list(choices)
    matches = difflib.get_close_matches(word, choices, n=n, cutoff=0.5)
    if not matches:
        matches = [c for c in choices if word.lower() in c.lower()][:n]
    return ", ".join(matches)


def first_line(error: BaseException | str, limit: int = 200) -> str:
    """The first non-blank line of an error's message, at most `limit` characters: what a table cell
    or a note shows of it. "" for an empty message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:limit] if lines else ""


def unknown_model_message(name: str, known, suggested) -> str:
    """Why `name` names no model: close matches among `known`, else the `suggested` ones."""
    hint = close_matches(name, known) or ", ".join(suggested)
    return f"unknown model {name!r}; close matches: {hint} (`runner models` lists all {len(list(known))})"
