"""`braidrun --help-env` and `braidrun --check-build`.

Both read the compiled extension, which is the single source of truth for the
BRAID_* variables and for the backends this build was compiled with; nothing about
them is repeated here, so the listing cannot drift from the engine.
"""

import importlib
import importlib.util
import sys

NOT_BUILT = ("braidrun: error: the braid extension (braid._C) is not built or cannot "
             "be imported ({error}); build braid with BRAID_BUILD_PYTHON=ON and "
             "install the Python package")

COMPILED = (("mpi", "MPI"), ("nccl", "NCCL"), ("cuda", "CUDA"), ("hwloc", "hwloc"))
FRAMEWORKS = (("torch", "PyTorch"), ("tensorflow", "TensorFlow"))


def load_extension():
    """Returns (braid._C, None) or (None, the import error as text)."""
    try:
        return importlib.import_module("braid._C"), None
    except Exception as error:  # a broken build raises more than ImportError
        return None, f"{type(error).__name__}: {error}"


def format_env_help(variables):
    """One block per variable: name, then type, default, accepted values and help."""
    blocks = []
    for var in variables:
        default = var.get("default") or "(none)"
        blocks.append(
            f"{var['name']}\n"
            f"    type: {var.get('type', '')}   default: {default}   "
            f"accepted: {var.get('accepted', '')}\n"
            f"    {var.get('help', '')}")
    return "\n\n".join(blocks)


def print_env_help():
    ext, error = load_extension()
    if ext is None:
        print(NOT_BUILT.format(error=error), file=sys.stderr)
        return 1
    print("Environment variables read by braid at init (set them, or use the matching "
          "braidrun flags):\n")
    print(format_env_help(ext.config_vars()))
    return 0


def _box(present):
    return "[X]" if present else "[ ]"


def format_build_check(build, frameworks):
    """Horovod-style checkbox lines; `build` is None when braid._C is missing."""
    lines = ["braid build:", "", "Available frameworks:"]
    lines += [f"    {_box(frameworks[key])} {label}" for key, label in FRAMEWORKS]
    lines += ["", "Available backends and libraries:"]
    if build is None:
        lines.append("    (unknown: braid._C is not built or cannot be imported)")
    else:
        lines += [f"    {_box(build.get(key, False))} {label}" for key, label in COMPILED]
    return "\n".join(lines)


def framework_presence():
    """Whether each framework is importable, without importing it (torch is slow)."""
    found = {}
    for key, _ in FRAMEWORKS:
        try:
            found[key] = importlib.util.find_spec(key) is not None
        except (ImportError, ValueError):
            found[key] = False
    return found


def print_build_check():
    ext, error = load_extension()
    build = None if ext is None else dict(ext.build_info())
    print(format_build_check(build, framework_presence()))
    if ext is None:
        print(f"\nbraid._C: {error}", file=sys.stderr)
    return 0
