"""The data layer: real ml-100k sizes and schema, CSV loading, bad input rejected with one clear line."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers.data.datasets import drop_duplicate_pairs, explode_categories, load, recbole_ml100k_dir, sample_users
from helpers.files import ROOT


def test_ml100k_sizes_and_schema(ml100k):
    df = ml100k
    assert recbole_ml100k_dir() is not None, "the recbole wheel's ml-100k files should be installed"
    assert len(df) == 100_000
    assert df["user_id"].nunique() == 943
    assert df["item_id"].nunique() == 1682
    assert list(df.columns[:4]) == ["user_id", "item_id", "rating", "timestamp"]
    assert {"user_gender", "item_category", "year", "user_age", "user_occupation", "item_title"} <= set(df.columns)
    assert set(df["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert set(df["user_gender"].unique()) == {"M", "F"}
    assert df.groupby("user_id").size().min() == 20  # every ml-100k user rated at least 20 movies
    assert df.drop_duplicates("user_id")["user_gender"].value_counts().to_dict() == {"M": 670, "F": 273}
    assert df["timestamp"].min() == 874724710 and df["timestamp"].max() == 893286638
    assert df["year"].dropna().between(1922, 1998).all()
    toy = df[df["item_id"] == "1"].iloc[0]
    assert toy["item_title"] == "Toy Story" and toy["year"] == 1995
    assert toy["item_category"] == "Animation|Children's|Comedy"
    assert pd.api.types.is_string_dtype(df["user_id"]) and pd.api.types.is_string_dtype(df["item_id"])
    assert df.attrs["duplicates_dropped"] == 0


def test_categories_explode_counts_each_genre(ml100k):
    e = explode_categories(ml100k.head(1000))
    per_row = ml100k.head(1000)["item_category"].str.count(r"\|") + 1
    assert len(e) == int(per_row.sum())
    assert not e["item_category"].str.contains(r"\|").any()


def test_csv_roundtrip_and_configurable_columns(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("uid,iid,stars,when\nu1,i1,5,100\nu1,i2,3,200\nu2,i1,4,300\n")
    df = load(f"csv:{f}", user_col="uid", item_col="iid", rating_col="stars", timestamp_col="when")
    assert df[["user_id", "item_id"]].values.tolist() == [["u1", "i1"], ["u1", "i2"], ["u2", "i1"]]
    assert df["rating"].tolist() == [5.0, 3.0, 4.0]
    assert df["timestamp"].tolist() == [100, 200, 300]


def test_csv_without_rating_is_implicit_and_ids_stay_strings(tmp_path):
    f = tmp_path / "implicit.csv"
    f.write_text("user_id,item_id\n007,0042\n007,0043\n")
    df = load(f"csv:{f}")
    assert df["user_id"].tolist() == ["007", "007"] and df["item_id"].tolist() == ["0042", "0043"]
    assert (df["rating"] == 1.0).all()
    assert df["timestamp"].isna().all()


def test_duplicates_keep_latest_and_are_counted(tmp_path, capsys):
    f = tmp_path / "dups.csv"
    f.write_text("user_id,item_id,rating,timestamp\na,x,1,300\na,x,5,100\na,y,2,50\nb,x,4,10\na,x,3,200\n")
    df = load(f"csv:{f}")
    assert df.attrs["duplicates_dropped"] == 2
    assert df.loc[(df.user_id == "a") & (df.item_id == "x"), "rating"].tolist() == [1.0]  # timestamp 300
    assert len(df) == 3
    assert "dropped 2 duplicated" in capsys.readouterr().out


def test_drop_duplicates_does_not_mutate_input():
    df = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "x"], "rating": [1.0, 2.0],
                       "timestamp": pd.array([2, 1], dtype="Int64")})
    before = df.copy()
    out, n = drop_duplicate_pairs(df)
    pd.testing.assert_frame_equal(df, before)
    assert n == 1 and out["rating"].tolist() == [1.0]


BAD = {
    "missing_item": ("user_id,rating\n1,5\n", "missing column 'item_id'"),
    "non_numeric_rating": ("user_id,item_id,rating\n1,2,five\n", "column 'rating' has 1 missing, non-numeric or "
                           "non-finite value(s), the first 'five' at data row 1"),
    "infinite_rating": ("user_id,item_id,rating\n1,2,4\n1,3,inf\n", "the first 'inf' at data row 2; ratings must be "
                        "finite"),
    "missing_rating": ("user_id,item_id,rating\n1,2,\n", "column 'rating' has 1 missing"),
    "empty": ("", "is empty; expected a header line"),
    "header_only": ("user_id,item_id,rating\n", "no rows"),
    "nan_ids": ("user_id,item_id,rating\n1,,5\n", "column 'item_id' has 1 missing id(s), the first '' at data row 1"),
    "blank_id": ("user_id,item_id\n1,2\n   ,5\n", "column 'user_id' has 1 missing id(s), the first '   ' at data row 2"),
    "na_marker_id": ("user_id,item_id\nnull,2\n", "the first 'null' at data row 1"),
    "long_id": ("user_id,item_id\n1," + "x" * 300 + "\n", "an id of 300 characters at data row 1"),
    "huge_timestamp": ("user_id,item_id,timestamp\n1,2,1e30\n", "has value '1e+30' at data row 1, not a unix time"),
    "bad_timestamp": ("user_id,item_id,timestamp\n1,2,yesterday-ish\n", "column 'timestamp' has unreadable value"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv_rejected_with_one_line_naming_file_and_column(tmp_path, case):
    text, expected = BAD[case]
    f = tmp_path / f"{case}.csv"
    f.write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError) as err:
        load(f"csv:{f}")
    msg = str(err.value)
    assert expected in msg and str(f) in msg and "\n" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("name", ["ml-1m", "csv:", "", "movielens"])
def test_unknown_dataset_rejected(name):
    with pytest.raises(ValueError, match="unknown dataset .* choose one of"):
        load(name)


def test_bad_csv_from_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    f = tmp_path / "BAD.csv"
    f.write_text("user_id,rating\n1,5\n")
    before = set(ROOT.rglob("*.csv"))
    r = subprocess.run([sys.executable, "-c", f"from helpers.data import load; load('csv:{f}')"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"ValueError: {f}: missing column 'item_id'; found ['user_id', 'rating']; "
        "name the column with load(..., item_col=...)")
    assert set(ROOT.rglob("*.csv")) == before


def test_sample_users_keeps_whole_histories(ml100k):
    s = sample_users(ml100k, 5000, seed=1)
    assert 5000 <= len(s) < 5000 + ml100k.groupby("user_id").size().max()
    full = ml100k.groupby("user_id").size()
    sampled = s.groupby("user_id").size()
    assert (sampled == full.loc[sampled.index]).all()
    assert s.equals(sample_users(ml100k, 5000, seed=1))
    assert sample_users(ml100k, 0) is ml100k


def test_electronics_columns_map_to_canonical_schema():
    from helpers.data.datasets import electronics_canonical

    raw = pd.DataFrame({"item_id": [0, 1], "user_id": [7, 8], "rating": [5, 3], "timestamp": ["1999-06-13", "2014-01-01"],
                        "model_attr": ["Female", "Male"], "category": ["Headphones", "Home Audio"],
                        "brand": ["Sony", np.nan], "year": [1999, 2014], "user_attr": [np.nan, "Female"],
                        "split": [0, 2]})
    df = electronics_canonical(raw)
    assert df["user_id"].tolist() == ["7", "8"]
    assert df["timestamp"].tolist() == [929232000, 1388534400]
    assert df["user_gender"].isna().tolist() == [True, False] and df["user_gender"].iloc[1] == "F"
    assert df["item_category"].tolist() == ["Headphones", "Home Audio"]
    with pytest.raises(ValueError, match="missing column"):
        electronics_canonical(raw.drop(columns="brand"))


def test_a_file_that_is_not_utf8_is_named_in_one_line(tmp_path):
    f = tmp_path / "latin1.csv"
    f.write_bytes("user_id,item_id\nJosé,1\n".encode("latin-1"))
    with pytest.raises(ValueError) as err:
        load(f"csv:{f}")
    assert str(err.value) == (f"interactions file {f} is not UTF-8 text (it has byte 0xe9, invalid in UTF-8); "
                              "save it as UTF-8")


def test_looking_up_ids_costs_the_vocabulary_width_not_the_longest_id():
    """One 100,000-character id among 100,000 values: numpy's fixed-width strings would take 100,000 x 100,000 x 4
    bytes (37 GiB) for the lookup; it takes the vocabulary's width (measured with tracemalloc, which sees numpy)."""
    import tracemalloc

    from helpers.data import encode_ids

    vocabulary = np.array(sorted(f"u{i}" for i in range(1000)))
    values = [f"u{i % 1000}" for i in range(100_000)]
    values[7] = "x" * 100_000
    tracemalloc.start()
    try:
        positions = encode_ids(values, vocabulary)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200e6 and positions[7] == -1 and (positions[:7] >= 0).all()
    assert vocabulary[positions[8]] == "u8"
