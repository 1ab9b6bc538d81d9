"""Offline image sets (``--images-dir DIR``): ``s3://bucket/key`` is read from ``DIR/bucket/key``.

``DirectoryObjects`` answers the one S3 call the worker's ``ImageFetcher`` makes
(``get_object``) from files, so an offline set goes through the same fetcher as S3
images: bucket allowlist, strict URI parsing, the byte limit on the read, the sha256
check, then the same decoding and tiling. A missing file is S3's ``NoSuchKey``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError


class DirectoryObjects:
    """An ``ObjectGetter`` over a directory tree laid out as ``bucket/key``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def get_object(self, *, Bucket: str, Key: str) -> Any:  # boto3 spells them so
        path = (self.root / Bucket / Key).resolve()
        # Keys are already parsed strictly (no "." or ".." segments); a symlink could
        # still lead out of the tree.
        if not path.is_relative_to(self.root):
            raise _client_error("AccessDenied", 403)
        try:
            body = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise _client_error("NoSuchKey", 404) from None
        except PermissionError:
            raise _client_error("AccessDenied", 403) from None
        return {"Body": body, "ContentLength": path.stat().st_size}


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {  # what botocore parses from an S3 error reply, as far as we read it
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")
