"""Gradient compression for allreduce, with Horovod's interface (braid._compression):
``Compression.none``, ``.fp16`` and ``.bf16``; only floating-point tensors are cast."""

import tensorflow as tf

from braid._compression import (BF16_DOC, FP16_DOC, Compressor,  # noqa: F401
                                NoneCompressor, cast_compressor, compression_namespace)


def _floating(tensor):
    return tensor.dtype.is_floating


FP16Compressor = cast_compressor(tf.float16, _floating, tf.cast, "FP16Compressor", FP16_DOC)
BF16Compressor = cast_compressor(tf.bfloat16, _floating, tf.cast, "BF16Compressor", BF16_DOC)
Compression = compression_namespace(FP16Compressor, BF16Compressor)
