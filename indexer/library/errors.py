"""What goes wrong with a library folder, as users see it."""


class LibraryError(Exception):
    """A library folder that cannot be opened or used, with the reason and the fix."""


class LibraryBusyError(LibraryError):
    """Another command holds the library's writer lock."""
