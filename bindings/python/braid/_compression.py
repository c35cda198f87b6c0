"""Horovod's gradient compressors, for any framework: a compressor's
``compress(tensor)`` returns ``(compressed, ctx)`` and ``decompress(compressed, ctx)``
restores the original dtype. Only floating-point tensors are cast. braid.torch and
braid.tensorflow each make their set with their framework's cast and dtypes."""


class Compressor:
    """Base class: compress before the allreduce, decompress after it."""

    @staticmethod
    def compress(tensor):
        raise NotImplementedError

    @staticmethod
    def decompress(tensor, ctx):
        raise NotImplementedError


class NoneCompressor(Compressor):
    """Sends tensors as they are."""

    @staticmethod
    def compress(tensor):
        return tensor, None

    @staticmethod
    def decompress(tensor, ctx):
        return tensor


def cast_compressor(wire_dtype, is_floating, cast, name, doc):
    """A compressor that sends floating-point tensors as `wire_dtype`:
    is_floating(tensor) -> bool, cast(tensor, dtype) -> tensor."""

    def compress(tensor):
        if is_floating(tensor) and tensor.dtype != wire_dtype:
            return cast(tensor, wire_dtype), tensor.dtype
        return tensor, None

    def decompress(tensor, ctx):
        return tensor if ctx is None else cast(tensor, ctx)

    return type(name, (Compressor,), {"__doc__": doc, "compress": staticmethod(compress),
                                      "decompress": staticmethod(decompress)})


FP16_DOC = "Sends floating-point tensors as IEEE half precision (halves the bytes)."
BF16_DOC = "Sends floating-point tensors as bfloat16: float32's range, 8 bits of mantissa."


def compression_namespace(fp16, bf16):
    """Horovod's ``Compression`` class: the compressors by name."""
    return type("Compression", (), {
        "__doc__": "The compressors, by name: ``Compression.none``, ``.fp16`` and ``.bf16``.",
        "none": NoneCompressor, "fp16": fp16, "bf16": bf16})
