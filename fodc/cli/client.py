"""The CLI's HTTP client of the proxy: JSON in and out, bearer token, and errors turned into exit codes.

Exit codes scripts can rely on: 0 success, 1 the proxy answered with an error (4xx/5xx, message printed),
2 bad usage, 3 the proxy could not be reached, 4 a job finished but not on every node.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_PARTIAL = 0, 1, 2, 3, 4


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def read_token(token_file: str | None) -> str | None:
    """FODC_TOKEN, else the first line of --token-file / FODC_TOKEN_FILE; None when neither is set."""
    if os.environ.get("FODC_TOKEN"):
        return os.environ["FODC_TOKEN"].strip()
    path = token_file or os.environ.get("FODC_TOKEN_FILE")
    if not path:
        return None
    try:
        with open(path) as f:
            return f.readline().strip() or None
    except OSError as exc:
        raise CliError(f"cannot read the token file {path}: {exc.strerror or exc}", EXIT_USAGE) from None


def proxy_url(text: str, ca: str | None = None) -> str:
    """`--proxy` as a base URL: a bare host:port gets http:// (https:// when a CA is given to verify it)."""
    text = text.strip()
    if "://" in text:
        if urllib.parse.urlsplit(text).scheme not in ("http", "https"):
            raise CliError(f"--proxy {text!r}: only http:// and https:// URLs", EXIT_USAGE)
        return text
    if not text or "/" in text.split(":", 1)[0]:
        raise CliError(f"--proxy {text!r}: give host:port or a URL", EXIT_USAGE)
    return f"{'https' if ca else 'http'}://{text}"


class ProxyClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0,
                 ca: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.context = None
        self.extra_headers: dict[str, str] = {}  # e.g. the MCP server's X-FODC-Client, for the audit log
        if ca:
            try:
                self.context = ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as exc:
                raise CliError(f"cannot use --ca {ca}: {exc}", EXIT_USAGE) from None

    def url(self, path: str, params: dict[str, str | None] | None = None) -> str:
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v})
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")

    def _open(self, method: str, path: str, params: dict[str, str | None] | None = None, body: Any = None):  # noqa: ANN202
        headers = {"Accept": "application/json", **self.extra_headers}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url(path, params), data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout, context=self.context)
        except urllib.error.HTTPError as exc:
            try:
                answer = json.load(exc)
                detail = answer.get("message", "")
            except (ValueError, AttributeError):
                answer, detail = {}, ""
            if answer.get("error") == "unknown_value":  # a typo in a filter: a usage error, said in one line
                raise CliError(" ".join(detail.split()), EXIT_USAGE) from None
            hint = " (set FODC_TOKEN or --token-file)" if exc.code == 401 and not self.token else ""
            raise CliError(f"proxy answered {exc.code} for {method} {path}: {detail}{hint}", EXIT_API_ERROR) from None
        except TimeoutError:
            raise CliError(f"the proxy at {self.base_url} did not answer {method} {path} within "
                           f"{self.timeout:g}s (--timeout)", EXIT_UNREACHABLE) from None
        except (urllib.error.URLError, OSError) as exc:
            raise CliError(f"cannot reach the proxy at {self.base_url}: {getattr(exc, 'reason', exc)}",
                           EXIT_UNREACHABLE) from None

    def get(self, path: str, params: dict[str, str | None] | None = None) -> Any:
        with self._open("GET", path, params) as response:
            return json.load(response)

    def send(self, method: str, path: str, body: Any = None) -> Any:
        with self._open(method, path, body=body) as response:
            return json.load(response)

    def download(self, path: str, dest: str, params: dict[str, str | None] | None = None) -> int:
        """Streams a file to `dest`; returns its size."""
        with self._open("GET", path, params) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out)
            return out.tell()
