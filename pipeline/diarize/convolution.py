"""scipy's overlap-add convolution, bit for bit, a few of its blocks at a time, last piece first.

`oaconvolve` over a ten-minute window holds the spectra of all its blocks at once (some 170 MB for
the echo path of `echo.py`). It cuts the signal into blocks of `step` samples, convolves each by
FFT and adds each block's tail (the kernel's length less one) onto the next block's head. Pieces of
the signal that start on block boundaries have the same blocks, and a piece's tail is exactly what
the next piece's head misses (the zero block after it adds 0.0): each output sample is the same sum
of the same two terms. The last piece is kept long enough for oaconvolve to cut it into blocks too.

Last piece first: the echo canceller writes each piece over the channel that is the other echo's
source, and a piece's output needs source samples only up to its own end.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from scipy.fft import next_fast_len
from scipy.signal import oaconvolve
from scipy.special import lambertw

# Blocks convolved at once: 64 × 13,241 samples (53 s at 16 kHz) for the 80 ms echo path, whose
# buffers are a few MB whatever the signal's length.
PIECE_BLOCKS = 64


def convolve_pieces(signal: np.ndarray, kernel: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """`oaconvolve(signal, kernel)[:len(signal)]` as (offset, samples) pieces, the last one first.

    The piece at `offset` is computed from `signal[:offset + len(samples)]` only, and only once the
    pieces after it were handed out: the caller may change the signal from that point on."""
    block, step = oa_block(len(kernel))
    piece = PIECE_BLOCKS * step
    n = len(signal)
    if n < piece + 2 * block:
        yield 0, oaconvolve(signal, kernel)[:n]
        return
    overlap = len(kernel) - 1
    starts = list(range(0, n, piece))
    if n - starts[-1] < 2 * block:
        starts.pop()
    ends = [*starts[1:], n]
    later: tuple[int, np.ndarray] | None = None  # the piece after this one, waiting for this one's tail
    for first, last in zip(reversed(starts), reversed(ends), strict=True):
        part = oaconvolve(signal[first:last], kernel)
        if later is not None:
            offset, samples = later
            samples[:overlap] += part[last - first :]
            yield offset, samples
        later = first, part[: last - first]
    if later is not None:
        yield later


def convolve(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`oaconvolve(signal, kernel)[:len(signal)]`, from the pieces (one output array, no spectra)."""
    out = np.empty(len(signal), dtype=np.result_type(signal, kernel))
    for offset, samples in convolve_pieces(signal, kernel):
        out[offset : offset + len(samples)] = samples
    return out


def oa_block(kernel_len: int) -> tuple[int, int]:
    """(FFT block, step) that scipy's oaconvolve chooses for a long signal and this kernel (its
    private `_calc_oa_lens`; tests/test_echo.py checks that the results agree bit for bit)."""
    overlap = kernel_len - 1
    if overlap < 1:
        return 1, 1
    size = -overlap * lambertw(-1 / (2 * math.e * overlap), k=-1).real
    block = next_fast_len(math.ceil(size))
    return block, block - kernel_len + 1
