"""A synthetic stand-in for the marketing-bias `df_electronics.csv` (Amazon Electronics, Wan et al., WSDM 2020),
in the file's exact columns, built on `helpers.data.synthetic`'s Electronics-shaped interactions.

    df = electronics_file_like(scale=1.0, seed=0)           # 1,292,954 rows, 1,157,633 users, 9,560 items
    write_electronics_file("data/raw/df_electronics.csv")    # then load("electronics") reads it, offline
    python -m helpers.data.synthetic --out data/raw/df_electronics.csv --scale 1.0 --seed 0

The real file: item_id,user_id,rating,timestamp,model_attr,category,brand,year,user_attr,split, rows like
`0,0,5.0,1999-06-13,Female,Portable Audio & Video,,1999,,0`. What is planted (segments by category, brands,
user genders known for a minority, a gender x segment preference and rating bonus) is in
electronics_file_like's docstring, with the figures an analysis should find.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.datasets import ELECTRONICS_BLOB, STANDIN_RECORD
from helpers.data.download import git_blob_sha1
from helpers.data.synthetic import ELECTRONICS_SHAPE, RATING_SHARES, draw_items, interaction_codes, item_probabilities
from helpers.files import ROOT, atomic_path, write_text

# The marketing-bias file's header, in order (Wan et al., WSDM 2020)
ELECTRONICS_COLUMNS = ["item_id", "user_id", "rating", "timestamp", "model_attr", "category", "brand", "year",
                       "user_attr", "split"]


# the generator's categories c0, c1, ... are named in this order (cycled with " 2", " 3", ... past ten)
CATEGORY_NAMES = ["Portable Audio & Video", "Headphones", "Home Audio", "Camera & Photo", "Computers & Accessories",
                  "Accessories & Supplies", "Television & Video", "Car Electronics & GPS", "Wearable Technology",
                  "Security & Surveillance"]


# model_attr, the gender of the product image: coded 0, 1, 2 in this order
SEGMENTS = ["Female", "Male", "Female&Male"]


# share of the items of each category (CATEGORY_NAMES' order) in each segment (SEGMENTS' order);
# the mean over categories is (0.145, 0.455, 0.40)
SEGMENT_SHARES = np.array([
    [0.22, 0.38, 0.40],  # Portable Audio & Video
    [0.14, 0.50, 0.36],  # Headphones
    [0.10, 0.50, 0.40],  # Home Audio
    [0.20, 0.40, 0.40],  # Camera & Photo
    [0.12, 0.45, 0.43],  # Computers & Accessories
    [0.15, 0.40, 0.45],  # Accessories & Supplies
    [0.10, 0.45, 0.45],  # Television & Video
    [0.06, 0.60, 0.34],  # Car Electronics & GPS
    [0.28, 0.32, 0.40],  # Wearable Technology
    [0.08, 0.55, 0.37],  # Security & Surveillance
])


# a fixed pool of 20 x 15 = 300 made-up brand names ("Acex", "Audtek", ...); which are popular depends on the seed
BRAND_NAMES = [a + b for a in ("Ac", "Aud", "Bel", "Cor", "Dyn", "Ech", "Fen", "Gal", "Hal", "Ion", "Jet", "Kor",
                               "Lum", "Mag", "Nov", "Orb", "Pix", "Quan", "Son", "Vol")
               for b in ("ex", "ia", "on", "tek", "ar", "ix", "is", "ora", "um", "ax", "io", "yx", "en", "ent", "ica")]


FIRST_DAY, LAST_DAY = np.datetime64("1999-01-01", "D"), np.datetime64("2018-12-31", "D")  # review dates


_SHAPE_KEYS = ["n_ratings", "n_users", "n_items", "item_alpha", "max_user_items", "n_categories", "affinity"]


def electronics_file_like(scale: float = 1.0, seed: int = 0, *, gender_known: float = 0.15, female_share: float = 0.35,
                          segment_affinity: float = 0.25, match_bonus: float = 0.2, n_brands: int = 300,
                          brand_missing: float = 0.25, **shape) -> pd.DataFrame:
    """A new DataFrame in exactly the columns of the marketing-bias `df_electronics.csv` (ELECTRONICS_COLUMNS).

        df = electronics_file_like(scale=1.0, seed=0)   # 1,292,954 rows, 1,157,633 users, 9,560 items
        # first row: 0,0,5.0,1999-01-08,Female&Male,Camera & Photo,,1999,,0 (written by write_electronics_file)

    Built on electronics_like's interactions (same power laws, favourite-category preference, no repeated pair,
    every item rated; `shape` takes its keywords n_ratings, n_users, n_items, item_alpha, max_user_items,
    n_categories, affinity). The catalogue keeps 9,560 items unless the scale is too small for two ratings
    per item on average (below scale 0.015: n_ratings // 2 items). Fully vectorised; deterministic for a seed.

    Columns as written in the real file: item_id, user_id int64 (0..n-1, numbered in order of first appearance);
    rating float64 in 1.0..5.0; timestamp str "YYYY-MM-DD"; model_attr "Female" | "Male" | "Female&Male";
    category one of CATEGORY_NAMES; brand str or NaN; year int64 1999-2018 (the item's); user_attr "Female" |
    "Male" | NaN; split int64 0 train, 1 valid, 2 test. Rows are in date order.

    Planted, so that an analysis finds them (measured at scale 1.0, seed 0, defaults):
    - items: model_attr drawn with category-dependent shares (SEGMENT_SHARES: Female from 6% in Car Electronics
      & GPS to 28% in Wearable Technology; overall about 15 / 45 / 40 %); brand from a Zipf (exponent 1) pool of
      `n_brands` names, 70% of items taking a brand whose home category is theirs, missing for `brand_missing`
      of items; year 1999-2018, skewed towards recent years;
    - users: every user has a gender (Female with probability `female_share`), known (user_attr written) for a
      random `gender_known` share of users, so unknown users are the same mix;
    - gender x segment preference: a share `segment_affinity` of each user's interactions is redrawn (by
      popularity) among the items of the same category in the segment of the user's gender (Female users ->
      Female segment, Male users -> Male segment); among known-gender users' interactions the Female share is
      then 0.63 in the Female segment, 0.23 in Male and 0.35 in Female&Male (all users: 0.35 Female);
    - ratings: stars = thresholds on item quality N(0, 0.5) + brand quality N(0, 0.25) + N(0, 1) noise, the
      thresholds giving Electronics' shares RATING_SHARES (mean about 4.2), plus a latent shift worth
      `match_bonus` stars on average where the segment is the user's gender (Female-Female, Male-Male), none on
      Female&Male: a two-way ANOVA of rating on model_attr x user_attr finds the interaction. Mean rating
      (Female users / Male users): Female segment 4.39 / 4.20, Male 4.21 / 4.41, Female&Male 4.13 / 4.13;
    - dates from January 1st of the item's year, exponential with mean 3 years, cut at 2018-12-31; split by
      date: the earliest 80% of rows 0, the next 10% 1 (2017), the latest 10% 2 (2018).
    Not planted: no gender x category preference, no gender effect on who has a known gender.
    """
    unknown = sorted(set(shape) - set(_SHAPE_KEYS))
    if unknown:
        raise ValueError(f"unknown keyword(s) {unknown}; electronics_file_like takes {_SHAPE_KEYS} besides its own")
    for name, value in (("gender_known", gender_known), ("female_share", female_share),
                        ("segment_affinity", segment_affinity), ("brand_missing", brand_missing)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if not 0 <= match_bonus <= 2:
        raise ValueError(f"match_bonus (stars) must be in [0, 2], got {match_bonus}")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale} (1.0 is the full 1.29M ratings)")
    n_ratings = int(shape.get("n_ratings") or round(ELECTRONICS_SHAPE["n_ratings"] * scale))
    shape = {"n_items": max(2, min(ELECTRONICS_SHAPE["n_items"], n_ratings // 2)), **shape}
    n_categories = int(shape.get("n_categories", 10))
    if not n_categories <= n_brands <= len(BRAND_NAMES) * 100:
        raise ValueError(f"n_brands must be in [n_categories={n_categories}, {len(BRAND_NAMES) * 100}], got {n_brands}")
    users, items, category, rng = interaction_codes(scale, shape.get("n_ratings"), shape.get("n_users"),
                                                    shape["n_items"], shape.get("item_alpha", 1.0),
                                                    shape.get("max_user_items"), n_categories,
                                                    shape.get("affinity", 0.6), seed)
    n_users, n_items = int(users.max()) + 1, len(category)

    # items: segment (category-dependent shares), year, brand (Zipf, mostly of the item's category)
    cum = np.cumsum(SEGMENT_SHARES[category % len(SEGMENT_SHARES)], axis=1)
    segment = (rng.random(n_items)[:, None] > cum[:, :2]).sum(axis=1)
    year = 1999 + np.minimum((20 * rng.beta(2.5, 1.5, size=n_items)).astype(np.int64), 19)
    home = rng.permutation(np.arange(n_brands) % n_categories)             # each brand's category
    brand_weight = rng.permutation(item_probabilities(n_brands, 1.0))      # popular brands differ per seed
    brand = draw_items(rng, category, home, brand_weight, n_categories, 0.7)
    brand[rng.random(n_items) < brand_missing] = n_brands                  # code for "no brand"
    quality = rng.normal(0.0, 0.5, size=n_items) + rng.normal(0.0, 0.25, size=n_brands + 1)[brand]

    # users: a gender for everyone (0 Female, 1 Male), written for a share of them
    gender = (rng.random(n_users) >= female_share).astype(np.int64)
    known = rng.random(n_users) < gender_known
    items = _redraw_in_segment(rng, users, items, category, segment, gender[users], segment_affinity, n_categories)

    # ratings: thresholds on a latent score, shifted where the segment matches the user's gender
    latent = quality[items] + rng.normal(0.0, 1.0, size=len(items))
    thresholds = np.quantile(latent, np.cumsum(RATING_SHARES)[:-1])
    match = segment[items] == gender[users]
    shift = _shift_worth(np.sort(latent), thresholds, match_bonus)
    rating = 1.0 + np.searchsorted(thresholds, latent + shift * match, side="right").astype(np.float64)

    # dates: an item is reviewed from January 1st of its year on, at a rate that halves about every 2 years
    # (exponential, mean 3 years, cut at LAST_DAY); rows in date order, ids by first appearance, split by date
    first = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    start = (first - FIRST_DAY).astype(np.int64)[items]
    span = (LAST_DAY - FIRST_DAY).astype(np.int64) + 1 - start
    mean_days = 3 * 365.25
    after = -mean_days * np.log1p(-rng.random(len(items)) * -np.expm1(-span / mean_days))  # in [0, span)
    day = start + np.minimum(after.astype(np.int64), span - 1)
    order = np.argsort(day, kind="stable")                                 # rows are already shuffled: ties random
    users, items, rating, day = users[order], items[order], rating[order], day[order]
    position = np.arange(len(items))
    split = (position >= 0.8 * len(items)).astype(np.int64) + (position >= 0.9 * len(items))
    user_code, user_first = pd.factorize(users)
    item_code, item_first = pd.factorize(items)
    brands = np.array(_brand_names(n_brands) + [np.nan], dtype=object)
    user_attr = np.where(known, gender, 2)
    return pd.DataFrame({
        "item_id": item_code.astype(np.int64),
        "user_id": user_code.astype(np.int64),
        "rating": rating,
        "timestamp": np.arange(FIRST_DAY, LAST_DAY + 1).astype(str).astype(object)[day],
        "model_attr": np.array(SEGMENTS, dtype=object)[segment[items]],
        "category": np.array(_category_names(n_categories), dtype=object)[category[items]],
        "brand": brands[brand[items]],
        "year": year[items],
        "user_attr": np.array(["Female", "Male", np.nan], dtype=object)[user_attr[users]],
        "split": split,
    })


def _category_names(n: int) -> list[str]:
    """CATEGORY_NAMES for codes 0..n-1, cycled with a suffix past ten: "Headphones", ..., "Headphones 2"."""
    k = len(CATEGORY_NAMES)
    return [CATEGORY_NAMES[c % k] + (f" {c // k + 1}" if c >= k else "") for c in range(n)]


def _brand_names(n: int) -> list[str]:
    """BRAND_NAMES for codes 0..n-1, cycled with a suffix past 300."""
    k = len(BRAND_NAMES)
    return [BRAND_NAMES[b % k] + (f" {b // k + 1}" if b >= k else "") for b in range(n)]


def _redraw_in_segment(rng, users, items, category, segment, target, share, n_categories) -> np.ndarray:
    """A new item array: a `share` of the rows whose item is not in the row's `target` segment get an item of the
    same category in that segment (drawn by popularity), keeping no repeated (user, item) and every item rated."""
    n_items = len(category)
    cell = category * 3 + segment                                          # (category, segment) of each item
    popularity = np.bincount(items, minlength=n_items).astype(np.float64)  # >= 1: every item is rated
    wanted = category[items] * 3 + target
    has_items = np.bincount(cell, minlength=3 * n_categories) > 0
    rows = np.flatnonzero((rng.random(len(items)) < share) & (segment[items] != target) & has_items[wanted])
    new = items.copy()
    new[rows] = draw_items(rng, wanted[rows], cell, popularity, 3 * n_categories, 1.0)
    # undo redraws that repeat a (user, item) or leave an item unrated, until none does (each pass undoes some)
    while True:
        changed = new != items
        code = users * n_items + new
        order = np.lexsort((changed, code))                                # unchanged rows first among equal pairs
        repeat = np.zeros(len(new), dtype=bool)
        repeat[order[1:]] = code[order][1:] == code[order][:-1]
        unrated = np.bincount(new, minlength=n_items) == 0
        lost = changed & unrated[items]
        undo = repeat.copy()
        undo[np.flatnonzero(lost)[np.unique(items[lost], return_index=True)[1]]] = True  # one row per lost item
        if not undo.any():
            return new
        new[undo] = items[undo]


def _shift_worth(sorted_latent: np.ndarray, thresholds: np.ndarray, stars: float) -> float:
    """The latent shift that raises the mean of searchsorted(thresholds, latent + shift) by `stars` (bisection)."""
    def mean_stars(shift):
        return (len(sorted_latent) - np.searchsorted(sorted_latent, thresholds - shift, side="left")).sum()

    target = mean_stars(0.0) + stars * len(sorted_latent)
    lo, hi = 0.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_stars(mid) < target else (lo, mid)
    return (lo + hi) / 2


def write_electronics_file(path, scale: float = 1.0, seed: int = 0, df: pd.DataFrame | None = None,
                           **shape) -> Path:
    """Write electronics_file_like(scale, seed, **shape) (or `df`, made by it) to `path` as df_electronics.csv
    (the exact header, empty cells for a missing brand or user_attr), atomically, and beside it the stand-in's
    record (PATH.standin.json: scale, seed, git blob hash), by which `load("electronics")` knows the file for a
    stand-in and not a damaged download; returns the path."""
    df = electronics_file_like(scale=scale, seed=seed, **shape) if df is None else df
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    record = {"what": "synthetic stand-in for df_electronics.csv (helpers.data.electronics_file)", "scale": scale,
              "seed": seed, **shape, "git_blob": git_blob_sha1(path)}
    write_text(Path(str(path) + STANDIN_RECORD), json.dumps(record, indent=1) + "\n")
    return path


def electronics_file_summary(df: pd.DataFrame) -> dict:
    """Rows, users, items, share of single-interaction users and share of users with a known gender (in [0, 1])
    of a frame in the df_electronics.csv columns."""
    per_user = np.bincount(pd.factorize(df["user_id"])[0])
    known = df.loc[df["user_attr"].notna(), "user_id"].nunique()
    return {"rows": int(len(df)), "users": int(len(per_user)), "items": int(df["item_id"].nunique()),
            "single_interaction_users": float((per_user == 1).mean()),
            "known_gender_users": float(known / max(len(per_user), 1))}


def _parser() -> argparse.ArgumentParser:
    p = _OneLineErrors(
        prog="python -m helpers.data.synthetic",
        description="Write a synthetic stand-in for the marketing-bias df_electronics.csv (Amazon Electronics, "
                    "Wan et al. 2020), in the file's exact columns; see electronics_file_like for what is planted.",
        epilog="example:\n  python -m helpers.data.synthetic --out data/raw/df_electronics.csv --scale 1.0 --seed 0\n"
               "  (scale 1.0: 1,292,954 ratings, 1,157,633 users, 9,560 items; load('electronics') then reads it)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "data" / "raw" / "df_electronics.csv"),
                   help="CSV to write (default data/raw/df_electronics.csv)")
    p.add_argument("--scale", type=float, default=1.0, help="share of the real file's ratings and users (default 1.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gender-known", type=float, default=0.15, help="share of users whose gender is written (default 0.15)")
    return p


class _OneLineErrors(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None) -> int:
    """Command line (see _parser); errors print one line on stderr and return 2."""
    args = _parser().parse_args(argv)
    try:
        if not args.scale > 0:
            raise ValueError(f"--scale must be > 0, got {args.scale} (1.0 is the full 1.29M ratings)")
        out = Path(args.out)
        if out.is_file() and _is_the_real_file(out):
            raise ValueError(f"{out} is the downloaded real df_electronics.csv; choose another --out or move it away")
        started = time.perf_counter()
        df = electronics_file_like(scale=args.scale, seed=args.seed, gender_known=args.gender_known)
        generated = time.perf_counter()
        write_electronics_file(out, args.scale, args.seed, df=df, gender_known=args.gender_known)
        written = time.perf_counter()
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = electronics_file_summary(df)
    print(f"{out}: {s['rows']:,} rows, {s['users']:,} users, {s['items']:,} items; "
          f"{s['single_interaction_users']:.1%} of users with one interaction, {s['known_gender_users']:.1%} with a "
          f"known gender; {out.stat().st_size / 1e6:.1f} MB (generated in {generated - started:.1f} s, "
          f"written in {written - generated:.1f} s)")
    return 0


def _is_the_real_file(path: Path) -> bool:
    return path.stat().st_size > 50_000_000 and git_blob_sha1(path) == ELECTRONICS_BLOB


if __name__ == "__main__":  # also `python -m helpers.data.electronics_file`
    sys.exit(main())
