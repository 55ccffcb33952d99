"""The download path against files served on 127.0.0.1 by the test itself: verified, atomic, clear offline errors."""
import hashlib
import http.server
import io
import threading
import zipfile
from functools import partial

import pytest

from helpers.data import datasets as data
from helpers.data.download import DownloadError, download, git_blob_sha1
from helpers.files import current_umask

CSV = (b"item_id,user_id,rating,timestamp,model_attr,category,brand,year,user_attr,split\n"
       b"0,0,5,1999-06-13,Female,Portable Audio & Video,,1999,,0\n"
       b"0,1,5,1999-06-14,Female,Portable Audio & Video,,1999,,0\n"
       b"1,1,3,2014-02-01,Male,Headphones,Sony,2014,Male,2\n")


def blob(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_git_blob_hash_matches_git(tmp_path):
    f = tmp_path / "x.csv"
    f.write_bytes(CSV)
    assert git_blob_sha1(f) == blob(CSV)
    assert blob(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's well-known empty blob


def test_download_verifies_and_caches(server, tmp_path):
    root, url = server
    (root / "df_electronics.csv").write_bytes(CSV)
    raw = tmp_path / "raw"
    out = download(f"{url}/df_electronics.csv", raw / "df_electronics.csv", git_blob=blob(CSV), progress=False)
    assert out.read_bytes() == CSV
    assert sorted(p.name for p in raw.iterdir()) == ["df_electronics.csv"]  # no temp file left
    (root / "df_electronics.csv").unlink()  # the cache is used from now on, no network needed
    assert download(f"{url}/df_electronics.csv", out, git_blob=blob(CSV), progress=False) == out


def test_corrupted_download_rejected_and_nothing_left(server, tmp_path):
    root, url = server
    (root / "df_electronics.csv").write_bytes(CSV[:-10] + b"corrupted\n")
    raw = tmp_path / "raw"
    with pytest.raises(DownloadError) as err:
        download(f"{url}/df_electronics.csv", raw / "df_electronics.csv", git_blob=blob(CSV), progress=False)
    msg = str(err.value)
    assert "git blob hash" in msg and str(raw / "df_electronics.csv") in msg and "\n" not in msg
    assert list(raw.iterdir()) == []


def test_offline_fails_with_one_line_saying_where_to_put_the_file(tmp_path):
    raw = tmp_path / "raw"
    with pytest.raises(DownloadError) as err:
        download("http://127.0.0.1:9/df_electronics.csv", raw / "df_electronics.csv", git_blob="0" * 40,
                 progress=False, timeout=5)
    msg = str(err.value)
    assert "offline?" in msg and f"save it as {raw / 'df_electronics.csv'}" in msg and "\n" not in msg
    assert list(raw.iterdir()) == []


def test_electronics_loader_downloads_then_loads(server, tmp_path, monkeypatch):
    root, url = server
    (root / "df_electronics.csv").write_bytes(CSV)
    monkeypatch.setattr(data, "ELECTRONICS_URL", f"{url}/df_electronics.csv")
    monkeypatch.setattr(data, "ELECTRONICS_BLOB", blob(CSV))
    df = data.load("electronics", raw_dir=tmp_path / "raw", verbose=False)
    assert len(df) == 3 and df["item_category"].tolist()[2] == "Headphones"
    assert df["brand"].isna().tolist() == [True, True, False]
    assert df["user_gender"].tolist()[2] == "M" and df["year"].tolist() == [1999, 1999, 2014]


def test_grouplens_fallback_reads_the_official_archive_layout(server, tmp_path, monkeypatch):
    """Without the recbole wheel, ml-100k comes from the GroupLens zip (md5-checked) and has the same schema."""
    root, url = server
    buf = io.BytesIO()
    genres = "|".join(["0", "0", "0", "1", "1", "1"] + ["0"] * 13)
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ml-100k/u.data", "196\t1\t3\t881250949\n186\t1\t4\t891717742\n")
        z.writestr("ml-100k/u.user", "196|49|M|writer|55105\n186|39|F|executive|00000\n")
        z.writestr("ml-100k/u.item", f"1|Toy Story (1995)|01-Jan-1995||http://x|{genres}\n")
    (root / "ml-100k.zip").write_bytes(buf.getvalue())
    md5 = hashlib.md5(buf.getvalue()).hexdigest()
    wheel = data.recbole_ml100k_dir()  # the real files, read below for their columns (before it is hidden)
    monkeypatch.setattr(data, "recbole_ml100k_dir", lambda: None)
    monkeypatch.setattr(data, "ML100K_URL", f"{url}/ml-100k.zip")
    monkeypatch.setattr(data, "ML100K_MD5", md5)
    df = data.load("ml-100k", raw_dir=tmp_path / "raw", verbose=False)
    assert df["item_category"].tolist() == ["Animation|Children's|Comedy"] * 2
    assert df["item_title"].iloc[0] == "Toy Story" and df["year"].iloc[0] == 1995
    assert df["user_gender"].tolist() == ["M", "F"]
    if wheel is not None:  # (load("ml-100k") here would fetch the test's archive into the repository's data/raw)
        assert list(df.columns) == list(data._ml100k_from_atomic(wheel).columns)
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["ml-100k", "ml-100k.zip"]
    assert (tmp_path / "raw" / "ml-100k").stat().st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700


def test_a_damaged_cache_is_refused_in_one_line_and_left_in_place(tmp_path):
    cached = tmp_path / "df_electronics.csv"
    cached.write_bytes(CSV[:-5])  # e.g. a copy cut short
    with pytest.raises(DownloadError) as err:
        download("http://127.0.0.1:9/df_electronics.csv", cached, git_blob=blob(CSV), progress=False)
    msg = str(err.value)
    assert msg.startswith(f"{cached}: the cached file does not match the published one (git blob hash")
    assert "delete it to download it again" in msg and "\n" not in msg and cached.read_bytes() == CSV[:-5]


def test_a_recorded_stand_in_is_read_and_an_edited_one_is_not(tmp_path):
    from helpers.data.electronics_file import write_electronics_file

    path = write_electronics_file(tmp_path / "df_electronics.csv", scale=0.002, seed=1)
    record = data.standin_record(path)
    assert record["scale"] == 0.002 and record["git_blob"] == git_blob_sha1(path)
    assert data.load("electronics", raw_dir=tmp_path, verbose=False)["user_id"].nunique() > 100
    with path.open("a") as f:
        f.write("9,9,5.0,2014-01-01,Male,Headphones,,2014,,0\n")  # changed after it was written
    assert data.standin_record(path) is None
    with pytest.raises(DownloadError, match="write it again with that command"):
        data.load("electronics", raw_dir=tmp_path, verbose=False)
