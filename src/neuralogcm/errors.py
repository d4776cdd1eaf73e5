"""Errors that reach the user as one clear message (no traceback) from the CLI."""


class UserError(Exception):
    """Bad input the user can fix: the message names the file, key or variable."""


class DataError(UserError):
    """A data file is missing, truncated, corrupt or disagrees with what the config expects."""


class CredentialsError(UserError):
    """Download credentials are missing; the message says where they go."""
