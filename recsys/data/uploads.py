"""Files uploaded through the app (the Data page): where they are kept, unpacking a zip of
photos safely, and importing an uploaded catalog or interaction file.

Everything uploaded lives under `<data dir>/uploads/<dataset>/`, one fresh folder per upload
(`new_upload_dir`), deleted when the import fails or is refused (`discard_upload` deletes
only folders inside the uploads folder). A zip is unpacked with caps on its files and on the
bytes it really unpacks to (`max_unpacked_bytes`), into a staging folder first, so a refused
archive leaves nothing behind (`extract_images`).
"""

from __future__ import annotations

import errno
import io
import lzma
import os
import re
import shutil
import struct
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import IO

from recsys.core import config
from recsys.core.files import atomic_path
from recsys.data.catalog_import import import_catalog
from recsys.data.interactions_import import import_interactions
from recsys.data.report import (DataImportError, ImportReport, megabytes_setting, one_line,
                                 safe_reason)
from recsys.store import Store

DEFAULT_MAX_UNPACKED_MB = 500
MAX_ARCHIVE_FILES = 100_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_DATASET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def max_unpacked_bytes(limit_mb: float | None = None) -> int:
    """The cap on what one zip may unpack to: `limit_mb`, else `$RECSYS_MAX_UNPACKED_MB`, else
    500 MB."""
    limit_mb = megabytes_setting(limit_mb, "RECSYS_MAX_UNPACKED_MB", DEFAULT_MAX_UNPACKED_MB,
                                 "unpacked-size limit")
    return int(limit_mb * 2**20)


def uploads_root(store: Store) -> Path:
    """`<data dir>/uploads`: everything uploaded through the app lives under it."""
    return config.data_dir(store.path) / "uploads"


def upload_dir(store: Store, dataset: str) -> Path:
    """Where the app keeps a dataset's uploaded files: `<data dir>/uploads/<dataset>/`."""
    if not isinstance(dataset, str) or not _DATASET_NAME.fullmatch(dataset):
        raise DataImportError("A dataset name uses letters, digits, '-', '_' or '.' (at most "
                              f"64 characters, not starting with '.'); got {dataset!r}.")
    root = uploads_root(store).resolve()
    path = root / dataset
    if path.resolve().parent != root:        # belt and braces: never a folder outside uploads
        raise DataImportError(f"The dataset name {dataset!r} cannot be used as a folder name.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_upload_dir(store: Store, dataset: str) -> Path:
    """A fresh folder for one upload, `<data dir>/uploads/<dataset>/<time>-<random>/`, so that
    discarding it never touches the photos of an earlier upload that items still show."""
    parent = upload_dir(store, dataset)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=parent))


def discard_upload(store: Store, folder: str | Path) -> int:
    """Delete an upload's folder (it must be inside the uploads folder); returns bytes freed."""
    root = uploads_root(store).resolve()
    folder = Path(folder)
    real = folder.resolve()
    if real == root or root not in real.parents:
        raise DataImportError(f"{folder} is not an upload folder; nothing was deleted.")
    if not real.exists():
        return 0
    freed = sum(f.stat().st_size for f in real.rglob("*") if f.is_file() and not f.is_symlink())
    shutil.rmtree(real, ignore_errors=True)
    return freed


def save_upload(data: bytes, folder: Path, filename: str) -> Path:
    """Write an uploaded file under `folder` (its base name only), atomically."""
    name = Path(str(filename).replace("\\", "/")).name
    if not name or name.startswith(".") or "\x00" in name:
        name = "upload" + "".join(c for c in Path(name.lstrip(".")).suffix if c.isalnum()
                                  or c == ".")
    target = folder / name
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def extract_images(archive: str | Path | IO[bytes], dest: Path,
                   max_unpacked_mb: float | None = None,
                   in_folders: list[str] | None = None) -> int:
    """Unpack the photos of a zip archive into `dest`; returns how many were written.

    Only image files are taken. A photo whose file name is unique in the archive is unpacked
    flat, by its base name (no paths, so no "zip slip"). Photos that share a file name
    (`a/x.png`, `b/x.png`) are all kept, each under its folders in the archive (cleaned: no
    `..`, no absolute or hidden parts), so a catalog names them `a/x.png` and `b/x.png`; their
    archive names are appended to `in_folders` when given (a catalog naming just `x.png` finds
    no photo, and the importer reports that row). The archive is refused, leaving nothing
    behind, when it is not a readable zip, has an encrypted or corrupt photo, holds more than
    MAX_ARCHIVE_FILES files or unpacks to more than `max_unpacked_mb` (default
    `max_unpacked_bytes()`: 500 MB). Sizes are counted while unpacking, not taken from the
    zip's headers, which can lie.
    """
    limit = max_unpacked_bytes(max_unpacked_mb)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataImportError(f"The images archive is not a readable zip file "
                              f"({safe_reason(exc)}).") from None
    with zf:
        try:
            entries = zf.infolist()
        except (zipfile.BadZipFile, ValueError) as exc:
            raise DataImportError(f"The images archive is damaged ({safe_reason(exc)}).") \
                from None
        members = [m for m in entries if not m.is_dir() and _archive_name(m.filename)]
        if len(entries) > MAX_ARCHIVE_FILES:
            raise DataImportError(f"The images archive holds {len(entries):,} files; at most "
                                  f"{MAX_ARCHIVE_FILES:,} are accepted.")
        if not members:
            raise DataImportError("The zip archive contains no image files (.jpg, .png, ...).")
        if sum(m.file_size for m in members) > limit:
            raise DataImportError(_too_big(limit))
        encrypted = [m for m in members if m.flag_bits & 0x1]
        if encrypted:
            raise DataImportError(f"The images archive is password-protected ({len(encrypted):,} "
                                  "encrypted photos); zip the photos again without a password.")
        targets = _archive_targets(members)
        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=dest))
        try:
            written = _unpack(zf, targets, staging, limit)
            for name in written:
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, dest / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)
    if in_folders is not None:
        in_folders.extend(m.filename for m, target in targets if "/" in target)
    return len(written)


def _archive_name(filename: str) -> str | None:
    """The base name a zip entry is unpacked to, or None when it is not a photo to take."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if not name or name.startswith(".") or "\x00" in name or \
            Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    return name


def _archive_folders(filename: str) -> list[str]:
    """The folders of a zip entry, cleaned: no empty, `.`, `..` or hidden parts, nothing
    absolute, each at most 100 characters."""
    parts = filename.replace("\\", "/").split("/")[:-1]
    return [p[:100] for p in parts if p and not p.startswith(".") and "\x00" not in p
            and ":" not in p][:16]


def _archive_targets(members: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, str]]:
    """Where each photo goes, relative to the images folder: its base name when no other
    photo of the archive has it; otherwise its cleaned folders and name (`a/x.png`), numbered
    (`a/x-2.png`) if even that is taken (the same entry twice, folders that cleaned alike)."""
    names = [_archive_name(m.filename) for m in members]
    counts: dict[str, int] = {}
    for name in names:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1     # case-insensitive disks
    used: set[str] = set()
    out = []
    for m, name in zip(members, names):
        target = name if counts[name.lower()] == 1 else \
            "/".join([*_archive_folders(m.filename), name])
        if target.lower() in used:
            stem, suffix = os.path.splitext(target)
            k = 2
            while f"{stem}-{k}{suffix}".lower() in used:
                k += 1
            target = f"{stem}-{k}{suffix}"
        used.add(target.lower())
        out.append((m, target))
    return out


def _too_big(limit: int) -> str:
    return (f"The images archive unpacks to more than {limit / 2**20:,.0f} MB, the limit (set "
            "RECSYS_MAX_UNPACKED_MB to change it, or import from a folder path instead).")


def _unpack(zf: zipfile.ZipFile, targets: list[tuple[zipfile.ZipInfo, str]], staging: Path,
            limit: int) -> list[str]:
    """Copy members into `staging` at their targets, counting real bytes; DataImportError on
    any failure."""
    total = 0
    written: dict[str, None] = {}
    for m, name in targets:
        try:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, open(staging / name, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > limit:
                        raise DataImportError(_too_big(limit))
                    out.write(chunk)
        except DataImportError:
            raise
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise DataImportError("The disk is full: the photos could not be unpacked "
                                      "(nothing was kept).") from None
            raise DataImportError(f"The photo {name} in the archive could not be unpacked "
                                  f"({exc.strerror or type(exc).__name__}); nothing was "
                                  "unpacked.") from None
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, ValueError,
                zlib.error, lzma.LZMAError, struct.error) as exc:
            raise DataImportError(f"The photo {name} in the archive is damaged or uses an "
                                  f"unsupported format ({safe_reason(exc)}); nothing was "
                                  "unpacked.") from None
        written[name] = None
    return list(written)


def import_catalog_upload(store: Store, dataset: str, table: bytes, table_name: str,
                          images_zip: bytes | IO[bytes] | None = None,
                          max_unpacked_mb: float | None = None, **options) -> ImportReport:
    """Import an uploaded catalog table (and zip of photos) into a fresh upload folder.

    The folder is deleted when the import fails or is refused; after a successful import only
    the photos that imported items use are kept (the table copy and unused files are removed).
    `options` are those of `import_catalog` (fmt, on_error, columns, progress...).
    """
    folder = new_upload_dir(store, dataset)
    try:
        table_path = save_upload(table, folder, table_name)
        images = None
        if images_zip is not None:
            data = io.BytesIO(images_zip) if isinstance(images_zip, (bytes, bytearray)) \
                else images_zip
            images = folder / "images"
            in_folders: list[str] = []
            unpacked = extract_images(data, images, max_unpacked_mb=max_unpacked_mb,
                                      in_folders=in_folders)
        rep = import_catalog(store, table_path, images, dataset=dataset, **options)
    except BaseException:
        discard_upload(store, folder)
        raise
    if rep.refused:
        discard_upload(store, folder)
        return rep
    if images_zip is not None:
        rep.details["photos unpacked"] = unpacked
        if in_folders:
            rep.details["photos sharing a file name (kept under their zip folders)"] = \
                len(in_folders)
            rep.notes.append(
                f"{len(in_folders):,} photos in the zip share a file name with another (e.g. "
                f"{', '.join(one_line(n, 60) for n in in_folders[:3])}): each was kept under its "
                "folder, so the image column must name it with the folder, as in the zip; rows "
                "naming just the file are reported as 'image file not found'.")
    keep = {os.path.realpath(p) for p in store.items(dataset)["image_path"].dropna()}
    for file in sorted(folder.rglob("*"), reverse=True):
        if file.is_file() and os.path.realpath(file) not in keep:
            file.unlink()
        elif file.is_dir() and not any(file.iterdir()):
            file.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()
    return rep


def import_interactions_upload(store: Store, dataset: str, data: bytes, filename: str,
                               **options) -> ImportReport:
    """Import an uploaded interaction file; its copy is deleted afterwards, whatever happens.
    `options` are those of `import_interactions` (fmt, on_error, append, replace...)."""
    folder = new_upload_dir(store, dataset)
    try:
        path = save_upload(data, folder, filename)
        return import_interactions(store, path, dataset=dataset, **options)
    finally:
        discard_upload(store, folder)
