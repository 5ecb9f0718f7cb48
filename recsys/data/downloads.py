"""Product photos by URL, downloaded safely into an on-disk cache.

`download_photos(urls, cache_dir)` fetches each distinct URL once (threads, `httpx`), keeps the
bytes that decode as a photo in `cache_dir/<sha256 of the URL>.<format>` (written atomically),
and returns per URL either the cached file or the reason it failed, so an importer reports every
failing row. A URL already in the cache is not downloaded again (a re-import downloads nothing).

What a feed's URL may not do (docs/reliability.md, "Photos by URL"):
- name anything but http(s), or a host that resolves to a loopback, private, link-local (the
  cloud metadata service 169.254.169.254 is one), shared, multicast, reserved or unspecified
  address: checked after DNS resolution, on every redirect, and the connection goes to the
  address that was checked (the Host header and TLS SNI carry the name), so DNS rebinding cannot
  swap it. `RECSYS_ALLOW_PRIVATE_URLS=1` lifts this for a shop's own network (and the tests);
- make us read more than `MAX_PHOTO_BYTES` (a Content-Length above it is refused unread, a body
  is cut off there), or take longer than `connect`/`read` timeouts or `total_seconds` per photo
  (a server trickling bytes is cut off);
- serve anything but a photo: the Content-Type must be an image (or a generic binary type) and
  the bytes must decode under the same budget as an upload (`recsys.data.images.load_image` in
  the decoding sandbox).
Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import urljoin, urlsplit

import httpx
import numpy as np

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report
from recsys.data.images import MAX_BYTES, ImageError, load_image

MAX_PHOTO_BYTES = 20 * 2**20            # a product photo is well under this
MAX_REDIRECTS = 5
ALLOW_PRIVATE_VARIABLE = "RECSYS_ALLOW_PRIVATE_URLS"
IMAGE_TYPES_ALSO = ("application/octet-stream", "binary/octet-stream")
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
              "TIFF": ".tif", "MPO": ".jpg"}
CACHED_EXTENSIONS = tuple(dict.fromkeys(EXTENSIONS.values()))
USER_AGENT = "recsys-catalog-import/1.0"


class DownloadRefused(RecsysError):
    """A URL that may not be fetched (scheme, address) or whose answer is not a usable photo."""


class _Retry(Exception):
    """A failure worth another attempt (connection, timeout, 429, 5xx)."""


@dataclass(frozen=True)
class DownloadSettings:
    workers: int = 16
    connect_seconds: float = 5.0
    read_seconds: float = 10.0
    total_seconds: float = 30.0          # one attempt at one photo, redirects included
    max_bytes: int = MAX_PHOTO_BYTES
    retries: int = 2                     # attempts after the first
    backoff_seconds: float = 0.5         # doubled each retry
    allow_private: bool | None = None    # None: `RECSYS_ALLOW_PRIVATE_URLS`


@dataclass
class DownloadResult:
    """Per URL: the cached file (`paths`) or why it failed (`failures`); `downloaded` counts the
    photos fetched now, `cached` those already on disk."""

    paths: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    downloaded: int = 0
    cached: int = 0
    bytes: int = 0
    seconds: float = 0.0


def private_urls_allowed() -> bool:
    return os.environ.get(ALLOW_PRIVATE_VARIABLE, "").strip().lower() in ("1", "true", "yes",
                                                                          "on")


def is_url(value: object) -> bool:
    text = str(value).strip().lower() if value is not None else ""
    return text.startswith(("http://", "https://"))


def url_mask(values: Iterable[object]) -> "np.ndarray":
    """Per value: whether it is an http(s) URL (missing values are not)."""
    return np.fromiter((isinstance(v, str) and is_url(v) for v in values), dtype=bool)


def cache_key(url: str) -> str:
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()


def cached_path(cache_dir: str | Path, url: str) -> Path | None:
    """The cached photo of `url`, or None."""
    key = cache_key(url)
    for ext in CACHED_EXTENSIONS:
        path = Path(cache_dir) / f"{key}{ext}"
        if path.is_file():
            return path
    return None


def address_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a download may not connect to `ip` (None: a public address)."""
    mapped = getattr(ip, "ipv4_mapped", None) or getattr(ip, "sixtofour", None)
    if mapped is not None:
        ip = mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (such as the cloud metadata service)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_private or not ip.is_global:
        return "a private or reserved address"
    return None


def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to for `host`: every address it resolves to must be public
    (unless `allow_private`); a literal address is checked as it is."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise _Retry("the host name does not resolve") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise _Retry("the host name does not resolve")
    if not allow_private:
        for address in addresses:
            why = address_refused(ipaddress.ip_address(address.split("%")[0]))
            if why:
                raise DownloadRefused(f"refused: the host resolves to {why}; set "
                                      f"{ALLOW_PRIVATE_VARIABLE}=1 to allow it")
    return addresses[0]


class PhotoDownloader:
    """Fetches photos by URL under `DownloadSettings` into `cache_dir` (thread-safe)."""

    def __init__(self, cache_dir: str | Path, settings: DownloadSettings | None = None):
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings or DownloadSettings()
        allow = self.settings.allow_private
        self.allow_private = private_urls_allowed() if allow is None else allow
        s = self.settings
        self._client = httpx.Client(
            timeout=httpx.Timeout(s.read_seconds, connect=s.connect_seconds),
            follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=max(4, s.workers),
                                max_keepalive_connections=max(4, s.workers)),
            headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "PhotoDownloader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one photo ----------------------------------------------------------------------------
    def fetch(self, url: str) -> tuple[Path, bool]:
        """The cached file of `url` and whether it was downloaded now; `DownloadRefused` with
        the reason when it cannot be had."""
        url = url.strip()
        hit = cached_path(self.cache_dir, url)
        if hit is not None:
            return hit, False
        s = self.settings
        delay, last = s.backoff_seconds, "failed"
        for attempt in range(s.retries + 1):
            try:
                data = self._get(url)
                break
            except _Retry as exc:
                last = str(exc)
                if attempt == s.retries:
                    raise DownloadRefused(f"{last} (after {s.retries + 1} attempts)") from None
                time.sleep(delay)
                delay *= 2
        else:                               # pragma: no cover - the loop always breaks/raises
            raise DownloadRefused(last)
        try:
            image = load_image(data, target_size=64, trusted=False)
        except ImageError as exc:
            raise DownloadRefused(f"not a usable photo: {exc}") from None
        ext = EXTENSIONS.get(_format(data) or "", ".jpg")
        del image
        return self._store(url, data, ext), True

    def _get(self, url: str) -> bytes:
        s = self.settings
        deadline = time.monotonic() + s.total_seconds
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme not in ("http", "https"):
                raise DownloadRefused("refused: only http and https URLs are fetched")
            host = parts.hostname
            if not host:
                raise DownloadRefused("refused: the URL names no host")
            try:
                port = parts.port or (443 if scheme == "https" else 80)
            except ValueError:
                raise DownloadRefused("refused: the URL's port is not a number") from None
            address = resolve(host, port, self.allow_private)
            literal = f"[{address}]" if ":" in address else address
            target = parts._replace(netloc=f"{literal}:{port}").geturl()
            host_header = host if parts.port is None else f"{host}:{port}"
            if ":" in host and not host.startswith("["):
                host_header = f"[{host}]" + ("" if parts.port is None else f":{port}")
            request = self._client.build_request(
                "GET", target, headers={"Host": host_header},
                extensions={"sni_hostname": host} if scheme == "https" else {})
            try:
                response = self._client.send(request, stream=True)
            except httpx.TimeoutException:
                raise _Retry("timed out") from None
            except httpx.HTTPError as exc:
                raise _Retry(f"connection failed ({type(exc).__name__})") from None
            try:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise DownloadRefused(f"HTTP {response.status_code} without a Location")
                    url = urljoin(url, location)
                    continue
                return self._body(response, deadline)
            finally:
                response.close()
        raise DownloadRefused(f"refused: more than {MAX_REDIRECTS} redirects")

    def _body(self, response: httpx.Response, deadline: float) -> bytes:
        s = self.settings
        code = response.status_code
        if code == 429 or code >= 500:
            raise _Retry(f"HTTP {code}")
        if code != 200:
            raise DownloadRefused(f"HTTP {code}")
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind and not kind.startswith("image/") and kind not in IMAGE_TYPES_ALSO:
            raise DownloadRefused(f"not a photo: the server says it is {kind[:40]}")
        limit = min(s.max_bytes, MAX_BYTES)
        length = response.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > limit:
                raise DownloadRefused(f"refused: {declared / 2**20:,.0f} MB announced; the "
                                      f"limit is {limit / 2**20:,.0f} MB")
        chunks, size = [], 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise DownloadRefused(f"refused: larger than {limit / 2**20:,.0f} MB")
                if time.monotonic() > deadline:
                    raise _Retry(f"too slow: not done within {s.total_seconds:g} s")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise _Retry("timed out while reading") from None
        except httpx.HTTPError as exc:
            raise _Retry(f"connection broke ({type(exc).__name__})") from None
        if not size:
            raise DownloadRefused("the server sent an empty body")
        return b"".join(chunks)

    def _store(self, url: str, data: bytes, ext: str) -> Path:
        final = self.cache_dir / f"{cache_key(url)}{ext}"
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final

    # -- many photos --------------------------------------------------------------------------
    def fetch_all(self, urls: Iterable[str], progress: ProgressCallback | None = None
                  ) -> DownloadResult:
        """Every distinct URL fetched once, in `settings.workers` threads."""
        distinct = list(dict.fromkeys(u.strip() for u in urls if is_url(u)))
        out = DownloadResult()
        started = time.perf_counter()
        total = len(distinct)
        if not total:
            return out

        def one(url: str) -> tuple[str, Path | None, bool, str | None]:
            try:
                path, fresh = self.fetch(url)
                return url, path, fresh, None
            except DownloadRefused as exc:
                return url, None, False, str(exc)
            except Exception as exc:       # one odd answer never stops the import
                return url, None, False, f"failed ({type(exc).__name__})"

        with ThreadPoolExecutor(max_workers=max(1, self.settings.workers)) as pool:
            for done, (url, path, fresh, why) in enumerate(pool.map(one, distinct), 1):
                if path is None:
                    out.failures[url] = why or "failed"
                else:
                    out.paths[url] = str(path)
                    if fresh:
                        out.downloaded += 1
                        out.bytes += path.stat().st_size
                    else:
                        out.cached += 1
                if done % 50 == 0 or done == total:
                    report(progress, done, total,
                           f"photos {done:,}/{total:,} ({out.downloaded:,} downloaded, "
                           f"{out.cached:,} cached, {len(out.failures):,} failed)",
                           stage="download")
        out.seconds = time.perf_counter() - started
        return out


def _format(data: bytes) -> str | None:
    """The photo format from its first bytes (no decoding)."""
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"GIF8",):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def download_photos(urls: Iterable[str], cache_dir: str | Path,
                    settings: DownloadSettings | None = None,
                    progress: ProgressCallback | None = None) -> DownloadResult:
    """`PhotoDownloader(cache_dir, settings).fetch_all(urls)`, closed afterwards."""
    with PhotoDownloader(cache_dir, settings) as downloader:
        return downloader.fetch_all(urls, progress)
