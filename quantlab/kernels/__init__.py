"""Numba kernels: arrays and scalars in, arrays out. No pandas, I/O, logging or globals."""
