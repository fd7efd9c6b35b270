"""The prompts of the generation stage: every (axes, template) combination per AU in a seeded
order, their rendering, the prompt style (chat or completion) and the checks of the templates of a
style before any work."""

from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass

from hiva.errors import HivaError
from hiva.facs import AUS
from hiva.pipeline.generate_config import GenerateConfig
from hiva.prompts.render import (
    Axes,
    Template,
    au_context,
    axes_space,
    check_user_templates,
    load_templates,
)


@dataclass(frozen=True)
class PromptSpec:
    au: int
    axes: Axes
    template: Template
    example_aus: tuple[int, ...]
    index: int  # position in the AU's shuffled prompt list


def prompt_list(au: int, templates: list[Template], seed: int) -> list[PromptSpec]:
    """Every (axes, template) combination for ``au``, in a seeded order. Few-shot example AUs
    are drawn per prompt, from AUs other than ``au``."""
    rng = random.Random(f"{seed}:{au}")
    combos = [(ax, t) for ax in axes_space(au) for t in templates]
    rng.shuffle(combos)
    others = [a for a in AUS if a != au and a not in AUS[au].often_with]
    return [
        PromptSpec(au, ax, t, tuple(rng.sample(others, 1)), i) for i, (ax, t) in enumerate(combos)
    ]


def render_prompt(p: PromptSpec, style: str, n_lines: int):
    text = p.template.render(
        au=au_context(AUS[p.au], variant=p.index),
        axes=p.axes.context_vars(),
        examples=[au_context(AUS[a]) for a in p.example_aus],
        n=n_lines,
    )
    return text if style == "completion" else [{"role": "user", "content": text}]


_LABELLED = re.compile(r"^[A-Z][\w ]{0,30}:[ \t]?(.*)$")


def reply_prefix(prompt) -> str:
    """The start of the description a completion prompt writes itself: the text after the label
    of its last line ("Note: Code this action when the lips" → "Code this action when the
    lips"); the model's reply continues it. "" for chat prompts and a bare label."""
    if not isinstance(prompt, str):
        return ""
    m = _LABELLED.match(prompt.rsplit("\n", 1)[-1])
    return m.group(1) if m else ""


def auto_style(gen) -> str:
    """``--prompt-style auto``: chat prompts for chat models of 1B+ parameters, else completion."""
    big = gen.num_parameters() >= 1_000_000_000
    return "chat" if gen.is_chat() and big else "completion"


def style_why(cfg: GenerateConfig, gen=None) -> str:
    if cfg.prompt_style != "auto":
        return "from --prompt-style"
    if gen is None:
        return "chosen by --prompt-style auto"
    return (f"chosen by --prompt-style auto: {gen.name} is "
            + ("a chat model of 1B+ parameters" if auto_style(gen) == "chat"
               else "not a chat model of 1B+ parameters"))


def style_templates(cfg: GenerateConfig, style: str) -> list[Template]:
    """The templates of ``style`` this run uses; none is an error."""
    templates = load_templates(cfg.templates, style, only_user=cfg.only_user_templates)
    if not templates:
        raise HivaError(f"no {style} templates; add *.{style}.jinja files with --templates")
    return templates


def _covering(plist: list[PromptSpec]) -> list[PromptSpec]:
    """Prompts that together show every template with every value of every axis (so a template
    branch on one axis is rendered at least once)."""
    seen: set[tuple] = set()
    out = []
    for p in plist:
        keys = {(p.template.id, k, str(v)) for k, v in p.axes.as_record().items()}
        if keys - seen:
            seen |= keys
            out.append(p)
    return out


def check_templates(cfg: GenerateConfig, style: str) -> list[Template]:
    """Load the templates of ``style`` and render each one for every AU and axis value, so a
    template error (syntax, undefined variable, sandbox) is one line before any work."""
    templates = style_templates(cfg, style)
    for au in cfg.aus:
        for p in _covering(prompt_list(au, templates, cfg.seed)):
            render_prompt(p, style, cfg.descriptions_per_reply)
    return templates


def check_style(cfg: GenerateConfig, style: str, gen=None, warn_unused: bool = True) -> None:
    """Once the style is known: user templates of the other style that go unused are named (an
    error when none of the user's would be used, else warnings), then every template of
    ``style`` is rendered."""
    for w in check_user_templates(cfg.templates, style, style_why(cfg, gen)):
        if warn_unused:
            warn(w)
    check_templates(cfg, style)


def warn(msg: str) -> None:
    print(f"hiva: warning: {msg}", file=sys.stderr, flush=True)
