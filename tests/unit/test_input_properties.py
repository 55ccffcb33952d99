"""Property-based tests (Hypothesis) of what reads user input: the id normaliser, the CSV loader and the
command line's `score`. Random input either loads with the schema's invariants or fails with one ValueError
line (status 2 at the command line) naming the file; nothing else escapes, and a failure writes nothing."""
import contextlib
import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from helpers import cli
from helpers.data import load
from helpers.data.ids import MAX_ID_LENGTH, MISSING_ID_MARKERS, normalise_ids
from helpers.models import MostPopular

# derandomize: the same examples in every run (CI stays reproducible); a search at more examples, e.g. 3,000 with
# derandomize off, is how the cases in the @example lines below were found
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# ids as users write them: plain, padded, numeric-looking, unicode, markers of missing values, over-long
ID = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(sorted(MISSING_ID_MARKERS) + [" ", "\t", " u1 ", "007", "7", "1e3", "José", "日本", "a,b", '"q"']),
    st.integers(-10**20, 10**20).map(str),
    st.just("x" * (MAX_ID_LENGTH + 1)),
)
NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.sampled_from(["", "NA", "five", "1e30", "-0", "inf", "-inf", "nan", "4.5", " 3 ", "1,5", "3.4028235677973366e+38"]),
    st.integers(-10**400, 10**400).map(str),  # beyond float64: pandas' to_numeric raises OverflowError on these
)
# what a well-formed file holds (half the generated files use only these, so the success path is exercised too)
GOOD_ID = st.one_of(st.from_regex(r"\A[A-Za-z0-9_é日-]{1,8}\Z"), st.integers(0, 50).map(str),
                    st.sampled_from([" u1", "u2 ", "007", "7"]))
GOOD = {"user_id": GOOD_ID, "item_id": GOOD_ID, "rating": st.sampled_from(["1", "2.5", "5", "-3", "4.0"]),
        "timestamp": st.sampled_from(["874965758", "2014-02-01", "0"])}
TIMESTAMP = st.one_of(st.integers(-10**400, 10**400).map(str), st.sampled_from(["", "2014-02-01", "yesterday", "1e30",
                                                                             "2014-13-45", "874965758", "nan"]))


def _one_line_value_error(call):
    try:
        return call(), None
    except ValueError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        return None, message


@SETTINGS
@given(st.one_of(st.lists(ID, max_size=30), st.lists(GOOD_ID, max_size=30)))
def test_normalise_ids_strips_or_rejects_in_one_line(values):
    before = list(values)
    out, message = _one_line_value_error(lambda: normalise_ids(values, "user_id", "f.csv"))
    assert values == before  # not modified
    event("rejected" if message is not None else "normalised")
    if message is not None:
        assert message.startswith("f.csv: column 'user_id' has") and "data row" in message
        return
    assert len(out) == len(values) and out.dtype == object
    for raw, got in zip(values, out):
        assert got == raw.strip() and 0 < len(got) <= MAX_ID_LENGTH and got not in MISSING_ID_MARKERS


def _cell(text: str) -> str:
    """A CSV cell: quoted when it holds a separator, quote or line break (as a spreadsheet would write it)."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


@st.composite
def csv_files(draw):
    columns = draw(st.sampled_from([["user_id", "item_id"], ["user_id", "item_id", "rating"],
                                    ["user_id", "item_id", "rating", "timestamp"], ["item_id", "user_id", "rating"],
                                    ["user_id", "rating"]]))
    hostile = draw(st.booleans())
    cells = {"user_id": ID, "item_id": ID, "rating": NUMBER, "timestamp": TIMESTAMP} if hostile else GOOD
    rows = draw(st.lists(st.tuples(*[cells[c] for c in columns]), max_size=12))
    quote = draw(st.booleans())
    lines = [",".join(columns)] + [",".join(_cell(v) if quote else v for v in row) for row in rows]
    if draw(st.booleans()) and rows:  # a duplicated row
        lines.append(lines[-1])
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + ("\n" if draw(st.booleans()) else "")
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]) if hostile else st.just("utf-8"))
    return text.encode(encoding, errors="replace")


@SETTINGS
@given(csv_files())
@example(b"user_id,item_id,rating\n0,0,0.0\n0,1,3.4028235677973366e+38")  # finite in float64, inf in float32
@example(b"user_id,item_id,rating\n0,0,1\n1,0," + b"9" * 400)  # pandas' to_numeric raised OverflowError
@example(b"user_id,item_id,timestamp\n0,0,1e30\n")  # became -9.2e18 silently
@example(b"user_id,item_id,timestamp\n0,0,2014-02-01T10:00:00+02:00\n1,0,-5\n")  # raised OutOfBoundsDatetime
def test_the_csv_loader_keeps_the_schema_or_fails_in_one_line(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_bytes(content)
        df, message = _one_line_value_error(lambda: load(f"csv:{path}", verbose=False))
        assert sorted(p.name for p in Path(folder).iterdir()) == ["in.csv"]  # nothing written either way
    event("rejected" if message is not None else "loaded")
    if message is not None:
        assert str(path) in message
        return
    assert list(df.columns[:4]) == ["user_id", "item_id", "rating", "timestamp"] and len(df) >= 1
    for col in ("user_id", "item_id"):
        ids = df[col].tolist()
        assert all(isinstance(v, str) and v == v.strip() and 0 < len(v) <= MAX_ID_LENGTH
                   and v not in MISSING_ID_MARKERS for v in ids)
    assert np.isfinite(df["rating"].to_numpy(dtype=np.float64)).all()
    assert not df.duplicated(["user_id", "item_id"]).any()
    assert str(df["timestamp"].dtype) == "Int64"
    if df["timestamp"].notna().any():
        assert df["timestamp"].notna().all() and (df["timestamp"].abs() < 2 ** 62).all()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    train = pd.DataFrame({"user_id": ["u1", "u1", "u2", "007", "José"], "item_id": ["i1", "i2", "i1", "i3", "i2"]})
    return MostPopular().fit(train).save(tmp_path_factory.mktemp("model") / "popular_implicit.pth")


@st.composite
def pairs_files(draw):
    columns = draw(st.sampled_from([["user_id", "item_id"], ["item_id", "user_id", "extra"], ["user_id"]]))
    hostile = draw(st.booleans())
    known_users, known_items = st.sampled_from(["u1", " u1", "007", "José ", "u9"]), st.sampled_from(["i1", "i2 ", "i3", "i7"])
    cells = {"user_id": st.one_of(ID, known_users) if hostile else known_users,
             "item_id": st.one_of(ID, known_items) if hostile else known_items, "extra": NUMBER}
    rows = draw(st.lists(st.tuples(*[cells[c] for c in columns]), max_size=10))
    text = "\n".join([",".join(columns)] + [",".join(_cell(v) for v in row) for row in rows])
    return text.encode(draw(st.sampled_from(["utf-8", "latin-1"]) if hostile else st.just("utf-8")), errors="replace")


@SETTINGS
@given(pairs_files())
def test_score_from_the_command_line_writes_every_row_or_one_line_and_status_2(model_file, content):
    with tempfile.TemporaryDirectory() as folder:
        pairs, out = Path(folder) / "pairs.csv", Path(folder) / "scores.csv"
        pairs.write_bytes(content)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = cli.main(["score", "--model", str(model_file), "--pairs", str(pairs), "--out", str(out)])
        lines = err.getvalue().splitlines()
        assert status in (0, 2) and len(lines) == 1
        event(f"status {status}")
        if status == 2:
            assert lines[0].startswith("error: ") and str(pairs) in lines[0] and not out.exists()
            return
        scores = pd.read_csv(out, dtype={"user_id": str, "item_id": str}, keep_default_na=False,
                             na_values={"score": ["", "nan"]})
        given_rows = pd.read_csv(pairs, dtype=str, keep_default_na=False)
        assert len(scores) == len(given_rows)
        assert scores["user_id"].tolist() == [v.strip() for v in given_rows["user_id"]]
        known = scores["user_id"].isin(["u1", "u2", "007", "José"]) & scores["item_id"].isin(["i1", "i2", "i3"])
        assert scores.loc[known, "score"].map(math.isfinite).all() and scores.loc[~known, "score"].isna().all()


RANGES = {"--epochs": (1, int), "--batch-size": (1, int), "--patience": (1, int), "--seed": (0, int),
          "--lr": (0.0, float), "--wd": (0.0, float)}


@SETTINGS
@given(st.sampled_from(sorted(RANGES)), st.one_of(st.text(max_size=8), st.integers(-10**6, 10**6).map(str),
                                                  st.floats().map(repr), st.sampled_from(["1e400", "-0", "0x10", "٣"])))
def test_numeric_options_parse_in_range_or_fail_in_one_line(option, value):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = cli.parser().parse_args(["train", "--train", "t.csv", "--out", "m.pth", f"{option}={value}"])
        except SystemExit as exc:
            lines = err.getvalue().splitlines()
            assert exc.code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0]
            event("rejected")
            return
    event("accepted")
    low, kind = RANGES[option]
    got = getattr(args, option[2:].replace("-", "_"))
    assert isinstance(got, kind) and math.isfinite(got)
    assert got > low if option == "--lr" else got >= low
