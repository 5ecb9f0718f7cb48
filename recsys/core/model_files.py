"""Reading the app's model files safely: the one boundary for recommender files (`.npz`), the
search index's slot table (`.npz`) and manifest (JSON), encoder checkpoints (safetensors with a
JSON config; old `.pt` files only through torch's weights-only unpickler) and the small caches
(catalog map, simulator tastes).

The rules, for every file read here:
* no code runs: nothing is unpickled (old `.pt` checkpoints go through torch's weights-only
  unpickler only; arrays of Python objects are refused before they are read);
* memory is bounded by the file: an archive member may not claim more than its bytes hold
  (a stored `.npy` member is exactly header + data), compressed members at most
  `MAX_EXPANSION` times their size, the whole archive at most `max_bytes`;
* a damaged file (truncated, flipped bytes, wrong shapes, bad JSON, NaN weights) is a
  `ModelFileError` whose `reason` says what is wrong in our words: never the file's contents,
  never a traceback of another type.

Callers turn the reason into their own error (`models.errors.DamagedModelFile`, the encoder's
`DamagedCheckpoint`, `vector_index.VectorIndexError`) and decide what happens next (skip the
run, rebuild the index, ask to re-align the encoder).
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from recsys.core.errors import RecsysError

MAX_JSON_BYTES = 16 << 20
"""A model file's JSON header or an index manifest: far below this."""
MAX_MEMBERS = 100_000
MAX_EXPANSION = 16
"""A compressed archive member may expand to at most this many times its compressed size
(the app writes stored, uncompressed members: 1x)."""
CHUNK = 1 << 24
"""Elements checked at a time by `all_finite` (a bounded temporary, even for a 6 GB matrix)."""

# What reading a damaged archive, header or array can raise (zipfile, numpy, json, struct...).
READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
               KeyError, IndexError, TypeError, AttributeError, struct.error, zlib.error,
               NotImplementedError, RuntimeError, OverflowError, MemoryError, RecursionError,
               SyntaxError, UnicodeError)


class ModelFileError(RecsysError):
    """A model, checkpoint or index file that cannot be read safely; `reason` says why in a few
    words (never quoting the file)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def shown_name(text: object) -> str:
    """A name read from a file, fit to appear in a message: short plain words quoted, anything
    else "an array"."""
    import re

    text = str(text)
    return repr(text) if re.fullmatch(r"[A-Za-z0-9_.:@-]{1,40}", text) else "(unnamed)"


# -- JSON ----------------------------------------------------------------------------------------
def read_json(data: bytes | str, what: str = "the JSON header") -> Any:
    """A JSON document of at most `MAX_JSON_BYTES` (nesting that blows the stack included)."""
    if len(data) > MAX_JSON_BYTES:
        raise ModelFileError(f"{what} is larger than {MAX_JSON_BYTES >> 20} MB")
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text)
    except (ValueError, RecursionError, UnicodeError):
        raise ModelFileError(f"{what} is not valid JSON") from None


def read_json_file(path: str | Path, what: str = "the JSON file") -> Any:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ModelFileError(f"{what} is larger than {MAX_JSON_BYTES >> 20} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{what} cannot be read ({exc.strerror or type(exc).__name__})") \
            from None
    return read_json(data, what)


# -- .npz archives -------------------------------------------------------------------------------
def read_npz(path: str | Path, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` archive written by `np.savez`, checked before anything is read:
    a zip archive of `.npy` members, no object arrays, each member's header consistent with its
    size, the archive's expanded size at most `max_bytes` (default: 8x the file + 64 MB).
    Raises `ModelFileError`."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelFileError(f"it cannot be read ({exc.strerror or type(exc).__name__})") \
            from None
    budget = max_bytes if max_bytes is not None else 8 * size + (64 << 20)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_members(infos, budget)
            arrays = {}
            for info in infos:
                with archive.open(info) as member:
                    _check_npy_header(member, info)
                with archive.open(info) as member:
                    arrays[info.filename[:-4]] = np.lib.format.read_array(member,
                                                                          allow_pickle=False)
            return arrays
    except ModelFileError:
        raise
    except zipfile.BadZipFile as exc:
        crc = "crc" in str(exc).lower()
        raise ModelFileError("its bytes do not match their checksum (changed or damaged)" if crc
                             else "it is not a complete .npz archive (truncated or not an "
                                  "archive)") from None
    except MemoryError:
        raise ModelFileError("an array claims more memory than this machine has") from None
    except READ_ERRORS as exc:
        raise ModelFileError(f"an array cannot be read ({type(exc).__name__})") from None


def _check_members(infos: list[zipfile.ZipInfo], budget: int) -> None:
    if not infos:
        raise ModelFileError("the archive holds no arrays")
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"the archive holds more than {MAX_MEMBERS:,} members")
    total = 0
    for info in infos:
        if not info.filename.endswith(".npy") or info.is_dir():
            raise ModelFileError("the archive holds a member that is not an array")
        if info.flag_bits & 0x1:
            raise ModelFileError("the archive is encrypted")
        if info.compress_type != zipfile.ZIP_STORED and \
                info.file_size > MAX_EXPANSION * max(info.compress_size, 1) + 4096:
            raise ModelFileError("a compressed member expands far more than arrays do")
        total += info.file_size
    if total > budget:
        raise ModelFileError(f"its arrays claim {total:,} bytes, more than the "
                             f"{budget:,} allowed for this file")


def _check_npy_header(member, info: zipfile.ZipInfo) -> None:
    """The `.npy` header of a member: a plain (non-object) dtype and exactly as many data bytes
    as the shape says."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ModelFileError("an array has an unknown header version")
    if dtype.hasobject:
        raise ModelFileError("an array holds Python objects (refused: loading them could run "
                             "code)")
    count = 1
    for n in shape:
        if not isinstance(n, int) or n < 0:
            raise ModelFileError("an array has an impossible shape")
        count *= n
    header = member.tell()
    if header + count * dtype.itemsize != info.file_size:
        raise ModelFileError("an array's data does not match its shape (truncated or padded)")


# -- checks of what was read --------------------------------------------------------------------
def all_finite(values: np.ndarray) -> bool:
    """No NaN and no infinity in a numeric array (True for non-float ones); checked in chunks,
    so a huge weight matrix needs no full-size temporary."""
    values = np.asarray(values)
    if values.dtype.kind not in "fc":
        return True
    flat = values.reshape(-1)
    for start in range(0, len(flat), CHUNK):
        if not np.isfinite(flat[start:start + CHUNK]).all():
            return False
    return True


def plain_ids(values: np.ndarray, what: str) -> np.ndarray:
    """A 1-D array of ids stored as text, unique."""
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "US":
        raise ModelFileError(f"the {what} are not a list of ids")
    if len(np.unique(values)) != len(values):
        raise ModelFileError(f"the {what} repeat")
    return values


def csr_parts(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
              shape: np.ndarray, what: str):
    """A scipy CSR matrix from its saved parts, every pointer checked (an index pointer out
    of range would read memory it does not own, or fail deep inside a product)."""
    import scipy.sparse as sp

    shape = np.asarray(shape)
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        raise ModelFileError(f"the matrix {what} has no valid shape")
    rows, cols = int(shape[0]), int(shape[1])
    for name, part in (("data", data), ("indices", indices), ("indptr", indptr)):
        if np.asarray(part).ndim != 1:
            raise ModelFileError(f"the matrix {what} has a malformed {name} array")
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu" or \
            data.dtype.kind not in "biuf":
        raise ModelFileError(f"the matrix {what} has arrays of the wrong type")
    if len(indptr) != rows + 1 or len(data) != len(indices) or \
            (len(indptr) and (indptr[0] != 0 or indptr[-1] != len(indices))) or \
            (len(indptr) > 1 and (np.diff(indptr.astype(np.int64)) < 0).any()):
        raise ModelFileError(f"the matrix {what} has a bad index pointer")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= cols):
        raise ModelFileError(f"the matrix {what} points outside its columns")
    try:
        return sp.csr_matrix((data, indices, indptr), shape=(rows, cols))
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise ModelFileError(f"the matrix {what} cannot be rebuilt ({type(exc).__name__})") \
            from None


# -- safetensors (encoder checkpoints) ------------------------------------------------------------
SAFETENSORS_MAX_HEADER = 100 << 20


def sniff_weights(path: str | Path) -> str:
    """What a weights file is by its first bytes: "safetensors" (8-byte header length, then a
    JSON object), "torch" (a zip archive: torch.save's format, or a legacy pickle), or
    "unknown"."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ModelFileError(f"it cannot be read ({exc.strerror or type(exc).__name__})") \
            from None
    if len(head) >= 9:
        (length,) = struct.unpack("<Q", head[:8])
        if 2 <= length <= SAFETENSORS_MAX_HEADER and head[8:9] == b"{":
            return "safetensors"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "torch"
    return "unknown"


def read_safetensors(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors, metadata) of a safetensors file. The format is data only: a JSON header naming
    each tensor's dtype, shape and byte range, checked against the file's size by the library
    before anything is mapped."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except SafetensorError:
        raise ModelFileError("it is not a complete safetensors file (truncated or damaged)") \
            from None
    except READ_ERRORS as exc:
        raise ModelFileError(f"its tensors cannot be read ({type(exc).__name__})") from None
    return tensors, metadata


def write_safetensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str]
                      ) -> None:
    """Write tensors (each its own contiguous copy: safetensors refuses shared storage) and
    string metadata."""
    from safetensors.torch import save_file

    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()},
              str(path), metadata=metadata)


def tensors_finite(tensors: Iterable[Any]) -> bool:
    """No NaN or infinity in any floating-point tensor."""
    import torch

    for t in tensors:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return False
    return True
