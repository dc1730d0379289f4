# SPDX-License-Identifier: BSD-3-Clause
"""psum.py - the parallel sum of IPython's MPI guide, in Python 3.

Each engine holds a part of an array; psum adds the local parts and
combines them across all ranks with an MPI allreduce, so every rank gets
the global sum.
"""
import numpy as np
from mpi4py import MPI


def psum(a):
    """Return the sum of a over all ranks of MPI.COMM_WORLD."""
    locsum = np.sum(a)
    return MPI.COMM_WORLD.allreduce(locsum, op=MPI.SUM)
