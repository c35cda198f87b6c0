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


class WrappingOptimizer(torch.optim.Optimizer):
    """An optimizer that wraps another (self.optimizer, set by the subclass) and
    shares its param_groups, state and defaults, so that LR schedulers and gradient
    clipping work on the wrapper. Optimizer.__init__ is not called: the wrapped
    optimizer owns the state."""

    # Read through: the wrapped optimizer's load_state_dict replaces them.
    param_groups = property(lambda self: self.optimizer.param_groups,
                            lambda self, v: setattr(self.optimizer, "param_groups", v))
    state = property(lambda self: self.optimizer.state,
                     lambda self, v: setattr(self.optimizer, "state", v))
    defaults = property(lambda self: self.optimizer.defaults,
                        lambda self, v: setattr(self.optimizer, "defaults", v))

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.optimizer)

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group):
        raise NotImplementedError("%s: add every param group before wrapping the optimizer"
                                  % type(self).__name__)
