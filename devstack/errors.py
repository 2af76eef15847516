"""The one exception type the dev stack raises on purpose."""


class DevstackError(Exception):
    """A failure the user can act on.

    The message is complete on its own (what failed, why, what to do): the CLI
    prints it as is and exits 1, and pytest shows it as the fixture error.
    """


class ExternalComponentError(DevstackError):
    """The component is configured as external, so the dev stack does not manage it."""
