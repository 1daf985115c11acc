"""BPF array maps read and written by file descriptor through the bpf(2) syscall.

This is all the agent process needs of eBPF once the programs run: the compiler (BCC with its LLVM) lives
only in the short-lived loader child (bccload.py), which hands over the map fds. A lookup is one syscall;
KTM reads a fixed ~125 slots per collection.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_MAP_LOOKUP_ELEM = 1
_MAP_UPDATE_ELEM = 2
_ANY = 0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _ElemAttr(ctypes.Structure):
    """The BPF_MAP_*_ELEM member of `union bpf_attr` (include/uapi/linux/bpf.h)."""

    _fields_ = [("map_fd", ctypes.c_uint32), ("_pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def syscall_number() -> int | None:
    """bpf(2)'s number on this machine, None where KTM does not know it."""
    return _SYS_BPF.get(platform.machine())


class ArrayMap:
    """One BPF_MAP_TYPE_ARRAY by fd: u32 keys, fixed-size values. Owns the fd; close() releases it."""

    def __init__(self, fd: int, value_size: int) -> None:
        number = syscall_number()
        if number is None:
            raise OSError(f"bpf(2) number unknown on {platform.machine()}")
        self._number = number
        self.fd = fd
        self.value_size = value_size
        self._key = ctypes.c_uint32()
        self._value = ctypes.create_string_buffer(value_size)

    def _call(self, command: int, flags: int = 0) -> None:
        attr = _ElemAttr(map_fd=self.fd, key=ctypes.addressof(self._key), value=ctypes.addressof(self._value),
                         flags=flags)
        if _libc.syscall(self._number, command, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
            error = ctypes.get_errno()
            raise OSError(error, f"bpf map fd {self.fd}: {os.strerror(error)}")

    def read(self, index: int) -> bytes:
        self._key.value = index
        self._call(_MAP_LOOKUP_ELEM)
        return self._value.raw

    def write(self, index: int, value: bytes) -> None:
        if len(value) != self.value_size:
            raise ValueError(f"value of {len(value)} bytes for a map of {self.value_size}-byte values")
        self._key.value = index
        self._value.raw = value
        self._call(_MAP_UPDATE_ELEM, _ANY)

    def read_u64s(self, count: int) -> list[int]:
        """Slots 0..count-1 of a map of u64 values."""
        if self.value_size != 8:
            raise ValueError(f"map of {self.value_size}-byte values read as u64")
        return [int.from_bytes(self.read(i), sys.byteorder) for i in range(count)]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

