"""What Scrapy alone costs: the floor under any Scrapy-based crawler (bench/crawl.py).

Fetches a fixed list of URLs with Scrapy's own download handler and default
middlewares (redirects and retries off, so each URL is one request), through
the same nginx proxy wget uses, at the same per-host concurrency as the
profile. It parses nothing, follows nothing and writes no WARC: one JSON line
per response (URL, status, content type) so the benchmark can count pages.

No crawler built on Scrapy can fetch the same URLs faster on the same machine
than this does, so its pages/s against wget's says whether a target is within
Scrapy's reach at all.

    python bench/scrapy_floor.py URLS.txt OUT.jsonl --proxy HOST:PORT --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from typing import IO, Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("urls", help="a file with one URL per line")
    ap.add_argument("out", help="JSON lines written here, one per response")
    ap.add_argument("--proxy", required=True, help="HOST:PORT of the HTTP proxy (nginx)")
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args(argv)
    if args.concurrency < 1:
        ap.error("--concurrency must be at least 1")
    try:
        with open(args.urls, encoding="utf-8") as fh:
            urls = [line.strip() for line in fh if line.strip()]
        out: IO[str] = open(args.out, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        ap.error(f"{exc.filename}: {exc.strerror}")
    proxy = f"http://{args.proxy}"

    class Floor(scrapy.Spider):
        name = "floor"

        async def start(self) -> AsyncIterator[Any]:
            for url in urls:
                yield scrapy.Request(url, meta={"proxy": proxy}, dont_filter=True)

        def parse(self, response: Response) -> None:
            ctype = (response.headers.get("Content-Type") or b"").decode("latin-1")
            out.write(json.dumps([response.url, response.status, ctype]) + "\n")

    process = CrawlerProcess(
        {
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "DOWNLOAD_DELAY": 0,
            "ROBOTSTXT_OBEY": False,
            "REDIRECT_ENABLED": False,
            "RETRY_ENABLED": False,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "HTTPERROR_ALLOW_ALL": True,
            "LOG_LEVEL": "ERROR",
        },
        install_root_handler=True,
    )
    process.crawl(Floor)
    process.start()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
