"""FAKE torch for llem's tests (no GPU and no PyTorch on the machines that
run llem's test suite). It provides only what harness_pytorch.py touches
on its CPU path: tensors of ints with 2-D slicing, devices as context
managers, inference_mode, manual_seed, dtype names. It computes nothing;
see ../transformers for the fake model. Real runs: scripts/gpu-validate-pytorch.sh.
"""

import contextlib

__version__ = "0.0.0-fake"

float32, float16, bfloat16 = "float32", "float16", "bfloat16"


class _Version:
    cuda = None


version = _Version()


class _Cuda:
    @staticmethod
    def is_available():
        return False

    @staticmethod
    def synchronize():
        raise AssertionError("synchronize called without CUDA")


cuda = _Cuda()
_seed = [0]
matmul_precision = []


def manual_seed(s):
    _seed[0] = s


def set_float32_matmul_precision(v):
    matmul_precision.append(v)


class device:
    def __init__(self, name):
        self.type = name

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def inference_mode():
    return contextlib.nullcontext()


def no_grad():
    return contextlib.nullcontext()


class Tensor:
    """A 2-D list of ints."""

    def __init__(self, rows):
        self.rows = [list(r) for r in rows]

    @property
    def shape(self):
        return (len(self.rows), len(self.rows[0]) if self.rows else 0)

    def __getitem__(self, idx):
        rows, cols = idx
        return Tensor([r[cols] for r in self.rows[rows]])

    def tolist(self):
        return [list(r) for r in self.rows]


def tensor(data, device=None):
    return Tensor(data)


def compile(fn, **kw):
    return fn
