"""Gradient compression for allreduce, with Horovod's interface (braid._compression):
``Compression.none``, ``.fp16`` and ``.bf16``; only floating-point tensors are cast."""

import torch

from braid._compression import (BF16_DOC, FP16_DOC, Compressor,  # noqa: F401
                                NoneCompressor, cast_compressor, compression_namespace)


def _floating(tensor):
    return tensor.dtype.is_floating_point


def _cast(tensor, dtype):
    return tensor.to(dtype)


FP16Compressor = cast_compressor(torch.float16, _floating, _cast, "FP16Compressor", FP16_DOC)
BF16Compressor = cast_compressor(torch.bfloat16, _floating, _cast, "BF16Compressor", BF16_DOC)
Compression = compression_namespace(FP16Compressor, BF16Compressor)
