"""How ``hiva report`` shows a bootstrap comparison (``Comparison.summary()`` of
hiva.train.bootstrap): plain-text or Markdown tables of the primary contrast (when declared), per
group mean F1 and mean AUC ([95% CI], Δ vs the reference [95% CI], p, Holm p; groups with fewer
than 8 seeds starred as exploratory), per AU (F1 [95% CI]), of the activation maps and of AU
intensity (ICC, MAE: hiva.train.boot_intensity), and a forest plot PNG of the differences."""

from __future__ import annotations

from pathlib import Path

from hiva.runs import METRICS
from hiva.train.boot_intensity import intensity_tables


def _pct(v, sign: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:+.1f}" if sign else f"{100 * v:.1f}"


def _ci(v, ci, sign: bool = False) -> str:
    if v is None:
        return "n/a"
    lo, hi = ci
    return f"{_pct(v, sign)} [{_pct(lo, sign)}, {_pct(hi, sign)}]"


def _p(p, resamples: int) -> str:
    if p is None:
        return "n/a"
    if p == 0:  # no resample crossed 0: below the resolution 2/B
        return f"<{2 / resamples:.2g}"
    return f"{p:.3f}"


def _holm(p, adjusted) -> str:
    """A Holm-adjusted p; '≤' where the raw p was 0 (adjusted from its resolution 2/B)."""
    if adjusted is None:
        return "n/a"
    return f"≤{adjusted:.2g}" if p == 0 else f"{adjusted:.3f}"


EXPLORATORY_NOTE = ("* fewer than {n} seeds: exploratory, not a claim (so is any Δ that involves "
                    "such a group)")


def _name(g: dict) -> str:
    return g["name"] + ("*" if g.get("exploratory") else "")


def _foot(s: dict, flagged: bool) -> str:
    return EXPLORATORY_NOTE.format(n=s.get("exploratory_below", 8)) if flagged else ""


def resample_words(s: dict) -> tuple[str, str]:
    """(how the resamples were drawn, what the interval covers), in words."""
    ref = s["reference"]
    if s.get("resample", "subjects") == "hierarchical":
        return ("a hierarchical bootstrap (test subjects and, within each group, its runs (seeds) "
                "drawn with replacement; groups with the same seeds share the seed draw)",
                f"Δ = paired difference vs {ref}; the interval covers which test subjects were "
                "drawn and which seeds trained (training noise)")
    return ("a subject-level bootstrap (test subjects drawn with replacement, the same draws "
            "for every run; the trained runs held fixed)",
            f"Δ = paired difference vs {ref}; the interval covers which test subjects were "
            "drawn, not training noise: 'per run' shows each run's own value (seeds) for that")


def _holm_words(s: dict) -> str:
    return (f"p: two-sided bootstrap p; p (Holm): Holm-adjusted over the family of "
            f"{s.get('holm_family', 0)} contrasts this report prints")


def primary_table(s: dict) -> tuple[str, list[list[str]], str]:
    """The primary contrast(s): Δ mean F1 and Δ mean AUC with CIs, p and Holm p, seeds per
    side, one row each."""
    prs, b = s.get("primaries") or [s["primary"]], s["resamples"]
    how, _ = resample_words(s)
    names = "; ".join(f"{pr['a']} − {pr['b']}" for pr in prs)
    head = (f"Primary contrast{'s' if len(prs) > 1 else ''} "
            f"({prs[0].get('declared_in', 'declared')}): Δ = {names} ×100, 95% percentile CIs "
            f"from {how}, {b} resamples, seed {s['seed']}\n" + _holm_words(s))
    rows = [["contrast", "seeds", "Δ mean F1 [95% CI]", "p", "p (Holm)", "Δ mean AUC [95% CI]",
             "p", "p (Holm)"]]
    for pr in prs:
        rows.append([pr["name"] + ("*" if pr.get("exploratory") else ""),
                     " vs ".join(map(str, pr["runs"])),
                     _ci(pr["delta"], pr["delta_ci"], sign=True),
                     _p(pr["p"], b), _holm(pr["p"], pr.get("p_holm")),
                     _ci(pr.get("delta_auc"), pr.get("delta_auc_ci") or [None, None], sign=True),
                     _p(pr.get("p_auc"), b), _holm(pr.get("p_auc"), pr.get("p_auc_holm"))])
    return head, rows, _foot(s, any(pr.get("exploratory") for pr in prs))


def _group_rows(s: dict, metric: str) -> list[list[str]]:
    ref, b = s["reference"], s["resamples"]
    sfx = "" if metric == "f1" else "_auc"
    label = "mean F1" if metric == "f1" else "mean AUC"
    rows = [["group", "runs", f"{label} [95% CI]", f"Δ vs {ref} [95% CI]", "p", "p (Holm)",
             "per run"]]
    for g in s["groups"]:
        is_ref = g["name"] == ref
        p = g.get("p" + sfx)
        rows.append([_name(g), g["runs_label"],
                     _ci(g.get(f"mean_{metric}"), g.get(f"mean_{metric}_ci") or [None, None]),
                     "reference" if is_ref else _ci(g.get("delta" + sfx),
                                                    g.get(f"delta{sfx}_ci"), sign=True),
                     "" if is_ref else _p(p, b),
                     "" if is_ref else _holm(p, g.get(f"p{sfx}_holm")),
                     " / ".join(_pct(v) for v in (g.get(f"run_mean_{metric}") or {}).values())])
    return rows


def tables(s: dict) -> list[tuple[str, list[list[str]], str]]:
    """[(title, rows, footnote)], the first row of each being the header: the primary contrast
    (when there is one), mean F1 and mean AUC per group, per-AU F1, the activation maps."""
    b = s["resamples"]
    how, covers = resample_words(s)
    flagged = any(g.get("exploratory") for g in s["groups"])
    head = (f"Test mean F1 ×100 at threshold {s['threshold']:g} (runs = seeds × folds); 95% "
            f"percentile CIs from {how}, {b} resamples, seed {s['seed']}\n{covers}\n"
            + _holm_words(s))
    out = [primary_table(s)] if s.get("primary") else []
    out.append((head, _group_rows(s, "f1"), _foot(s, flagged)))
    if any(g.get("mean_auc") is not None for g in s["groups"]):
        out.append(("Test mean ROC AUC ×100 (per AU over the fold's test frames, ties count ½; "
                    "mean over AUs, folds, then runs); the same resamples, Δ and p as F1",
                    _group_rows(s, "auc"), _foot(s, flagged)))
    aus = sorted({a for g in s["groups"] for a in g["aus"]})
    per_au = [["AU", *(_name(g) for g in s["groups"])]]
    for a in aus:
        row = [f"AU{a:02d}"]
        for g in s["groups"]:
            i = g["aus"].index(a) if a in g["aus"] else None
            row.append("-" if i is None else _ci(g["f1"][i], g["f1_ci"][i]))
        per_au.append(row)
    out.append(("Per-AU test F1 ×100 [95% CI] (n/a: no positive test label)", per_au, ""))
    if s.get("localisation"):
        out += localisation_tables(s["localisation"], b)
    if s.get("intensity"):
        out += intensity_tables(s["intensity"])
    return out


def localisation_tables(loc: dict, resamples: int) -> list[tuple[str, list[list[str]], str]]:
    """The activation maps against the AU regions: per group the mean over AUs of energy in the
    region and of the pointing game with CIs, chance levels and Δ vs the reference (p, Holm p);
    per AU both scores for every group."""
    ref = loc["reference"]
    head = ("Activation maps vs AU regions ×100, over " + loc["frames"] + ": energy = the map's "
            "mass in the region, pointing = the map's peak cell overlaps it; chance = a uniform "
            "map / a random cell; 95% CIs from the same resamples as F1" +
            (f"; Δ vs {ref}" if ref else ""))
    rows = [["group", "energy [95% CI]", "chance", "pointing [95% CI]", "chance",
             "Δ energy [95% CI]", "p", "p (Holm)", "Δ pointing [95% CI]", "p", "p (Holm)"]]
    for g in loc["groups"]:
        is_ref = g["name"] == ref or ref is None
        row = [g["name"], _ci(g["mean_energy"], g["mean_energy_ci"]),
               _pct(g["mean_energy_chance"]), _ci(g["mean_pointing"], g["mean_pointing_ci"]),
               _pct(g["mean_pointing_chance"])]
        for key in ("energy", "pointing"):
            if is_ref:
                row += ["reference" if key == "energy" else "", "", ""]
                continue
            row += [_ci(g.get(f"delta_{key}"), g.get(f"delta_{key}_ci"), sign=True)
                    + ("*" if g.get("delta_exploratory") else ""),
                    _p(g.get(f"delta_{key}_p"), resamples),
                    _holm(g.get(f"delta_{key}_p"), g.get(f"delta_{key}_p_holm"))]
        rows.append(row)
    aus = sorted({a for g in loc["groups"] for a in g["aus"]})
    per_au = [["AU", *(f"{g['name']} energy / pointing" for g in loc["groups"]), "chance"]]
    for a in aus:
        row = [f"AU{a:02d}"]
        chance = "-"
        for g in loc["groups"]:
            if a not in g["aus"]:
                row.append("-")
                continue
            i = g["aus"].index(a)
            row.append(f"{_pct(g['energy'][i])} / {_pct(g['pointing'][i])}")
            chance = f"{_pct(g['energy_chance'][i])} / {_pct(g['pointing_chance'][i])}"
        per_au.append(row + [chance])
    if loc.get("missing"):
        rows.append([f"(no map scores: {', '.join(loc['missing'])})"] + [""] * (len(rows[0]) - 1))
    flagged = any(g.get("delta_exploratory") for g in loc["groups"])
    foot = "* a Δ that involves a group with fewer than 8 seeds: exploratory" if flagged else ""
    return [(head, rows, foot),
            ("Per-AU energy / pointing ×100 (point estimates; chance last)", per_au, "")]


def label_note(s: dict) -> str | None:
    """One line saying who was labelled in each group (every labelled subject counted,
    validation included), from the runs' ``label_budget``; None when no run recorded it."""
    said: dict[str, list[str]] = {}
    for g in s.get("groups", []):
        b = g.get("label_budget")
        if not b:
            continue
        text = (f"{b['labelled_subjects']} labelled subjects ({b['train_subjects']} train + "
                f"{b['val_subjects']} validation), epoch {b['epoch']}, threshold 0.5")
        said.setdefault(text, []).append(g["name"])
    if not said:
        return None
    if len(said) == 1:
        return "Labels, every group: " + next(iter(said))
    return "Labels: " + "; ".join(f"{', '.join(v)}: {k}" for k, v in said.items())


def _notes(s: dict) -> list[str]:
    notes = list(s.get("notes") or [])
    if label_note(s):
        notes.insert(0, label_note(s))
    if s.get("unfinished"):
        notes.append(f"unfinished (no {METRICS}), left out: " + ", ".join(s["unfinished"]))
    return notes


def to_text(s: dict) -> str:
    parts = []
    for title, rows, foot in tables(s):
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
                 .rstrip() for r in rows]
        parts.append("\n".join([title, *lines] + ([foot] if foot else [])))
    return "\n\n".join(parts + _notes(s))


def to_markdown(s: dict) -> str:
    parts = []
    for title, rows, foot in tables(s):
        md = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        md += ["| " + " | ".join(c or " " for c in r) + " |" for r in rows[1:]]
        parts.append(f"{title}\n\n" + "\n".join(md) + (f"\n\n{foot}" if foot else ""))
    return "\n\n".join(parts + _notes(s))


def forest_plot(s: dict, path: str | Path) -> Path:
    """One row per group but the reference: the observed Δ mean F1 ×100 and its 95% CI bar, a
    vertical line at 0, p on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    ref = s["reference"]
    rows = [g for g in s["groups"] if g["name"] != ref]
    n = max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(7, 1.5 + 0.45 * n))
    for i, g in enumerate(rows):
        d = g["delta"]
        if d is None:
            continue
        lo, hi = (float("nan") if v is None else 100 * v for v in g["delta_ci"])
        ax.errorbar([100 * d], [i], xerr=[[100 * d - lo], [hi - 100 * d]], fmt="o",
                    color="C0", ecolor="C0", capsize=4, markersize=6)
    ax.axvline(0, color="0.35", linestyle="--", linewidth=1)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(range(len(rows)), [g["name"] for g in rows])
    ax.set_xlabel(f"Δ mean F1 vs {ref} (×100)")
    kind = "hierarchical" if s.get("resample") == "hierarchical" else "subject"
    ax.set_title(f"Paired {kind} bootstrap: 95% CI, {s['resamples']} resamples", fontsize=10)
    ax.grid(axis="x", color="0.9")
    if rows:
        right = ax.twinx()
        right.set_ylim(ax.get_ylim())
        ps = [_p(g.get("p"), s["resamples"]) for g in rows]
        right.set_yticks(range(len(rows)), [f"p {p[0]} {p[1:]}" if p[0] == "<" else f"p = {p}"
                                            for p in ps])
        right.tick_params(length=0)
    else:
        ax.text(0.5, 0.5, f"only the reference {ref}: nothing to compare", ha="center",
                va="center", transform=ax.transAxes)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
