"""How ``hiva report`` shows a bootstrap comparison (``Comparison.summary()`` of
hiva.train.bootstrap): a plain-text or Markdown table per group (mean F1 [95% CI], Δ vs the
reference [95% CI], p) and per AU (F1 [95% CI]), and a forest plot PNG of the differences."""

from __future__ import annotations

from pathlib import Path


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


def tables(s: dict) -> list[tuple[str, list[list[str]]]]:
    """[(title, rows)], the first row of each being the header."""
    ref, b = s["reference"], s["resamples"]
    head = (f"Test mean F1 ×100 at threshold {s['threshold']:g} (runs = seeds × folds); 95% "
            f"percentile CIs from a subject-level bootstrap, {b} resamples, seed {s['seed']}\n"
            f"Δ = paired difference vs {ref} (the same test-subject draws for every run); the "
            "interval covers which test subjects were drawn, not training noise: 'per run' shows "
            "each run's own mean F1 (seeds) for that")
    rows = [["group", "runs", "mean F1 [95% CI]", f"Δ vs {ref} [95% CI]", "p", "per run"]]
    for g in s["groups"]:
        is_ref = g["name"] == ref
        rows.append([g["name"], g["runs_label"], _ci(g["mean_f1"], g["mean_f1_ci"]),
                     "reference" if is_ref else _ci(g["delta"], g["delta_ci"], sign=True),
                     "" if is_ref else _p(g["p"], b),
                     " / ".join(_pct(v) for v in g["run_mean_f1"].values())])
    aus = sorted({a for g in s["groups"] for a in g["aus"]})
    per_au = [["AU", *(g["name"] for g in s["groups"])]]
    for a in aus:
        row = [f"AU{a:02d}"]
        for g in s["groups"]:
            i = g["aus"].index(a) if a in g["aus"] else None
            row.append("-" if i is None else _ci(g["f1"][i], g["f1_ci"][i]))
        per_au.append(row)
    out = [(head, rows), ("Per-AU test F1 ×100 [95% CI] (n/a: no positive test label)", per_au)]
    if s.get("localisation"):
        out += localisation_tables(s["localisation"], b)
    return out


def localisation_tables(loc: dict, resamples: int) -> list[tuple[str, list[list[str]]]]:
    """The activation maps against the AU regions: per group the mean over AUs of energy in the
    region and of the pointing game with CIs, chance levels and Δ vs the reference; per AU both
    scores for every group."""
    ref = loc["reference"]
    head = ("Activation maps vs AU regions ×100, over " + loc["frames"] + ": energy = the map's "
            "mass in the region, pointing = the map's peak cell overlaps it; chance = a uniform "
            "map / a random cell; 95% CIs from the same subject resamples" +
            (f"; Δ vs {ref}" if ref else ""))
    rows = [["group", "energy [95% CI]", "chance", "pointing [95% CI]", "chance",
             "Δ energy [95% CI]", "Δ pointing [95% CI]"]]
    for g in loc["groups"]:
        is_ref = g["name"] == ref or ref is None
        rows.append([g["name"], _ci(g["mean_energy"], g["mean_energy_ci"]),
                     _pct(g["mean_energy_chance"]),
                     _ci(g["mean_pointing"], g["mean_pointing_ci"]),
                     _pct(g["mean_pointing_chance"]),
                     "reference" if is_ref else _ci(g.get("delta_energy"),
                                                    g.get("delta_energy_ci"), sign=True),
                     "" if is_ref else _ci(g.get("delta_pointing"), g.get("delta_pointing_ci"),
                                           sign=True)])
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
    out = [(head, rows), ("Per-AU energy / pointing ×100 (point estimates; chance last)", per_au)]
    if loc.get("missing"):
        out[0][1].append([f"(no map scores: {', '.join(loc['missing'])})", "", "", "", "", "",
                          ""])
    return out


def _notes(s: dict) -> list[str]:
    notes = []
    if s.get("unfinished"):
        notes.append("unfinished (no metrics.json), left out: " + ", ".join(s["unfinished"]))
    return notes


def to_text(s: dict) -> str:
    parts = []
    for title, rows in tables(s):
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
                 .rstrip() for r in rows]
        parts.append("\n".join([title, *lines]))
    return "\n\n".join(parts + _notes(s))


def to_markdown(s: dict) -> str:
    parts = []
    for title, rows in tables(s):
        md = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        md += ["| " + " | ".join(c or " " for c in r) + " |" for r in rows[1:]]
        parts.append(f"{title}\n\n" + "\n".join(md))
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
    ax.set_title(f"Paired subject bootstrap: 95% CI, {s['resamples']} resamples", fontsize=10)
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
