"""The one exception type for problems a user can cause (bad file, bad sidecar, bad config)."""

from __future__ import annotations


class CallQAError(Exception):
    """A problem with the user's input, with a message that names the file and the field.

    The batch records the message on the recording and goes on with the next one.
    """
