"""Recording files: the server's local recordings folder and S3-compatible targets.

S3 requests are signed here (AWS Signature V4, query-string form) so Parley can hand out
expiring download links and delete expired objects without an SDK.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlparse

from django.conf import settings

logger = logging.getLogger(__name__)


def local_path(relative: str) -> Path | None:
    """The file (or folder) `relative` inside RECORDINGS_DIR; None if it would escape it."""
    root = Path(settings.RECORDINGS_DIR).resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        return None
    return path


def delete_local(relative: str) -> None:
    path = local_path(relative)
    if path is None or path == Path(settings.RECORDINGS_DIR).resolve():
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink(missing_ok=True)


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def presign(
    *,
    method: str,
    endpoint: str,
    region: str,
    bucket: str,
    key: str,
    access_key: str,
    secret: str,
    expires: int,
    now: dt.datetime | None = None,
) -> str:
    """A SigV4 pre-signed URL for `method` on one object (path style with an endpoint,
    virtual-host style on AWS)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    region = region or "us-east-1"
    if endpoint:
        parsed = urlparse(endpoint)
        scheme, host = parsed.scheme or "https", parsed.netloc
        path = f"/{bucket}/{quote(key, safe='/-_.~')}"
    else:
        scheme, host = "https", _aws_host(bucket, region)
        path = "/" + quote(key, safe="/-_.~")
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    canonical = "\n".join([method, path, query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signing_key = _sign(
        _sign(_sign(_sign(("AWS4" + secret).encode(), day), region), "s3"), "aws4_request"
    )
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{scheme}://{host}{path}?{query}&X-Amz-Signature={signature}"


def _aws_host(bucket: str, region: str) -> str:
    if region == "us-east-1":
        return f"{bucket}.s3.amazonaws.com"
    return f"{bucket}.s3.{region}.amazonaws.com"


def public_url(*, endpoint: str, region: str, bucket: str, key: str) -> str:
    """The unsigned URL of an object (HLS playlists are read by players without a key)."""
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{quote(key, safe='/-_.~')}"
    return f"https://{_aws_host(bucket, region or 'us-east-1')}/{quote(key, safe='/-_.~')}"


def delete_object(**target: str) -> bool:
    """DELETE one object through a pre-signed URL. False when the store could not be reached
    (the caller keeps the row and tries again on the next run)."""
    url = presign(method="DELETE", expires=300, **target)  # type: ignore[arg-type]
    request = urllib.request.Request(url, method="DELETE")
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    except (urllib.error.URLError, OSError) as exc:
        logger.warning("Could not delete %s: %r", target.get("key"), exc)
        return False
