"""Product videos as a `video` modality: a few frames decoded safely, encoded, pooled.

`sample_frames(source)` decodes an mp4 / webm / mov / mkv file (a path, bytes or a file object)
with PyAV (FFmpeg's decoders, from PyPI) and returns a few frames spread over the video: about
`FRAMES_PER_SECOND` per second, at most `MAX_FRAMES`, evenly over a longer video.
`encode_video(encoder, source)` encodes them with the encoder's image tower
(`Encoder.encode_images`, the public encoder API) and returns their mean, L2-normalised: a
video vector in the same space as the product photos, so a short video also works as a visual
search query.

A file from outside cannot exhaust memory or time: it is refused above `max_video_bytes()`
(`$RECSYS_MAX_VIDEO_MB`, default 200 MB) or when a frame is above `MAX_SIDE` pixels a side:
the stream's declared size is checked first, then every decoded frame's size before it is
converted (a video may change its picture size mid-stream: 64x64 first, 16,000x16,000 later),
and FFmpeg's decoder itself refuses to allocate a picture above `MAX_SIDE`^2 pixels
(`max_pixels`) and runs on `DECODER_THREADS` threads. At most `MAX_DECODED_FRAMES` frames are
decoded and `DECODE_SECONDS` spent per video (what was sampled by then is used); frames are
shrunk to `FRAME_SIDE` pixels as soon as they are decoded; only the first `MAX_SECONDS` of a
video are sampled. Anything unreadable (not a video, no video track, a damaged stream) raises
`VideoError` with a one-line reason, never a traceback.

`sample_frames` decodes in a worker process under the video budget (`recsys.core.sandbox`: memory
and seconds per video, `RECSYS_VIDEO_BUDGET_MB` / `RECSYS_VIDEO_BUDGET_SECONDS`), for queries
and for `embed --videos` alike; only the small sampled frames come back.

Audio stays out: no audio-text (CLAP-style) model can be had offline here (see
docs/modalities.md).
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

import numpy as np

from recsys.core.errors import RecsysError

if TYPE_CHECKING:
    from PIL import Image

    from recsys.encoders import Encoder

VideoSource = Union[str, os.PathLike, bytes, IO[bytes]]

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".m4v", ".mkv")
FRAMES_PER_SECOND = 2.0
MAX_FRAMES = 16
MAX_SECONDS = 600.0          # only the first ten minutes are sampled
MAX_SIDE = 4096              # pixels, width or height
MAX_DECODED_FRAMES = 2000
DECODE_SECONDS = 20.0
FRAME_SIDE = 448
SEEK_STEP = 2.0              # sample by seeking (not decoding everything) beyond this spacing
DECODER_THREADS = 2          # FFmpeg threads per video (frame threads each hold a picture)
DEFAULT_MAX_VIDEO_MB = 200


class VideoError(RecsysError):
    """A video that cannot be used (unreadable, too large, no frames)."""


def max_video_bytes() -> int:
    """The largest video accepted: `$RECSYS_MAX_VIDEO_MB` megabytes, default 200."""
    raw = os.environ.get("RECSYS_MAX_VIDEO_MB", "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_MAX_VIDEO_MB
    except ValueError:
        raise VideoError(f"RECSYS_MAX_VIDEO_MB must be a number of megabytes, got {raw!r}.") \
            from None
    return int(max(mb, 0.001) * 2**20)


def looks_like_video(data: bytes) -> bool:
    """Whether the first bytes are those of a video container (MP4/QuickTime, Matroska/WebM,
    AVI), e.g. to tell an uploaded video from a photo."""
    head = bytes(data[:16])
    return (head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
            or head[:4] == b"\x1a\x45\xdf\xa3"
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI "))


def is_video_file(path: str | os.PathLike) -> bool:
    """A file with a video suffix or video bytes."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            return looks_like_video(fh.read(16))
    except OSError:
        return False


def _open_source(source: VideoSource) -> IO[bytes] | str:
    limit = max_video_bytes()
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > limit:
            raise VideoError(f"the video is {len(source) / 2**20:.0f} MB; at most "
                             f"{limit / 2**20:.0f} MB are accepted (RECSYS_MAX_VIDEO_MB).")
        if not len(source):
            raise VideoError("the video file is empty.")
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise VideoError(f"cannot read the video {path.name}: {exc.strerror or exc}.") \
                from None
        if size > limit:
            raise VideoError(f"{path.name} is {size / 2**20:.0f} MB; at most "
                             f"{limit / 2**20:.0f} MB are accepted (RECSYS_MAX_VIDEO_MB).")
        if not size:
            raise VideoError(f"{path.name} is empty.")
        return str(path)
    data = source.read(limit + 1)
    return _open_source(data)


def sample_frames(source: VideoSource, fps: float = FRAMES_PER_SECOND,
                  max_frames: int = MAX_FRAMES) -> list["Image.Image"]:
    """A few RGB frames spread over the video (see the module docstring for the caps),
    decoded by a worker process under the video budget."""
    from PIL import Image

    from recsys.core import sandbox

    if not sandbox.enabled():
        return decode_frames(source, fps, max_frames)
    handle = _open_source(source)            # size checks here, before anything is sent
    args = {"fps": float(fps), "max_frames": int(max_frames)}
    if isinstance(handle, str):
        args["path"] = os.path.abspath(handle)      # the worker has its own working folder
        payload, label = b"", f"The video {Path(handle).name}"
    else:
        payload, label = handle.getvalue(), "The uploaded video"
    reply = sandbox.run("video", args, payload, error=VideoError, label=label)
    frames, offset = [], 0
    view = memoryview(reply.payload)
    for size in reply.header.get("sizes") or []:
        width, height = (int(v) for v in size)
        end = offset + width * height * 3
        if not (0 < width <= FRAME_SIDE and 0 < height <= FRAME_SIDE) or end > len(view):
            break
        frames.append(Image.frombytes("RGB", (width, height), view[offset:end]))
        offset = end
    if not frames or offset != len(view):
        raise VideoError("no frame of the video could be decoded.")
    return frames


def frames_task(args: dict, payload: bytes, progress) -> tuple[dict, bytes]:
    """The worker's video task (`recsys.core.sandbox`): a path or bytes in, sampled RGB frames out."""
    import logging

    import av.logging

    # FFmpeg's reason (e.g. "Picture size 16000x16000 exceeds ... max pixel count") ends up in
    # the error's text, where `decode_frames` reads the size; not on the server's console
    av.logging.set_level(av.logging.ERROR)
    quiet = logging.getLogger("libav")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    source = args.get("path") or payload
    frames = decode_frames(source, float(args.get("fps") or FRAMES_PER_SECOND),
                           int(args.get("max_frames") or MAX_FRAMES))
    return ({"sizes": [list(f.size) for f in frames]},
            b"".join(f.tobytes() for f in frames))


def decode_frames(source: VideoSource, fps: float = FRAMES_PER_SECOND,
                  max_frames: int = MAX_FRAMES) -> list["Image.Image"]:
    """`sample_frames` in this process (the worker's task; `RECSYS_SANDBOX=0`)."""
    import av

    handle = _open_source(source)
    deadline = time.monotonic() + DECODE_SECONDS
    try:
        with av.open(handle, mode="r") as container:
            if not container.streams.video:
                raise VideoError("the file has no video track.")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if not width or not height:
                raise VideoError("the video track has no picture size.")
            _check_side(width, height)
            _bound_decoder(stream)
            duration = _duration(container, stream)
            span = min(duration, MAX_SECONDS) if duration else MAX_SECONDS
            step = max(1.0 / fps, span / max_frames) if duration else 1.0 / fps
            targets = [k * step for k in range(max_frames) if k * step < span or k == 0]
            frames = _by_seeking(container, stream, targets, deadline) \
                if step >= SEEK_STEP else []
            if not frames and time.monotonic() < deadline:
                if step >= SEEK_STEP:            # seeking failed: back to the start
                    _rewind(container, stream)
                frames = _sequential(container, stream, targets, span, deadline)
    except VideoError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - FFmpeg errors come in many types
        size = _PICTURE_SIZE.search(str(exc))
        if size:
            _check_side(int(size.group(1)), int(size.group(2)), pixels=True)
        raise VideoError(f"not a readable video ({_reason(exc)}).") from None
    if not frames:
        if time.monotonic() > deadline:
            raise VideoError(f"decoding took longer than {DECODE_SECONDS:g} s.")
        raise VideoError("no frame of the video could be decoded.")
    return frames


_PICTURE_SIZE = re.compile(r"Picture size (\d+)x(\d+)")


def _check_side(width: int, height: int, pixels: bool = False) -> None:
    """Refuse a picture size above `MAX_SIDE` a side (or, as FFmpeg reports it, above
    `MAX_SIDE`^2 pixels)."""
    if max(width, height) > MAX_SIDE or (pixels and width * height > MAX_SIDE * MAX_SIDE):
        raise VideoError(f"the video has a {width}x{height} picture; at most {MAX_SIDE} pixels "
                         "a side are accepted.")


def _bound_decoder(stream) -> None:
    """FFmpeg refuses to allocate a picture above `MAX_SIDE`^2 pixels, whatever size a later
    frame announces, and decodes on `DECODER_THREADS` threads."""
    ctx = stream.codec_context
    ctx.options = {**dict(ctx.options or {}), "max_pixels": str(MAX_SIDE * MAX_SIDE)}
    ctx.thread_count = DECODER_THREADS


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # FFmpeg's log line may quote bits of the file (tags, names): never shown
    return text.split("; last error log:")[0][:160]


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration:
        return container.duration / 1e6
    return None


def _shrink(frame) -> "Image.Image":
    _check_side(frame.width, frame.height)        # every frame, before it is converted
    image = frame.to_image()
    image.thumbnail((FRAME_SIDE, FRAME_SIDE))
    return image.convert("RGB")


def _frame_time(frame, decoded: int, stream) -> float:
    if frame.time is not None:
        return float(frame.time)
    rate = float(stream.average_rate or 25)
    return decoded / rate


def _sequential(container, stream, targets: list[float], span: float, deadline: float
                ) -> list["Image.Image"]:
    """Decode from the start, keeping the first frame at or after each target time."""
    frames: list = []
    decoded = 0
    nxt = 0
    for frame in container.decode(stream):
        decoded += 1
        t = _frame_time(frame, decoded, stream)
        if t >= targets[nxt] - 1e-6:
            frames.append(_shrink(frame))
            nxt += 1
            if nxt >= len(targets):
                break
        if t > span or decoded >= MAX_DECODED_FRAMES or time.monotonic() > deadline:
            break
    return frames


def _rewind(container, stream) -> None:
    try:
        container.seek(0, stream=stream, backward=True)
    except Exception:  # noqa: BLE001 - decoding then starts where it is
        pass


def _by_seeking(container, stream, targets: list[float], deadline: float
                ) -> list["Image.Image"]:
    """Jump to each target time (to the keyframe before it) and decode up to it: a long
    video is sampled without decoding all of it. Empty when the file cannot seek."""
    frames: list = []
    base = stream.time_base
    if base is None:
        return frames
    start = float(stream.start_time * base) if stream.start_time is not None else 0.0
    decoded = 0
    for t in targets:
        try:
            container.seek(int((start + t) / base), stream=stream, backward=True)
        except Exception:  # noqa: BLE001 - not seekable: the caller decodes from the start
            return []
        for frame in container.decode(stream):
            decoded += 1
            if _frame_time(frame, decoded, stream) - start >= t - 1e-6 or \
                    decoded >= MAX_DECODED_FRAMES:
                frames.append(_shrink(frame))
                break
            if time.monotonic() > deadline:
                return frames
        if decoded >= MAX_DECODED_FRAMES or time.monotonic() > deadline:
            break
    return frames


def encode_video(encoder: "Encoder", source: VideoSource, fps: float = FRAMES_PER_SECOND,
                 max_frames: int = MAX_FRAMES) -> np.ndarray:
    """The video's vector: the mean of its sampled frames' image vectors, L2-normalised."""
    frames = sample_frames(source, fps, max_frames)
    vectors = encoder.encode_images(frames, batch_size=len(frames))
    pooled = vectors.mean(axis=0)
    norm = float(np.linalg.norm(pooled))
    if not norm > 0:
        raise VideoError("the video's frames gave no usable vector.")
    return (pooled / norm).astype(np.float32)
