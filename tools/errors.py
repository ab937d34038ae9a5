"""The one failure vocabulary of tools.

- ToolInputError: the model passed something wrong; the message tells it what to fix (it is shown to the model).
- PolicyError: the request is understood but the shop's policy forbids it; the message is safe to show the user.
- NotFoundError: the thing does not exist *for this user* (also used for other customers' data, so nothing leaks).
Anything else is a bug and raises.
"""


class ToolError(Exception):
    """Base of errors a tool reports back to the agent instead of crashing."""


class ToolInputError(ToolError):
    pass


class PolicyError(ToolError):
    pass


class NotFoundError(ToolError):
    pass
