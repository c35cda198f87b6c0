"""braidrun, the launcher of braid jobs (`python3 -m braid.runner`, or `braidrun`)."""

from .launch import build_mpirun_command, main

__all__ = ["build_mpirun_command", "main"]
