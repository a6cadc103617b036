"""The few domain errors the package raises.

Each message says what is wrong and what to do; the CLI and the app print it
as one line. Library code raises these and never calls `sys.exit`.
"""


class RagError(Exception):
    """Base class: anything the user can fix by changing input, files or settings."""


class CorpusError(RagError):
    """The corpus folder is missing, empty, or holds no readable article."""


class StoreError(RagError):
    """The index folder is unusable: damaged, truncated, or not a folder.

    `reason` says what is wrong; the message adds what to do.
    """

    fix = "run `rag index --rebuild`"

    def __init__(self, reason: str, fix: str | None = None) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {fix or self.fix}")


class QueryError(RagError):
    """A question or a retrieval argument is unusable (empty, too long, bad k or mode)."""


class UnknownArticleError(QueryError):
    """An article id that the corpus does not hold."""


class ModelError(RagError):
    """The embedding model cannot be found locally (it is never downloaded)."""


class SettingsError(RagError):
    """A setting has an unknown name or a value outside its range."""


class EvalError(RagError):
    """A question file is unusable (bad lines, unknown article ids), or a question in it cannot be run."""
