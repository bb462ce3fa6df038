"""Fit the topic step's confidence on the replica's ground truth.

`redirects.topic` turns five features of a page's best candidate into a
confidence: the share of the score its query could reach, its lead over the
runner-up, the section prior (where the old section's confident matches
went), the raw score, and how specific the matched terms are (how few old
pages use them). This script measures them on replicas that neither the
tests nor the benchmark score (seed 21, 400 and 2,000 pages by default), of
each successor flavour: "rewritten" (the right page shares only topic terms
and names) and "reused" (the new site keeps the old wording, and a topic
match that is not backed by text is usually a namesake). Each page's best
candidate is labelled right or wrong from the replica's ground truth, and a
logistic model of "right" is fitted:

- once per section-prior boost (the prior's weight when it re-ranks close
  candidates), keeping the boost with the lowest log-loss;
- then the script reports, per threshold, how many pages with a successor
  would get it and how many without one would keep the archive, and a
  reliability table (predicted confidence against the share actually right).

Only pages the topic step decides are used (the cascade left them
undecided, or its match rested on a slug or title alone). The coefficients
it prints go into ``redirects/topic.py`` (CALIBRATION, PRIOR_BOOST,
THRESHOLD) by hand, so a change is reviewed like any other code. The
confidence feeds back into which slug matches stand, so a second run after
pasting them in may move the figures a little.

    .venv/bin/python bench/calibrate_topic.py
    .venv/bin/python bench/calibrate_topic.py --sizes 400,4000 --seed 33

Results: a table on stdout and output/bench/calibrate-topic.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import ROOT, ensure_migration, err, out

from redirects import topic
from redirects.run import RedirectOptions, plan_redirects
from replica.generate import iter_jsonl
from sunset.profile import load_profile

FEATURES = ("share", "lead", "lead_unnamed", "prior", "log_score", "specific", "rare", "kept")
BOOSTS = (0.0, 0.25, 0.5, 1.0)
# Both successors the replica makes: one that rewrites (topic terms decide)
# and one that reuses the wording (only text can tell namesakes apart, so a
# topic-only match there must not look confident).
FLAVOURS = ("rewritten", "reused")
L2 = 1e-2


def collect(paths: dict[str, Path], boost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and "has a successor" of every page the topic step decides."""
    truth = {
        str(t["url"]): t.get("successor")
        for t in iter_jsonl(paths["site"] / "ground-truth" / "urls.jsonl")
    }
    topic.PRIOR_BOOST = boost
    with tempfile.TemporaryDirectory(prefix="calibrate-topic-") as tmp:
        plan = plan_redirects(
            RedirectOptions(
                crawl_dir=paths["crawl"],
                profile=load_profile("demo"),
                new_crawl=paths["successor"],
                out=Path(tmp),
            )
        )
        try:
            rows = plan.db.execute(
                "SELECT g.url, f.url, f.score, f.share, f.lead, f.prior, f.specific, f.rare, f.kept"
                " FROM topic_feature AS f"
                " JOIN grp AS g ON g.id = f.id WHERE NOT f.cascade ORDER BY f.id"
            ).fetchall()
        finally:
            plan.db.close()
    x, y, has = [], [], []
    for old, candidate, score, share, lead, prior, specific, rare, kept in rows:
        expected = truth.get(old)
        named = rare >= topic.NAMED_SHARE * score
        x.append(
            (
                share,
                lead * named,
                lead * (not named),
                prior,
                math.log1p(score),
                specific,
                float(named),
                kept,
            )
        )
        y.append(bool(expected) and candidate.rstrip("/") == str(expected).rstrip("/"))
        has.append(bool(expected))
    return np.array(x, dtype=float), np.array(y, dtype=float), np.array(has, dtype=bool)


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Logistic regression by Newton's method (IRLS) with a small ridge; bias first."""
    a = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(a.shape[1])
    ridge = L2 * np.eye(a.shape[1])
    ridge[0, 0] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + ridge @ w
        hess = a.T @ (a * (p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(w[0] + x @ w[1:])))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--sizes",
        default="400,2000",
        help="replica sizes in pages, comma-separated (default 400,2000): a topic has few"
        " pages on a small site and many on a large one, and the features move with that",
    )
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "bench")
    args = ap.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    sites = {
        (flavour, pages): ensure_migration(
            args.out / f"calibrate-topic-{flavour}-{pages}-{args.seed}", pages, args.seed, flavour
        )
        for flavour in FLAVOURS
        for pages in sizes
    }
    fits = []
    for boost in BOOSTS:
        parts = [collect(paths, boost) for paths in sites.values()]
        x = np.vstack([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        has = np.concatenate([p[2] for p in parts])
        w = fit(x, y)
        loss = log_loss(predict(w, x), y)
        fits.append((loss, boost, w, x, y, has))
        err.print(
            f"  prior boost {boost}: {len(y)} pages, {int(y.sum())} right at top 1, log-loss {loss:.4f}"
        )
    loss, boost, w, x, y, has = min(fits, key=lambda f: f[0])
    p = predict(w, x)
    thresholds = []
    for t in np.arange(0.3, 0.81, 0.05):
        accept = p >= t
        right = int((accept & (y == 1)).sum())
        kept = int((~accept & ~has).sum())
        thresholds.append(
            {
                "threshold": round(float(t), 2),
                "successor_found": right / max(1, int(has.sum())),
                "archive_kept": kept / max(1, int((~has).sum())),
                "right": right + kept,
            }
        )
    bins = []
    for lo in np.arange(0, 1, 0.1):
        sel = (p >= lo) & (p < lo + 0.1)
        if sel.any():
            bins.append(
                {
                    "predicted": f"{lo:.1f}-{lo + 0.1:.1f}",
                    "pages": int(sel.sum()),
                    "mean_predicted": round(float(p[sel].mean()), 3),
                    "right": round(float(y[sel].mean()), 3),
                }
            )
    coefficients = {"bias": round(float(w[0]), 3)} | {
        name: round(float(v), 3) for name, v in zip(FEATURES, w[1:], strict=True)
    }
    report = {
        "replicas": [f"{flavour} {pages} pages" for flavour, pages in sites],
        "seed": args.seed,
        "decided_by_topic_step": len(y),
        "with_successor": int(has.sum()),
        "prior_boost": boost,
        "log_loss": round(loss, 4),
        "calibration": coefficients,
        "thresholds": thresholds,
        "reliability": bins,
    }
    (args.out / "calibrate-topic.json").write_text(json.dumps(report, indent=2) + "\n")
    out.print(f"prior boost {boost}, log-loss {loss:.4f} over {len(y)} pages")
    out.print("CALIBRATION = " + json.dumps(coefficients))
    out.print("threshold  successor found  archive kept")
    for t in thresholds:
        out.print(
            f"  {t['threshold']:.2f}       {t['successor_found']:6.1%}        {t['archive_kept']:6.1%}"
        )
    out.print("predicted  pages  mean predicted  right")
    for b in bins:
        out.print(
            f"  {b['predicted']}  {b['pages']:5}  {b['mean_predicted']:.3f}  {b['right']:.3f}"
        )
    err.print(f"written {args.out / 'calibrate-topic.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
