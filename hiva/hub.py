"""Where models come from: a fast offline check before any Hugging Face Hub look-up, the
local Hub cache as the fallback, and what a CLIP checkpoint's towers are configured as.

Without network, ``from_pretrained("owner/name")`` retries every request five times with backoff
(about 25 s per file) before it gives up. ``hub_offline_reason()`` answers in at most a few
seconds whether the Hub can be reached at all. ``resolve_model`` is the one rule every model hiva
loads by name goes through (checkpoints, CLIP backbones, text encoders, LLMs): a local folder as it
is; a Hub model id ``OWNER/NAME[@REVISION]`` downloaded (or left to the caller's loader) when the
Hub answers, else loaded from the local Hub cache with no network (``local_snapshot``), else one
line saying why and how to get the files.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path

from hiva.errors import HivaError

_TIMEOUT_S = 2.0
_memo: dict[str, str | None] = {}


def endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def offline_setting() -> str | None:
    """``NAME=VALUE`` of the variable that switches the Hub off, else None. Parsed as
    huggingface_hub parses it: HF_HUB_OFFLINE when it is set (non-empty), else
    TRANSFORMERS_OFFLINE, on when 1, ON, YES or TRUE in any case (so HF_HUB_OFFLINE=0 wins over
    TRANSFORMERS_OFFLINE=1). The environment is read now: huggingface_hub's public check,
    ``is_offline_mode()``, returns ``constants.HF_HUB_OFFLINE``, fixed when that module is
    imported, and would miss a setting made later."""
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        v = os.environ.get(k, "")
        if v:
            return f"{k}={v}" if v.upper() in ("1", "ON", "YES", "TRUE") else None
    return None


def offline_mode() -> bool:
    """Whether the Hub is switched off (``offline_setting``)."""
    return offline_setting() is not None


def _probe(url: str, timeout: float) -> str | None:
    """One HEAD request (proxies from the environment apply); None when the server answered."""
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


def local_snapshot(repo_id: str, repo_type: str = "model", revision: str | None = None,
                   allow_patterns: list[str] | None = None) -> str | None:
    """The folder of ``repo_id`` (at ``revision``) in the local Hub cache (no network), or
    None."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, repo_type=repo_type, local_files_only=True,
                                 revision=revision, allow_patterns=allow_patterns)
    except Exception:  # not cached, or a partial cache entry: both mean "not here"
        return None


# OWNER/NAME as the Hub spells repo ids: letters, digits, "_", "-", "."; no "--" or "..";
# neither part starts or ends with "-" or "."; 96 characters at most.
_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")


def hub_model_id(ref: str) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` when ``ref`` reads as a Hub model id ``OWNER/NAME[@REVISION]``
    (revision None when not pinned), else None (an absolute or ``./`` path, a deeper path, a
    bare name)."""
    repo, at, rev = ref.partition("@")
    if at and (not rev or any(c.isspace() for c in rev)):
        return None
    if len(repo) > 96 or not _REPO_ID.match(repo) or "--" in repo or ".." in repo:
        return None
    return repo, rev or None


def resolve_model(ref: str | Path, revision: str | None = None, *, what: str = "model",
                  missing: str | None = None, then: str = "pass DIR",
                  allow_patterns: list[str] | None = None, download: bool = True) -> str:
    """Where the files of ``ref`` are: the one Hub-or-local-cache rule of every model hiva loads
    by name (checkpoints, CLIP backbones, text encoders, LLMs).

    A path that exists, or that cannot be a Hub id, comes back as it is, to the letter (the
    caller reports a missing one). A Hub model id ``OWNER/NAME[@REVISION]`` (or ``revision``):
    when the Hub answers, ``download`` fetches its snapshot through the local Hub cache (only
    ``allow_patterns`` when given) and returns its folder, with one HivaError line for a repo or
    revision that is not there; without ``download`` the id comes back as it is, for the
    caller's own loader to fetch. Offline (``HF_HUB_OFFLINE``) or with the Hub unreachable: the
    cached snapshot, with no network wait, or one HivaError line naming the id, why, and the way
    out. ``what`` names ``ref`` in messages (``checkpoint``); ``missing`` begins the offline line
    in place of "WHAT ID is" (``encoder X is not available here``); ``then`` ends it, what to
    pass once the files are downloaded (``pass --llm DIR``)."""
    ref = str(ref)
    parsed = hub_model_id(ref)
    if Path(ref).exists() or parsed is None:
        return ref
    repo, rev = parsed
    if revision and rev and revision != rev:
        raise HivaError(f"{what} {ref} pins revision {rev} but revision {revision} was also "
                        "given; pass one of them")
    rev = rev or revision
    label = f"{repo}@{rev}" if rev else repo
    fix = (f"on a machine with internet run `hf download {repo}"
           f"{f' --revision {rev}' if rev else ''} --local-dir DIR`, then {then}")
    reason = hub_offline_reason()
    if reason is not None:
        snap = local_snapshot(repo, "model", rev, allow_patterns)
        if snap is not None:
            return snap
        way = (f"unset {setting.split('=')[0]} when online"
               if (setting := offline_setting()) else "check the network or HF_ENDPOINT")
        where = "neither a local folder nor in the local Hub cache"
        head = f"{missing} ({where})" if missing else f"{what} {label} is {where}"
        raise HivaError(f"{head}, and the Hub cannot be used ({reason}); {way}, or {fix}")
    if not download:
        return ref
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return snapshot_download(repo, revision=rev, repo_type="model",
                                 allow_patterns=allow_patterns)
    except RevisionNotFoundError:
        raise HivaError(f"Hub model {repo} has no revision {rev}; pin a branch, tag or commit "
                        f"of it ({repo}@REVISION), or leave the revision out for its main "
                        "branch") from None
    except RepositoryNotFoundError as e:  # also gated, and 401 on a private repo
        raise HivaError(f"{what} {label} is neither a local folder nor a Hub model you can read "
                        f"({type(e).__name__}); check the path or id, and for a private or gated "
                        "repo log in (`hf auth login`)") from None
    except Exception as e:  # noqa: BLE001 — network, disk: one line with the way out
        msg = str(e).splitlines()[0] if str(e) else ""
        raise HivaError(f"download of Hub model {label} failed ({type(e).__name__}: {msg}); "
                        f"check the network and retry, or {fix}") from None


def clip_tower_config(path: str, tower: str = "vision"):
    """The ``vision`` or ``text`` config of a CLIP checkpoint (a full CLIPModel or one tower),
    with the projection width a full CLIPModel keeps at its top level (transformers would
    otherwise build the tower's projection at its default 512 and refuse the weights)."""
    from transformers import AutoConfig, CLIPTextConfig, CLIPVisionConfig

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
