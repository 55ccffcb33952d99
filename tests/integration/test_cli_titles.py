"""`recommend --titles`: alone it takes the titles of the dataset recorded in the model (ml-100k; a CSV dataset's
item_title column), `--titles ml-100k|electronics:PATH|TITLES.csv` names the source; the recommendations keep their
rows and order and gain item_title (and item_category) columns, empty for an item the source lacks; a dataset
without titles says so in one line; an unusable source is one line with status 2 and writes nothing."""

import numpy as np
import pandas as pd
import pytest
import torch
from cli_in_process import run

from helpers.data import load
from helpers.data.electronics_file import write_electronics_file
from helpers.files import ROOT

COMMITTED = ROOT / "model" / "collabnn_implicit.pth"  # ml-100k, random split, seed 0


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two CSV-trained models (30 users x 20 items): `titled.pth` on a CSV with an item_title column for items i0-i9,
    `plain.pth` on the same rows without it; and an electronics stand-in with a model trained on it."""
    root = tmp_path_factory.mktemp("titles")
    rng = np.random.default_rng(0)
    items = rng.integers(0, 20, 600)
    train = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 30, 600)], "item_id": [f"i{i}" for i in items],
                          "item_title": [f"Title {i}, part {i}" if i < 10 else "" for i in items]})
    train.to_csv(root / "titled.csv", index=False)
    train.drop(columns="item_title").to_csv(root / "plain.csv", index=False)
    standin = write_electronics_file(root / "df_electronics.csv", scale=0.001, seed=0)
    for name, csv in (("titled", root / "titled.csv"), ("plain", root / "plain.csv"), ("electronics", standin)):
        status, lines = run("train", "--train", csv, "--out", root / f"{name}.pth", "--epochs", 1, "--device", "cpu")
        assert status == 0, lines
    payload = torch.load(root / "electronics.pth", weights_only=True)
    payload["metadata"]["dataset"] = f"electronics:{standin}"  # as training.ipynb records it
    torch.save(payload, root / "electronics_dataset.pth")
    payload["metadata"].pop("dataset")
    torch.save(payload, root / "no_dataset.pth")
    return root


def test_titles_alone_take_the_ml100k_titles_of_the_committed_model(folder):
    users = folder / "users.csv"
    users.write_text("user_id\n1\n42\nnobody\n")
    plain_status, _ = run("recommend", "--model", COMMITTED, "--users", users, "--k", 5, "--out", folder / "ids.csv")
    status, lines = run("recommend", "--model", COMMITTED, "--users", users, "--k", 5, "--titles", "--out",
                        folder / "auto.csv")
    assert plain_status == 0 and status == 0, lines
    recs, ids = read(folder / "auto.csv"), read(folder / "ids.csv")
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score", "item_title", "item_category"]
    assert recs[list(ids.columns)].equals(ids)  # the same rows in the same order
    ml = load("ml-100k", verbose=False).drop_duplicates("item_id").set_index("item_id")
    assert recs["item_title"].tolist() == ml.loc[recs["item_id"], "item_title"].tolist()
    assert recs["item_category"].tolist() == ml.loc[recs["item_id"], "item_category"].tolist()
    assert (recs["item_title"] != "").all() and "item_title from ml-100k" in lines[-1]
    status, _ = run("recommend", "--model", COMMITTED, "--users", users, "--k", 5, "--titles", "ml-100k", "--out",
                    folder / "named.csv")
    assert status == 0 and read(folder / "named.csv").equals(recs)


def test_titles_alone_take_a_csv_datasets_item_title_column(folder):
    status, lines = run("recommend", "--model", folder / "titled.pth", "--k", 3, "--titles", "--out", folder / "t.csv")
    recs = read(folder / "t.csv")
    assert status == 0, lines
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score", "item_title"]
    number = recs["item_id"].str[1:].astype(int)
    expected = [f"Title {i}, part {i}" if i < 10 else "" for i in number]  # i10-i19: an empty cell
    assert recs["item_title"].tolist() == expected
    assert f"({int((number >= 10).sum()):,} of {len(recs):,} rows with an item it does not list: empty)" in lines[-1]


def test_a_titles_csv_names_the_source_and_movielens_column_names_are_read(folder):
    (folder / "movies.csv").write_text('movieId,title,genres\ni1,"Amélie, ""Le fabuleux""",Comedy|Romance\n'
                                       "i2,Heat,\n")
    status, lines = run("recommend", "--model", folder / "plain.pth", "--k", 20, "--titles", folder / "movies.csv",
                        "--out", folder / "m.csv")
    assert status == 0, lines
    recs = read(folder / "m.csv")
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score", "item_title", "item_category"]
    by_item = recs.drop_duplicates("item_id").set_index("item_id")
    assert by_item.loc["i1", "item_title"] == 'Amélie, "Le fabuleux"' and by_item.loc["i1", "item_category"] == "Comedy|Romance"
    assert by_item.loc["i2", "item_title"] == "Heat" and by_item.loc["i2", "item_category"] == ""
    assert (by_item.drop(index=["i1", "i2"])[["item_title", "item_category"]] == "").all().all()


def test_a_dataset_without_titles_says_so_in_one_line_and_fills_the_categories(folder):
    status, lines = run("recommend", "--model", folder / "electronics_dataset.pth", "--k", 3, "--titles", "--out",
                        folder / "e.csv")
    assert status == 0, lines
    assert len(lines) == 2 and "has no item titles: item_title is left empty" in lines[0], lines
    recs = read(folder / "e.csv")
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score", "item_title", "item_category"]
    assert (recs["item_title"] == "").all() and (recs["item_category"] != "").all()


@pytest.mark.parametrize("model, source, expected", [
    ("plain.pth", None, "csv:"),  # a CSV dataset without an item_title column
    ("plain.pth", "missing.csv", "missing.csv not found"),
    ("plain.pth", ".", "is a folder"),
    ("plain.pth", "empty.csv", "is empty"),
    ("plain.pth", "no_id.csv", "has no item_id column"),
    ("plain.pth", "no_title.csv", "has no item titles or categories"),
    ("plain.pth", "conflict.csv", "gives item 'i1' 2 different titles or categories; list each item once"),
    ("plain.pth", "ml-100k", "none of the model's 20 items is listed there"),
    ("no_dataset.pth", None, "records no dataset to take titles from"),
])
def test_an_unusable_source_is_one_line_with_status_2_and_writes_nothing(folder, model, source, expected):
    (folder / "empty.csv").write_text("")
    (folder / "no_id.csv").write_text("item,item_title\ni1,A\n")
    (folder / "no_title.csv").write_text("item_id,name\ni1,A\n")
    (folder / "conflict.csv").write_text("item_id,item_title\ni1,A\ni2,B\ni1,A\ni1,C\n")
    titles = ["--titles"] + ([] if source is None else [source if source == "ml-100k" else folder / source])
    status, lines = run("recommend", "--model", folder / model, "--k", 3, *titles, "--out", folder / "never.csv")
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: --titles"), lines
    assert expected in lines[0] and "--titles TITLES.csv" in lines[0], lines[0]
    assert not (folder / "never.csv").exists()
