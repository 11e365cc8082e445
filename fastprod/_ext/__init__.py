"""Cython kernels. Import them through ``fastprod.kernels``.

Layering (as in asyncpg): C headers for intrinsics -> ``.pxd`` inline primitives ->
``cdef class`` builders -> thin ``def`` wrappers. No I/O and no producer policy here;
this package imports nothing from fastprod except ``fastprod.errors``.
"""
