"""The bridge's error type: a class from the manifest spec and a one-line message."""

from __future__ import annotations

ERROR_CLASSES = ("import", "build", "unsupported", "dtype", "internal")


class BridgeError(Exception):
    """A per-node failure with an ``errorClass`` of docs/manifest.md."""

    def __init__(self, error_class: str, message: str) -> None:
        assert error_class in ERROR_CLASSES, error_class
        super().__init__(message)
        self.error_class = error_class
        self.message = " ".join(message.split())  # always one line
