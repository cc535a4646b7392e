"""The daemon process and its faces: supervisor, scheduler, control socket, infractl."""

__version__ = "0.1.0"
