"""dlmem's exceptions (raised by the compiled core with dlmem's own messages)."""


class Error(ValueError):
    """A bad argument or input: unknown model or policy, malformed file, wrong shapes.

    The message says what was wrong and what would work, as the command line does.
    """


class OutOfMemory(Error, MemoryError):
    """The model does not fit the budget under this policy.

    Attributes:
        min_budget: the smallest budget (bytes) the policy can reach, when it knows
            (None otherwise).
    """

    def __init__(self, message, min_budget=None):
        super().__init__(message)
        self.min_budget = min_budget
