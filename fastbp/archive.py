"""The .npz archive of a model file, written atomically and read without trusting it.

Writing (`write`; `write_file` for the other files a model is saved as, such as ONNX): the
file goes to a temporary file next to the target (named after it), is synced, then renamed
over the target, so a crash leaves the previous file intact; a symlink is followed and its
target replaced, the link kept. Only a regular file (or nothing) may be replaced.

Reading: only a regular file is opened. Each member is an .npy array whose header (dtype,
shape) is read before any of its data, so that the caller can check every declared shape
against the model's description before anything of that size is allocated; the data is then
read straight into the caller's array.
"""
from __future__ import annotations

import glob
import os
import secrets
import stat
import time
import zipfile
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy

MAX_HEADER_BYTES = 1 << 16         # an .npy header is a few hundred bytes
READ_CHUNK = 1 << 18              # bytes read at a time (zipfile copies through buffers)
MAX_DEFLATE_RATIO = 1100           # deflate cannot expand data more than about 1032 times
# What a malformed or truncated archive raises while it is read.
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError,
               ValueError, KeyError, OverflowError, UnicodeDecodeError, OSError, SyntaxError)


# ------------------------------------------------------------------------------------ writing
def _temporary_pattern(target: str) -> str:
    """Glob pattern of the temporary files that saves of `target` create (see `write`)."""
    directory, name = os.path.split(target)
    return os.path.join(directory, f".{glob.escape(name)}.fastbp-*.tmp")


def write(path, arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` as an uncompressed .npz to `path`, atomically (see `write_file`)."""
    write_file(path, lambda f: np.savez(f, **arrays))


def write_file(path, write_contents: Callable[[BinaryIO], object]) -> None:
    """Write a file atomically: `write_contents(f)` writes it to a temporary binary file `f`
    next to `path`, which is then synced and renamed over `path`.

    An existing `path` must be a regular file (or a symlink to one, whose target is replaced);
    the new file keeps its mode, otherwise gets the mode a plain ``open`` gives (0666 less the
    umask). Temporary files left by earlier saves of the same target that were interrupted are
    removed; errors name `path`.
    """
    shown = os.fspath(path)
    target = os.path.realpath(shown)          # a symlink's target is the file replaced
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _named(exc, shown) from None
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"path: {shown!r} exists and is not a regular file ({_kind(mode)}); "
                         f"fastbp replaces only regular files")
    started = time.time()
    tmp = f"{os.path.join(os.path.dirname(target), '.' + os.path.basename(target))}" \
          f".fastbp-{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies
    except OSError as exc:
        raise _named(exc, shown) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write_contents(f)
            f.flush()
            if mode is not None:
                os.fchmod(f.fileno(), stat.S_IMODE(mode))
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _named(exc, shown) from None
        raise
    _remove_stale(target, started)


def _remove_stale(target: str, before: float) -> None:
    """Remove temporary files of earlier saves of `target` last written before `before`
    (a save in progress keeps writing its own)."""
    for stale in glob.glob(_temporary_pattern(target)):
        try:
            if os.lstat(stale).st_mtime < before:
                os.unlink(stale)
        except OSError:
            pass


def _named(exc: OSError, path: str) -> OSError:
    """The same kind of error, naming the user's path instead of a temporary one."""
    return type(exc)(exc.errno, exc.strerror or str(exc), path)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


# ------------------------------------------------------------------------------------ reading
class Archive:
    """The members of a model file: `headers` maps each array's name to (dtype, shape), read
    from its .npy header; `read_into(name, out)` fills an array of that dtype and shape.

    Raises FileNotFoundError, PermissionError (OSError) or ValueError naming the path; any
    member whose name is not in `allowed(name)` is refused before it is read.
    """

    def __init__(self, path, allowed) -> None:
        self.path = os.fspath(path)
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(f"path: no such file: {self.path!r}") from None
        if not stat.S_ISREG(mode):
            raise ValueError(f"path: {self.path!r} is {_kind(mode)}, not a fastbp model file")
        self._file = open(self.path, "rb")          # noqa: SIM115 (closed by close())
        try:
            if not zipfile.is_zipfile(self._file):
                raise ValueError(f"path: {self.path!r} is not a fastbp model file (expected an "
                                 f".npz archive)")
            self._zip = zipfile.ZipFile(self._file)
            self.headers = self._read_headers(allowed)
        except BaseException as exc:
            self.close()
            if isinstance(exc, _UNREADABLE):
                raise self.error(str(exc)) from None
            raise

    def error(self, detail: str) -> ValueError:
        """The error of an archive that cannot be a fastbp model file."""
        if detail.startswith("path: "):
            return ValueError(detail)
        return ValueError(f"path: {self.path!r} is not a readable fastbp model file (.npz "
                          f"expected): {detail}")

    def _read_headers(self, allowed) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        headers = {}
        size = os.fstat(self._file.fileno()).st_size
        for info in self._zip.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if not info.filename.endswith(".npy") or not allowed(name) or name in headers:
                raise self.error(f"unexpected member {info.filename!r}")
            stored = info.compress_type == zipfile.ZIP_STORED
            if info.compress_size > size or (stored and info.file_size != info.compress_size) \
                    or info.file_size > MAX_DEFLATE_RATIO * info.compress_size + (1 << 20):
                raise self.error(f"member {info.filename!r} declares sizes this file cannot "
                                 f"hold ({info.compress_size} bytes stored, {info.file_size} "
                                 f"unpacked, in a file of {size})")
            with self._zip.open(info) as member:
                dtype, shape, offset = self._header(member, info.filename)
            need = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
            if info.file_size < need:
                raise self.error(f"member {info.filename!r} is shorter than its header declares "
                                 f"({info.file_size} bytes, {need} needed)")
            headers[name] = (dtype, shape)
        return headers

    def _header(self, member, filename: str) -> tuple[np.dtype, tuple[int, ...], int]:
        version = npy.read_magic(member)
        read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(
            version)
        if read is None:
            raise self.error(f"member {filename!r} has unknown .npy version {version}")
        shape, fortran, dtype = read(member, max_header_size=MAX_HEADER_BYTES)
        if fortran or dtype.hasobject or dtype.kind not in "fU" or not dtype.isnative:
            raise self.error(f"member {filename!r} has dtype {dtype} (fortran order "
                             f"{fortran}); expected native float or text arrays")
        return dtype, tuple(int(n) for n in shape), member.tell()

    def read_into(self, name: str, out: np.ndarray) -> None:
        """Read member `name` into `out`, whose dtype and shape match its header."""
        dtype, shape = self.headers[name]
        if out.dtype != dtype or out.shape != shape or not out.flags.c_contiguous:
            raise ValueError(f"path: {self.path!r} holds {name} of shape {shape} and dtype "
                             f"{dtype}, the architecture needs {out.shape} {out.dtype}")
        try:
            with self._zip.open(name + ".npy") as member:
                self._header(member, name)
                view = memoryview(out.reshape(-1).view(np.uint8))
                done = 0
                while done < len(view):
                    got = member.readinto(view[done:done + READ_CHUNK])
                    if not got:
                        raise EOFError(f"member {name!r} ends early")
                    done += got
        except _UNREADABLE as exc:
            raise self.error(str(exc)) from None

    def read(self, name: str) -> np.ndarray:
        """Member `name` as a new array (for small ones: the description, statistics)."""
        dtype, shape = self.headers[name]
        out = np.empty(shape, dtype=dtype)
        self.read_into(name, out)
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

