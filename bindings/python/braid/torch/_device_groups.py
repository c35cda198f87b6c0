"""What the optimizer wrappers over braid.ops share: parameters are grouped by
(dtype, device), one op per group."""

import torch


def key_name(key):
    """A (dtype, device) key as part of an op's name."""
    dtype, device = key
    # The device type, not its index: ranks may use different GPUs.
    return "%s.%s" % (str(dtype).replace("torch.", ""), device.type)


def stream_of(key):
    """The current stream of the key's device as an integer (0 on the host)."""
    device = key[1]
    return torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
