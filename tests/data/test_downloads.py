"""Photos by URL (recsys.data.downloads): the SSRF guard, limits, retries, the cache, and the
attacks of docs/reliability.md ("Photos by URL"), against a local server (no internet)."""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from recsys.data import downloads
from recsys.data.downloads import (
    DownloadRefused,
    DownloadSettings,
    PhotoDownloader,
    address_refused,
    download_photos,
)

from .web import PhotoServer, jpeg

FAST = DownloadSettings(workers=4, connect_seconds=2, read_seconds=2, total_seconds=5,
                        retries=0, backoff_seconds=0.01, allow_private=True)


@pytest.fixture
def server():
    with PhotoServer({f"p{i}.jpg": jpeg((i * 20, 80, 160)) for i in range(10)}) as srv:
        yield srv


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5",
                                     "169.254.169.254", "100.100.100.200", "0.0.0.0",
                                     "224.0.0.1", "::1", "fd00:ec2::254", "fe80::1",
                                     "::ffff:127.0.0.1", "::ffff:169.254.169.254"])
def test_non_public_addresses_are_refused(address):
    assert address_refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2a00:1450:4001:80b::200e"])
def test_public_addresses_pass(address):
    assert address_refused(ipaddress.ip_address(address)) is None


def test_loopback_refused_by_default_and_allowed_by_the_variable(server, tmp_path, monkeypatch):
    monkeypatch.delenv("RECSYS_ALLOW_PRIVATE_URLS", raising=False)
    settings = DownloadSettings(retries=0, workers=2)
    result = download_photos([f"{server.base}/img/p1.jpg"], tmp_path / "a", settings)
    assert not result.paths and "loopback" in result.failures[f"{server.base}/img/p1.jpg"]
    assert server.hits["/img/p1.jpg"] == 0          # refused before connecting
    monkeypatch.setenv("RECSYS_ALLOW_PRIVATE_URLS", "1")
    result = download_photos([f"{server.base}/img/p1.jpg"], tmp_path / "b", settings)
    assert len(result.paths) == 1 and result.downloaded == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg",
                                 "gopher://127.0.0.1:70/x", "http:///nohost.jpg"])
def test_only_http_urls(tmp_path, url):
    with PhotoDownloader(tmp_path, FAST) as dl, pytest.raises(DownloadRefused, match="refused"):
        dl.fetch(url)


@pytest.fixture
def public_shop(server, monkeypatch):
    """`shop.example` stands for a public shop (resolving to the local server); every other
    host is checked for real, without the private-URL permission."""
    real = downloads.resolve

    def resolve(host, port, allow_private):
        if host == "shop.example":
            return "127.0.0.1"
        return real(host, port, False)

    monkeypatch.setattr(downloads, "resolve", resolve)
    return f"http://shop.example:{server.httpd.server_port}"


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/img/p1.jpg",
                                    "http://169.254.169.254/latest/meta-data/",
                                    "http://[::1]:{port}/img/p1.jpg",
                                    "http://localhost:{port}/img/p1.jpg"])
def test_redirect_to_internal_address_is_refused(server, public_shop, tmp_path, target):
    settings = DownloadSettings(retries=0, allow_private=False)
    with PhotoDownloader(tmp_path, settings) as dl:
        # the shop itself is fine (reached by its checked address, Host header kept) ...
        assert dl.fetch(f"{public_shop}/img/p2.jpg")[1] is True
        # ... but a redirect from it into the private network is not followed
        to = target.format(port=server.httpd.server_port)
        with pytest.raises(DownloadRefused, match="refused: the host resolves to"):
            dl.fetch(f"{public_shop}/redirect?to={to}")
    assert server.hits["/img/p1.jpg"] == 0


def test_dns_name_resolving_to_a_private_address_is_refused(tmp_path, monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(downloads.socket, "getaddrinfo", fake_getaddrinfo)
    with PhotoDownloader(tmp_path, DownloadSettings(retries=0, allow_private=False)) as dl:
        with pytest.raises(DownloadRefused, match="private"):
            dl.fetch("http://images.shop.example/a.jpg")


def test_huge_content_length_is_refused_unread(server, tmp_path):
    with PhotoDownloader(tmp_path, FAST) as dl:
        with pytest.raises(DownloadRefused, match="10,240 MB announced"):
            dl.fetch(f"{server.base}/huge")
    assert not list(tmp_path.iterdir())


def test_slow_server_is_cut_off(server, tmp_path):
    settings = DownloadSettings(workers=1, read_seconds=1, total_seconds=1, retries=0,
                                allow_private=True)
    started = time.monotonic()
    with PhotoDownloader(tmp_path, settings) as dl:
        with pytest.raises(DownloadRefused, match="too slow"):
            dl.fetch(f"{server.base}/slow")
    assert time.monotonic() - started < 5


def test_html_is_not_a_photo(server, tmp_path):
    server.photos["page.jpg"] = b"<html><body>not a photo</body></html>"
    with PhotoDownloader(tmp_path, FAST) as dl:
        with pytest.raises(DownloadRefused, match="text/html"):
            dl.fetch(f"{server.base}/html")
        with pytest.raises(DownloadRefused, match="not a usable photo"):
            dl.fetch(f"{server.base}/img/page.jpg")      # served as image/jpeg: decoded
    assert not list(tmp_path.glob("*.jpg"))


def test_half_the_links_broken_every_failure_reported(server, tmp_path):
    good = [f"{server.base}/img/p{i}.jpg" for i in range(10)]
    bad = [f"{server.base}/img/missing{i}.jpg" for i in range(10)]
    result = download_photos(good + bad, tmp_path, FAST)
    assert sorted(result.paths) == sorted(good)
    assert sorted(result.failures) == sorted(bad)
    assert all(why == "HTTP 404" for why in result.failures.values())


def test_retry_with_backoff_then_success(server, tmp_path):
    settings = DownloadSettings(retries=2, backoff_seconds=0.01, allow_private=True)
    result = download_photos([f"{server.base}/flaky/p3.jpg"], tmp_path, settings)
    assert result.downloaded == 1 and server.hits["/flaky/p3.jpg"] == 2


def test_cache_means_a_second_run_downloads_nothing(server, tmp_path):
    urls = [f"{server.base}/img/p{i}.jpg" for i in range(10)] * 2     # repeats fetched once
    first = download_photos(urls, tmp_path, FAST)
    assert first.downloaded == 10 and sum(server.hits.values()) == 10
    second = download_photos(urls, tmp_path, FAST)
    assert second.downloaded == 0 and second.cached == 10 and sum(server.hits.values()) == 10
    assert first.paths == second.paths
    assert not list(tmp_path.glob(".part-*"))         # atomic writes leave no pieces
