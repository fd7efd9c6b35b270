"""Where models come from: a fast offline check before any Hugging Face Hub look-up, the
local Hub cache as the fallback, and what a CLIP checkpoint's towers are configured as.

Without network, ``from_pretrained("owner/name")`` retries every request five times with backoff
(about 25 s per file) before it gives up. ``hub_offline_reason()`` answers in at most a few
seconds whether the Hub can be reached at all; callers then load from the local Hub cache with no
network (``local_snapshot``) or fail at once with their one-line message.
"""

from __future__ import annotations

import os
import threading

_TIMEOUT_S = 2.0
_memo: dict[str, str | None] = {}


def endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def offline_setting() -> str | None:
    """``NAME=VALUE`` of the variable that switches the Hub off (HF_HUB_OFFLINE or
    TRANSFORMERS_OFFLINE set to 1, ON, YES or TRUE, any case, as huggingface_hub parses them),
    else None. The environment is read now, not huggingface_hub's ``constants.HF_HUB_OFFLINE``,
    which is fixed when that module is imported and would miss a setting made later."""
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(k, "").upper() in ("1", "ON", "YES", "TRUE"):
            return f"{k}={os.environ[k]}"
    return None


def offline_mode() -> bool:
    """Whether the Hub is switched off (``offline_setting``)."""
    return offline_setting() is not None


def _probe(url: str, timeout: float) -> str | None:
    """One HEAD request (proxies from the environment apply); None when the server answered."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, method="HEAD")
    try:
        urllib.request.urlopen(req, timeout=timeout).close()
    except urllib.error.HTTPError as e:
        # 4xx: the server answered, it is reachable. 5xx: a proxy or gateway that cannot get
        # through (or a Hub outage); the Hub client would retry those for a minute too.
        return f"HTTP {e.code} {e.reason}" if e.code >= 500 else None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        return str(reason) or type(e).__name__
    return None


def hub_offline_reason(timeout: float = _TIMEOUT_S) -> str | None:
    """None when the Hub answers; else why it cannot be used (offline mode, or no answer within
    ``timeout`` seconds). The probe runs in a thread, so a hanging DNS look-up cannot stall it."""
    if why := offline_setting():
        return f"{why} (offline mode)"
    url = endpoint()
    if url in _memo:
        return _memo[url]
    box: dict[str, str | None] = {}
    t = threading.Thread(target=lambda: box.update(r=_probe(url, timeout)), daemon=True)
    t.start()
    t.join(timeout + 1.0)
    reason = box["r"] if "r" in box else f"no answer in {timeout + 1.0:.0f} s"
    if reason is not None:
        reason = f"the Hugging Face Hub at {url} is not reachable: {reason}"
    _memo[url] = reason
    return reason


def local_snapshot(repo_id: str, repo_type: str = "model") -> str | None:
    """The folder of ``repo_id`` in the local Hub cache (no network), or None."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, repo_type=repo_type, local_files_only=True)
    except Exception:  # not cached, or a partial cache entry: both mean "not here"
        return None


def hub_or_cache(repo_id: str, repo_type: str = "model") -> tuple[str | None, str | None]:
    """Where to load ``repo_id`` from without waiting on retries: ``(None, None)`` when the Hub
    answers (load by id); offline, ``(folder in the local Hub cache, reason)``, or ``(None,
    reason)`` when it is not cached (the caller's one-line error names the reason)."""
    reason = hub_offline_reason()
    if reason is None:
        return None, None
    return local_snapshot(repo_id, repo_type), reason


def clip_tower_config(path: str, tower: str = "vision"):
    """The ``vision`` or ``text`` config of a CLIP checkpoint (a full CLIPModel or one tower),
    with the projection width a full CLIPModel keeps at its top level (transformers would
    otherwise build the tower's projection at its default 512 and refuse the weights)."""
    from transformers import AutoConfig, CLIPTextConfig, CLIPVisionConfig

    from hiva.errors import HivaError

    try:
        cfg = AutoConfig.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 — any load failure is the user's folder or id
        raise HivaError(f"could not read a CLIP config from {path} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); pass a folder or Hub id "
                        "of a CLIP model") from None
    if isinstance(cfg, CLIPVisionConfig if tower == "vision" else CLIPTextConfig):
        return cfg
    if cfg.model_type != "clip" or not hasattr(cfg, f"{tower}_config"):
        raise HivaError(f"{path} is a {cfg.model_type} model without a CLIP {tower} tower; "
                        "pass a CLIP checkpoint")
    sub = getattr(cfg, f"{tower}_config")
    sub.projection_dim = cfg.projection_dim
    return sub
