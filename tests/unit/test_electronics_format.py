"""The synthetic stand-in for the marketing-bias df_electronics.csv (helpers.data.electronics_file).

Measured at scale 0.02 (seed 0): 25,859 rows, 23,153 users, 9,560 items, 92.3% single-interaction users,
15.1% of users with a known gender; Female share of known-gender users' interactions 0.57 in the Female
segment, 0.25 in Male, 0.32 in Female&Male.
"""
import subprocess
import sys
import urllib.request

import numpy as np
import pandas as pd
import pytest

from helpers.data import datasets, market_bias
from helpers.data.electronics_file import (
    ELECTRONICS_COLUMNS,
    electronics_file_like,
    electronics_file_summary,
    main,
    write_electronics_file,
)

HEADER = "item_id,user_id,rating,timestamp,model_attr,category,brand,year,user_attr,split"


@pytest.fixture(scope="module")
def frame():
    return electronics_file_like(scale=0.02, seed=0)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_electronics_file(tmp_path_factory.mktemp("raw") / "df_electronics.csv", scale=0.01, seed=1)


def read_raw(path):
    return pd.read_csv(path, dtype={"item_id": str, "user_id": str})


def test_columns_and_values_as_in_the_real_file(frame):
    assert list(frame.columns) == ELECTRONICS_COLUMNS == HEADER.split(",")
    n_users, n_items = frame["user_id"].nunique(), frame["item_id"].nunique()
    assert frame["user_id"].dtype == np.int64 and set(frame["user_id"]) == set(range(n_users))
    assert frame["item_id"].dtype == np.int64 and set(frame["item_id"]) == set(range(n_items))
    assert set(frame["rating"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert set(frame["model_attr"]) == {"Female", "Male", "Female&Male"}
    assert set(frame["user_attr"].dropna()) == {"Female", "Male"}
    assert set(frame["split"]) == {0, 1, 2}
    assert frame["split"].value_counts(normalize=True).sort_index().round(2).tolist() == [0.8, 0.1, 0.1]
    assert "Headphones" in set(frame["category"]) and frame["category"].nunique() == 10
    assert frame["year"].between(1999, 2018).all()
    brand_missing = frame.groupby("item_id")["brand"].first().isna().mean()
    assert 0.2 < brand_missing < 0.3                              # measured 0.25
    assert not frame.duplicated(["user_id", "item_id"]).any()


def test_dates_parse_are_not_before_the_item_year_and_order_the_split(frame):
    day = pd.to_datetime(frame["timestamp"], format="%Y-%m-%d")
    assert frame["timestamp"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert (day.dt.year >= frame["year"]).all()
    assert day.max() <= pd.Timestamp("2018-12-31")
    assert day.is_monotonic_increasing                           # rows in date order
    by_split = day.groupby(frame["split"])
    assert (by_split.max().iloc[:-1].to_numpy() <= by_split.min().iloc[1:].to_numpy()).all()


def test_file_header_empty_cells_and_canonical_schema(written):
    with open(written) as f:
        header, first = f.readline().strip(), f.readline().strip()
    assert header == HEADER
    item, user, rating = first.split(",")[:3]
    assert (item, user) == ("0", "0") and rating in {"1.0", "2.0", "3.0", "4.0", "5.0"}
    assert ",," in open(written).read()                          # missing brand / user_attr are empty cells
    raw = read_raw(written)
    canonical = datasets.electronics_canonical(raw)
    assert len(canonical) == len(raw) and canonical["timestamp"].notna().all()
    per_user = canonical.groupby("user_id")["user_gender"].first()
    assert per_user.isna().mean() > 0.5                          # missing for most users
    assert abs(per_user.notna().mean() - 0.15) < 0.03            # near gender_known
    assert set(per_user.dropna()) == {"F", "M"}
    assert abs((per_user.dropna() == "F").mean() - 0.35) < 0.06
    assert set(canonical["original_split"]) == {0, 1, 2}


def test_gender_known_is_a_parameter():
    s = electronics_file_summary(electronics_file_like(scale=0.01, seed=0, gender_known=0.4))
    assert abs(s["known_gender_users"] - 0.4) < 0.03


def test_deterministic_for_a_seed():
    a = electronics_file_like(scale=0.005, seed=3)
    pd.testing.assert_frame_equal(a, electronics_file_like(scale=0.005, seed=3))
    assert not a.equals(electronics_file_like(scale=0.005, seed=4))


def segment_gender_table(raw: pd.DataFrame) -> pd.DataFrame:
    """The planted effects read through the project's one home for them (helpers.data.market_bias): per segment,
    the Female share of known-gender interactions, their count, the mean rating of Female and Male users."""
    df = datasets.electronics_canonical(raw)
    counts = market_bias.segment_gender_counts(df)
    means = market_bias.mean_rating_table(df).pivot(index="segment", columns="gender", values="mean_rating")
    return pd.DataFrame({"female_share": counts["share_of_segment"]["female"],
                         "interactions": counts["interactions"].sum(axis=1),
                         "rating_Female": means["female"], "rating_Male": means["male"]})


def test_planted_gender_by_segment_preference(frame):
    table = segment_gender_table(frame)
    share = table["female_share"]
    assert share["Female"] > share["Male"] + 0.2                 # measured 0.57 vs 0.25
    assert share["Female"] > share["Female&Male"] > share["Male"]
    assert table["interactions"].min() > 500


def test_planted_rating_bonus_when_segment_matches_gender():
    table = segment_gender_table(electronics_file_like(scale=0.1, seed=0))
    female_edge = table["rating_Female"] - table["rating_Male"]
    # +0.2 stars for Female users on Female items, for Male users on Male items (measured +0.10, -0.24, +0.02)
    assert female_edge["Female"] - female_edge["Male"] > 0.25
    assert abs(female_edge["Female&Male"]) < 0.1


def test_most_users_have_a_single_rating(frame):
    assert electronics_file_summary(frame)["single_interaction_users"] > 0.85


def test_unknown_keywords_and_bad_shares_are_refused():
    with pytest.raises(ValueError, match="unknown keyword"):
        electronics_file_like(scale=0.005, n_item=10)
    with pytest.raises(ValueError, match="gender_known"):
        electronics_file_like(scale=0.005, gender_known=1.5)
    with pytest.raises(ValueError, match="scale"):
        electronics_file_like(scale=0)


def test_load_electronics_reads_the_cached_file_without_the_network(tmp_path, monkeypatch):
    calls = []

    def offline(*args, **kwargs):
        calls.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    write_electronics_file(tmp_path / "df_electronics.csv", scale=0.005)
    df = datasets.load("electronics", raw_dir=tmp_path, verbose=False)
    assert calls == []
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp", "user_gender", "item_category", "year",
                                "brand", "model_attr", "original_split"]
    assert len(df) == 6465                                        # scale 0.005 of 1,292,954; no pair repeats
    assert df["user_id"].map(type).eq(str).all() and df["item_id"].map(type).eq(str).all()
    assert df["rating"].dtype == np.float32 and df["timestamp"].notna().all()


def test_command_line_writes_the_file(tmp_path, capsys):
    out = tmp_path / "sub" / "df_electronics.csv"
    assert main(["--out", str(out), "--scale", "0.005", "--seed", "2"]) == 0
    assert out.read_text().split("\n", 1)[0] == HEADER
    printed = capsys.readouterr().out
    assert "6,465 rows" in printed and "one interaction" in printed and "known gender" in printed
    pd.testing.assert_frame_equal(read_raw(out).astype({"item_id": int, "user_id": int}),
                                  read_raw(write_electronics_file(tmp_path / "b.csv", scale=0.005, seed=2))
                                  .astype({"item_id": int, "user_id": int}))


@pytest.mark.parametrize("argv", [["--scale", "-1"], ["--scale", "abc"], ["--gender-known", "2"]])
def test_command_line_rejects_bad_options(tmp_path, capsys, argv):
    out = tmp_path / "df_electronics.csv"
    try:
        status = main(["--out", str(out), *argv])
    except SystemExit as exc:                                     # argparse's own errors exit
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err
    assert not out.exists()


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--out data/raw/df_electronics.csv --scale 1.0" in capsys.readouterr().out


def test_python_m_helpers_data_synthetic_is_this_command_line():
    res = subprocess.run([sys.executable, "-m", "helpers.data.synthetic", "--scale", "-1"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.strip() == "error: --scale must be > 0, got -1.0 (1.0 is the full 1.29M ratings)"
