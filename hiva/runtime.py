"""What every stage shares at run time, one home each: the distributed group, device and dtype
choice, seeding and RNG state, atomic writes, the cache folder. Imports neither torch nor numpy at
module level (``hiva --help`` stays fast); the functions import what they need.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hiva.errors import HivaError


# --------------------------------------------------------------------------- distributed
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_dist(device_pref: str) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and device_pref != "cpu"
        # gloo serves the CPU tensors (metric sums, gathered predictions) beside nccl on CUDA.
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def all_sum(values: list[float], d: Dist) -> list[float]:
    if d.world == 1:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


# --------------------------------------------------------------------------- device, dtype, seeds
def resolve_device(pref: str) -> str:
    """The device a stage runs on, one rule for every stage: ``auto`` is cuda when a GPU is
    visible, else cpu; ``cuda`` or ``cuda:N`` with no GPU visible is one line naming the fix."""
    import torch

    if pref == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise HivaError(f"--device {pref} but no CUDA GPU is visible; use --device cpu or auto")
    return pref


def pick_device(pref: str, d: Dist):
    """``resolve_device``'s device as a ``torch.device``; plain ``cuda`` is this process's GPU
    (its local rank under torchrun)."""
    import torch

    pref = resolve_device(pref)
    if pref == "cuda":
        torch.cuda.set_device(d.local_rank)
        return torch.device("cuda", d.local_rank)
    return torch.device(pref)


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 autocast/matmuls are slower
    than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def native_bf16(device) -> bool:
    """Whether ``device`` (a ``torch.device`` or a string such as "cuda:1") computes in bf16 at
    full speed: CUDA cards that support it, CPUs with AVX512-BF16/AMX."""
    kind = str(device).split(":")[0]
    if kind == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return kind == "cpu" and cpu_has_bf16()


DTYPES = ("auto", "bf16", "fp16", "fp32")


def weights_dtype(spec: str, device):
    """The dtype to load model weights in (``--dtype``): auto = bf16 where ``device`` computes it
    natively, else fp32; or bf16 / fp16 / fp32 as named."""
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if spec == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    if spec not in table:
        raise HivaError(f"--dtype {spec}: choose {', '.join(DTYPES)}")
    return table[spec]


def amp_dtype(mode: str, device):
    """The autocast dtype (None = fp32) for ``mode`` (auto | bf16 | fp16 | off) on ``device``."""
    import torch

    if mode == "off":
        return None
    if device.type == "cuda":
        if mode == "fp16":
            return torch.float16
        if mode == "bf16" or native_bf16(device):
            return torch.bfloat16
        return torch.float16
    if device.type == "cpu":
        if mode == "fp16":
            raise HivaError("--amp fp16 is for CUDA; on CPU use bf16 or off")
        if mode == "bf16" or native_bf16(device):
            return torch.bfloat16
    return None


def stable_hash(key: str) -> int:
    """A 64-bit unsigned integer from ``key``, the same in every process and platform (Python's
    ``hash`` is salted per process): per-item seeds and draws (augmentations, feature views)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def seed_everything(seed: int, deterministic: bool) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def rng_state(device) -> dict:
    """This process's torch RNG streams (CPU, and the CUDA device's when on CUDA)."""
    import torch

    out = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(state: dict, device) -> None:
    import torch

    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def gather_rng(device, d: Dist) -> list[dict]:
    """Every rank's RNG state, in rank order (rank 0 saves them all with the checkpoint)."""
    mine = rng_state(device)
    if d.world == 1:
        return [mine]
    import torch.distributed as dist

    parts = [None] * d.world
    dist.all_gather_object(parts, {k: v.cpu() for k, v in mine.items()})
    return parts


# --------------------------------------------------------------------------- files
def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: str | Path, write) -> None:
    """``write(tmp)`` then rename onto ``path``: readers see the old file or the new, never half.
    The temp file sits beside ``path`` (same file system) named ``<name>.tmp<pid>``; ``write``
    may also make a folder there (a model folder), which then replaces a missing ``path``."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


# Output folders: fail in one line, before any work, when --out/--to cannot take the output.
def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def require_dir_path(path: str | Path, flag: str = "--out") -> Path:
    """``path`` must be a folder or not exist yet (nothing is created)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise HivaError(f"{flag} {p} is a file, not a folder; pass a folder path (a new one is "
                        "made)")
    return p


def writable_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` (and its parents) if needed and check that files can be written in it."""
    p = require_dir_path(path, flag)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HivaError(f"cannot create {flag} {p} ({_reason(e)}); pass a folder you can write "
                        "to") from None
    probe = p / f".hiva-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise HivaError(f"cannot write into {flag} {p} ({_reason(e)}); pass a folder you can "
                        "write to, or make it writable") from None
    return p


# A folder hiva is writing holds this file from before its first file until after its last: a
# run killed in between is recognised by its rerun, which takes the folder back.
WRITING = ".hiva-writing"


def check_claim(path: str | Path, flag: str, kind: str, finished: Callable[[Path], bool],
                taken: Callable[[Path], list[str]]) -> Path:
    """Whether ``kind`` (the command, e.g. "`hiva embed`") may write the folder ``path``,
    checked before any work and changing nothing: yes when it is missing, when ``taken`` finds
    nothing of another's in it, when it is ``finished`` work of this kind (a rerun replaces
    it), or when a run of this kind was stopped while writing it (its ``WRITING`` mark); else
    one line naming what is there."""
    p = require_dir_path(path, flag)
    if not p.exists():
        return p
    mark = p / WRITING
    if mark.is_file():
        other = mark.read_text(errors="replace").strip()
        if other == kind:
            return p
        raise HivaError(f"{flag} {p} is being written by another command ({other or 'unknown'}: "
                        "stopped before it finished); rerun that command, or pass another "
                        "folder")
    names = taken(p)
    if names and not finished(p):
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise HivaError(f"{flag} {p} holds {shown} that {kind} did not write; pass a new or "
                        f"empty folder (a rerun of {kind} replaces only what it wrote)")
    return p


def holding(names: tuple[str, ...]) -> Callable[[Path], list[str]]:
    """A ``taken`` for ``check_claim``: which of ``names`` (the files a command writes) a
    folder holds."""
    return lambda p: [n for n in names if (p / n).exists()]


def entries(p: Path) -> list[str]:
    """A ``taken`` for ``check_claim`` where anything in the folder is another's: every name in
    it."""
    return sorted(e.name for e in p.iterdir())


def claim_dir(path: str | Path, flag: str, kind: str, finished: Callable[[Path], bool],
              taken: Callable[[Path], list[str]]) -> Path:
    """``check_claim``, then the folder made, write-tested and marked as ``kind``'s before its
    first file (``release_dir`` after its last)."""
    p = writable_dir(check_claim(path, flag, kind, finished, taken), flag)
    write_text_atomic(p / WRITING, kind + "\n")
    return p


def release_dir(path: str | Path) -> None:
    """The folder's last file is written: its ``WRITING`` mark goes."""
    (Path(path) / WRITING).unlink(missing_ok=True)


def output_file(path: str | Path, flag: str = "--out", suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a file a command writes, checked before any work (the one rule of every
    command that writes a file it is given): not a folder; ending in one of ``suffixes`` (so a
    file of another kind, ``--out notes.txt`` for a manifest, is refused, never replaced); its
    folder made and writable. Returns it."""
    p = Path(path)
    if p.is_dir():
        raise HivaError(f"{flag} {p} is a folder; pass a file path"
                        + (f" ending in {' or '.join(suffixes)}" if suffixes else ""))
    if suffixes and p.suffix.lower() not in suffixes:
        there = (f"; {p} exists and is left as it is" if p.exists() else "")
        raise HivaError(f"{flag} {p}: end it in {' or '.join(suffixes)}{there}")
    writable_dir(p.parent, flag)
    return p


def cache_dir() -> Path:
    """hiva's cache: ``$HIVA_CACHE``, else ``$XDG_CACHE_HOME/hiva``, else ``~/.cache/hiva``."""
    if os.environ.get("HIVA_CACHE"):
        return Path(os.environ["HIVA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hiva"
