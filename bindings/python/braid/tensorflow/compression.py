"""Gradient compression for allreduce, with Horovod's interface: a compressor's
``compress(tensor)`` returns ``(compressed, ctx)`` and ``decompress(compressed, ctx)``
restores the original dtype. Only floating-point tensors are cast."""

import tensorflow as tf


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


def _cast_compressor(wire_dtype):
    class _Cast(Compressor):
        @staticmethod
        def compress(tensor):
            if tensor.dtype.is_floating and tensor.dtype != wire_dtype:
                return tf.cast(tensor, wire_dtype), tensor.dtype
            return tensor, None

        @staticmethod
        def decompress(tensor, ctx):
            return tensor if ctx is None else tf.cast(tensor, ctx)

    return _Cast


class FP16Compressor(_cast_compressor(tf.float16)):
    """Sends floating-point tensors as IEEE half precision (halves the bytes)."""


class BF16Compressor(_cast_compressor(tf.bfloat16)):
    """Sends floating-point tensors as bfloat16: float32's range, 8 bits of mantissa."""


class Compression:
    """The compressors, by name: ``Compression.none``, ``.fp16`` and ``.bf16``."""

    none = NoneCompressor
    fp16 = FP16Compressor
    bf16 = BF16Compressor
