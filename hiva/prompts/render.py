"""Load and render description prompt templates.

Templates are ``NAME.chat.jinja`` (rendered into the user turn of an instruct model) or
``NAME.completion.jinja`` (a few-shot text the model continues; for small or base models). The
built-in ones ship in this package; users add their own with ``--templates DIR``. Every template
renders in a sandboxed Jinja environment with strict undefined variables, so a user template can
neither reach Python internals nor silently drop a fact.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hiva.errors import HivaError
from hiva.facs import AUS, INTENSITIES, ActionUnit

KINDS = ("chat", "completion")

# The diversity axes. Each prompt is one point of their product (per AU); the values are recorded
# with every row the prompt produced.
PERSPECTIVES: dict[str, tuple[str, str]] = {
    # name: (label used in completion headers, description used in chat instructions)
    "anatomy": ("anatomy", "an anatomist: which muscle contracts and how it moves the face"),
    "appearance": ("visible appearance", "an observer describing only visible changes"),
    "coder": ("FACS coder", "a FACS coding manual: the cues a coder checks before scoring"),
    "lay": ("lay observer", "a lay person describing the face in everyday words"),
}
STYLES: dict[str, str] = {
    "short": "one short sentence of at most 15 words",
    "detailed": "one or two precise sentences with concrete visual detail",
    "clinical": "one formal, clinical sentence",
}
INTENSITY_LEVELS: tuple[str | None, ...] = (None, *INTENSITIES)
FOCI = ("region", "face")


@dataclass(frozen=True)
class Template:
    id: str  # e.g. "describe.completion" or "user:mine.chat"
    kind: str
    source: str
    hash: str

    def render(self, **ctx: Any) -> str:
        return _env().from_string(self.source).render(**ctx)


_ENV = None


def _env():
    global _ENV
    if _ENV is None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        _ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)
    return _ENV


def _make(tid: str, kind: str, source: str) -> Template:
    from jinja2 import TemplateSyntaxError

    try:
        _env().parse(source)
    except TemplateSyntaxError as e:
        raise HivaError(
            f"template {tid} has a Jinja syntax error on line {e.lineno}: {e.message}; "
            "fix the template"
        ) from None
    return Template(tid, kind, source, hashlib.sha256(source.encode()).hexdigest()[:16])


def _kind_of(name: str) -> str | None:
    for k in KINDS:
        if name.endswith(f".{k}.jinja"):
            return k
    return None


def builtin_templates() -> list[Template]:
    out = []
    for entry in sorted(resources.files("hiva.prompts").iterdir(), key=lambda e: e.name):
        kind = _kind_of(entry.name)
        if kind:
            out.append(_make(entry.name.removesuffix(".jinja"), kind, entry.read_text()))
    return out


def load_templates(
    user_dir: str | Path | None, kind: str, only_user: bool = False
) -> list[Template]:
    """Templates of ``kind``: the built-ins (unless ``only_user``) plus ``*.{kind}.jinja`` in
    ``user_dir``."""
    found = [] if only_user else [t for t in builtin_templates() if t.kind == kind]
    if user_dir is not None:
        d = Path(user_dir)
        if not d.is_dir():
            raise HivaError(
                f"--templates {d} is not a folder; pass a folder of *.chat.jinja or "
                "*.completion.jinja files"
            )
        files = sorted(d.glob(f"*.{kind}.jinja"))
        for f in files:
            found.append(_make(f"user:{f.name.removesuffix('.jinja')}", kind, f.read_text()))
        if only_user and not files:
            raise HivaError(
                f"no *.{kind}.jinja template in {d}; name templates NAME.{kind}.jinja "
                f"(the prompt style in use is {kind!r})"
            )
    return found


def au_context(a: ActionUnit) -> dict[str, Any]:
    return {
        "number": a.number,
        "code": a.code,
        "name": a.name,
        "muscles": list(a.muscles),
        "region": a.region,
        "appearance": list(a.appearance),
    }


@dataclass(frozen=True)
class Axes:
    perspective: str
    intensity: str | None
    context: int | None  # a co-occurring AU, or None for the AU alone
    focus: str
    style: str

    def as_record(self) -> dict[str, Any]:
        return {
            "perspective": self.perspective,
            "intensity": self.intensity,
            "context": f"AU{self.context}" if self.context else None,
            "focus": self.focus,
            "style": self.style,
        }

    def context_vars(self) -> dict[str, Any]:
        ctx = code = None
        if self.context:
            co = AUS[self.context]
            ctx, code = f"the {co.name.lower()} action", co.code
        return {
            "perspective": self.perspective,
            "perspective_label": PERSPECTIVES[self.perspective][0],
            "perspective_description": PERSPECTIVES[self.perspective][1],
            "intensity": self.intensity,
            "intensity_word": INTENSITIES.get(self.intensity or "", None),
            "context": ctx,
            "context_code": code,
            "focus": self.focus,
            "style": self.style,
            "style_description": STYLES[self.style],
        }


def axes_space(au: int) -> list[Axes]:
    """Every axis combination for one AU (the AU's own co-occurrence partners as contexts)."""
    contexts: tuple[int | None, ...] = (None, *AUS[au].often_with)
    return [
        Axes(p, i, c, f, s)
        for p, i, c, f, s in itertools.product(
            PERSPECTIVES, INTENSITY_LEVELS, contexts, FOCI, STYLES
        )
    ]
