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
import re
from dataclasses import dataclass, field
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


# What a template may use; named in the error when a template uses anything else.
TEMPLATE_VARS = (
    "au (number, code, name, muscles, region, appearance, subject, action, unlike_name, "
    "contrast), "
    "axes (perspective, "
    "perspective_label, perspective_description, intensity, intensity_word, context, "
    "context_code, focus, style, style_description), examples (a list like au), n"
)


@dataclass(frozen=True)
class Template:
    id: str  # e.g. "describe.completion" or "user:mine.chat"
    kind: str
    source: str
    hash: str
    path: str | None = field(default=None, compare=False)  # user templates: the file

    def render(self, **ctx: Any) -> str:
        """Render in the sandbox; any failure of the template is one HivaError naming it."""
        from jinja2.exceptions import SecurityError, UndefinedError

        where = self.path or self.id
        try:
            return _compiled(self.source).render(**ctx)
        except SecurityError as e:
            raise HivaError(
                f"template {where} was stopped by the sandbox ({e}); templates may use only "
                f"{TEMPLATE_VARS}: fix the template"
            ) from None
        except UndefinedError as e:
            raise HivaError(
                f"template {where} uses an undefined variable ({e.message}); the variables are "
                f"{TEMPLATE_VARS}: fix the template"
            ) from None
        except Exception as e:  # a user's template may fail in any filter or expression
            msg = (str(e).splitlines() or [""])[0][:160]
            raise HivaError(
                f"template {where} failed to render ({type(e).__name__}: {msg}); fix the template"
            ) from None


_ENV = None
_COMPILED: dict[str, Any] = {}


def _compiled(source: str):
    t = _COMPILED.get(source)
    if t is None:
        t = _COMPILED[source] = _env().from_string(source)
    return t


def _env():
    global _ENV
    if _ENV is None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        _ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)
    return _ENV


def _make(tid: str, kind: str, source: str, path: str | None = None) -> Template:
    from jinja2 import TemplateSyntaxError

    try:
        _compiled(source)  # parse and compile: unknown filters and tests are found here too
    except TemplateSyntaxError as e:
        raise HivaError(
            f"template {path or tid} has a Jinja syntax error on line {e.lineno}: {e.message}; "
            "fix the template"
        ) from None
    return Template(tid, kind, source, hashlib.sha256(source.encode()).hexdigest()[:16], path)


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


def packaged_template(path: str, tid: str, kind: str) -> Template:
    """A template shipped in this package outside the description templates (``path`` is
    relative to ``hiva/prompts``, e.g. ``judge/chat.jinja``), rendered in the same sandbox."""
    entry = resources.files("hiva.prompts").joinpath(*path.split("/"))
    return _make(tid, kind, entry.read_text())


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
            try:
                source = f.read_text()
            except (OSError, UnicodeDecodeError) as e:
                raise HivaError(f"cannot read template {f} ({type(e).__name__}); fix the file "
                                "or remove it from --templates") from None
            found.append(_make(f"user:{f.name.removesuffix('.jinja')}", kind, source, str(f)))
        if only_user and not files:
            raise HivaError(
                f"no *.{kind}.jinja template in {d}; name templates NAME.{kind}.jinja "
                f"(the prompt style in use is {kind!r})"
            )
    return found


def user_template_names(user_dir: str | Path | None) -> dict[str, list[str]]:
    """{kind: [NAME, ...]} of the ``NAME.{kind}.jinja`` files in ``user_dir``."""
    out: dict[str, list[str]] = {k: [] for k in KINDS}
    if user_dir is not None and Path(user_dir).is_dir():
        for k in KINDS:
            out[k] = sorted(f.name.removesuffix(f".{k}.jinja")
                            for f in Path(user_dir).glob(f"*.{k}.jinja"))
    return out


def check_user_templates(user_dir: str | Path | None, style: str, why: str) -> list[str]:
    """A user template of the other kind is never rendered with ``style``. When that leaves none
    of the user's templates in use: a HivaError; else one warning per unused template naming the
    file and its missing twin. ``why`` says how the style was chosen."""
    if user_dir is None:
        return []
    names = user_template_names(user_dir)
    other = "chat" if style == "completion" else "completion"
    unused = [n for n in names[other] if n not in names[style]]
    if not unused:
        return []
    d = Path(user_dir)
    files = ", ".join(f"{n}.{other}.jinja" for n in unused)
    if not names[style]:
        raise HivaError(
            f"--templates {d} holds only {other} templates ({files}) but the prompt style is "
            f"{style} ({why}), so none of them would be used; pass --prompt-style {other} to "
            f"use them, or add {unused[0]}.{style}.jinja"
        )
    return [
        f"template {d / f'{n}.{other}.jinja'} is not used: the prompt style is {style} ({why}), "
        f"which reads {d / f'{n}.{style}.jinja'} and there is none; add it, or pass "
        f"--prompt-style {other}"
        for n in unused
    ]


# The verbs that end the subject of a cue ("the inner ends of the eyebrows | are pulled upward").
_VERB = re.compile(r"\s+(?:are|is|appear|appears|form|forms|take|takes|radiate|rises?|tighten|"
                   r"tightens|lowers|close|closes|flare|flares|separate|widens?|deepens?|meet|"
                   r"rest|looks?|may|shows?|becomes?|narrows?|bulges?|lengthens|returns|droop|"
                   r"lifts?)\b")


def cue_subject(cue: str) -> str:
    """The subject of a cue clause, the words before its first verb ("the inner ends of the
    eyebrows" of "the inner ends of the eyebrows are pulled upward"); the whole cue when no verb
    of the list follows its first word."""
    m = _VERB.search(cue, 1)
    return cue[:m.start()] if m else cue


def _action(muscles) -> str:
    """"contraction of the <first muscle that contracts>", else "relaxation of the <first>"."""
    for m in muscles:
        if "relax" not in m:
            return f"contraction of the {m}"
    m = muscles[0].replace("relaxation of ", "").replace(" relaxed", "")
    return f"relaxation of the {m}"


def au_context(a: ActionUnit, variant: int = 0) -> dict[str, Any]:
    """What a template may read of AU ``a``; ``subject``, the part its note starts with, is the
    ``variant``-th of its ``openings`` (in turn), else the subject of its defining cue."""
    openings = a.openings or (cue_subject(a.appearance[0]),)
    return {
        "number": a.number,
        "code": a.code,
        "name": a.name,
        "muscles": list(a.muscles),
        "region": a.region,
        "appearance": list(a.appearance),
        "subject": openings[variant % len(openings)],
        "action": _action(a.muscles),
        "unlike_name": AUS[a.unlike].name if a.unlike in AUS else "",
        "contrast": a.contrast,
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
