"""`braid-bench`: starts the braid-bench binary shipped inside the package.

Run it under the launcher like any MPI program, e.g. ``braidrun -np 2 braid-bench``;
``braid-bench --help`` lists its options."""

import importlib.util
import os
import sys


def binary_path():
    """Where the package keeps braid-bench (next to the compiled extension)."""
    spec = importlib.util.find_spec("braid._C")
    if spec is None or spec.origin is None:
        return None
    return os.path.join(os.path.dirname(spec.origin), "bin", "braid-bench")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        exe = binary_path()
    except Exception as error:  # a broken build raises more than ImportError
        exe, why = None, f"{type(error).__name__}: {error}"
    else:
        why = "braid._C not found"
    if exe is None or not os.access(exe, os.X_OK):
        print(f"braid-bench: error: the braid-bench binary is not installed "
              f"({exe or why}); build braid with BRAID_BUILD_BENCH=ON and "
              f"BRAID_BUILD_PYTHON=ON (pip install . does)", file=sys.stderr)
        return 2
    os.execv(exe, [exe] + list(argv))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
