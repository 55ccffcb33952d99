"""Look at what a reader sees, in a real browser (Debian's chromium, headless, driven by Playwright):

1. `reports/index.html`: every link resolves to a file; a screenshot.
2. JupyterLab with `explore.ipynb`: run all cells, wait for the explorer widget, screenshot; move the popularity
   slider and check the re-ranked list changes; choose another user and check the header, history and lists
   change; screenshots after each step.
3. The rendered `reports/explore.html`: the static view is there (history, lists, reasons); a screenshot.

    make run                                   # the reports and models the pages show
    pip install -r benchmarks/requirements-browser.txt
    .venv/bin/python benchmarks/browser_check.py   # -> benchmarks/logs/browser/*.png and browser_check.md

JupyterLab runs on a copy of the notebook in a temporary folder (its data/ and model/ linked to the repository's),
so running the cells never writes into the repository's notebook. Exit status 1 when a check fails.
"""
from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

from playwright.sync_api import sync_playwright

from helpers.files import write_text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "logs" / "browser"


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            if tag in ("a", "img") and attrs.get(key):
                self.links.append(attrs[key])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_landing(page, reports: Path, checks: list) -> None:
    index = reports / "index.html"
    parser = Links()
    parser.feed(index.read_text())
    local = [link for link in parser.links if not re.match(r"^[a-z]+:", link)]
    missing = [link for link in local if not (reports / link).exists()]
    checks.append(("landing page links resolve", not missing, f"{len(local)} local links, missing: {missing or 'none'}"))
    page.set_viewport_size({"width": 1300, "height": 1000})
    page.goto(index.as_uri())
    page.screenshot(path=str(OUT / "landing.png"), full_page=True)
    text = page.inner_text("body")
    checks.append(("landing page shows the ranking table", "Ranking (implicit-task models)" in text and
                   "collabnn (default)" in text, f"{len(text):,} characters of text"))


def check_rendered(page, reports: Path, checks: list) -> None:
    page.goto((reports / "explore.html").as_uri())
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / "explore_html.png"))
    text = page.inner_text("body")
    checks.append(("rendered explore.html has the static view",
                   all(s in text for s in ("The static view: one user", "Why each item is recommended",
                                           "training interactions", "✓")), "history, lists, reasons present"))


def panel_text(page, marker: str) -> str:
    return page.locator(".jp-OutputArea-output").filter(has_text=marker).last.inner_text()


def check_lab(page, notebook: Path, checks: list, timeout_s: int, data_dir: Path, model_dir: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="browser-check-"))
    for name, target in (("data", data_dir), ("model", model_dir)):
        (work / name).symlink_to(Path(target).resolve(), target_is_directory=True)
    shutil.copy(notebook, work / notebook.name)
    port = free_port()
    lab = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
                            "--ServerApp.token=", "--ServerApp.password=", "--LabApp.expose_app_in_browser=True",
                            f"--ServerApp.root_dir={work}", "--ServerApp.disable_check_xsrf=True", "--allow-root"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/lab/tree/{notebook.name}"
        for _ in range(60):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        page.set_viewport_size({"width": 1400, "height": 2200})
        page.goto(url)
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
        page.wait_for_function("window.jupyterapp && window.jupyterapp.commands.hasCommand('notebook:run-all-cells')",
                               timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        page.wait_for_timeout(2000)
        start = time.time()  # execute() returns a promise that page.evaluate awaits: the cells have run after it
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_selector(".widget-vbox .widget-dropdown select", state="attached", timeout=timeout_s * 1000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_s * 1000)
        except Exception:
            page.screenshot(path=str(OUT / "lab_failure.png"))
            raise
        checks.append(("explorer widget renders in JupyterLab", True, f"all cells ran and the widget rendered {time.time() - start:.0f} s after 'run all'"))
        widget = page.locator(".widget-vbox").filter(has_text="Re-rankers").first
        news = page.get_by_role("button", name="No")  # JupyterLab's "notified about Jupyter news?" toast
        if news.count():
            news.first.click()

        def shot(name: str, part: str) -> None:  # the widget's top (or the re-ranking part) in view, the page as seen
            target = widget if part == "top" else widget.locator(".widget-slider").filter(has_text="affinity").first
            target.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(800)
            page.screenshot(path=str(OUT / name))

        shot("lab_explorer.png", "top")
        header = widget.locator("h3").first.inner_text()
        lists_before = widget.inner_text()
        checks.append(("explorer shows titles and reasons", "Star Wars" in lists_before or "(exact)" in lists_before,
                       f"header '{header}'; '(exact)' reasons {'shown' if '(exact)' in lists_before else 'absent'}"))
        # the popularity slider: type a new value into its readout (ipywidgets 8: an editable readout)
        slider = widget.locator(".widget-slider").filter(has_text="popularity").first
        readout = slider.locator(".widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("-1")
        page.keyboard.press("Enter")
        page.wait_for_function("document.body.innerText.includes('popularity -1.00')", timeout=60_000)
        page.wait_for_timeout(500)
        shot("lab_explorer_slider.png", "sliders")
        after_slider = widget.inner_text()
        checks.append(("slider re-ranks the list", "popularity -1.00" in after_slider and after_slider != lists_before,
                       "a 'popularity -1.00' column appeared"))
        # another user
        select = widget.locator(".widget-dropdown").filter(has_text="user").locator("select").first
        options = select.locator("option").all_inner_texts()
        other = next(o for o in options if f"User {o}" != header)
        select.select_option(label=other)
        page.wait_for_function(f"document.body.innerText.includes('User {other}')", timeout=60_000)
        page.wait_for_timeout(500)
        shot("lab_explorer_user.png", "top")
        after_user = widget.inner_text()
        checks.append(("choosing a user redraws the panels", f"User {other}" in after_user and after_user != after_slider,
                       f"user {header.removeprefix('User ')} -> {other}"))
    finally:
        lab.terminate()
        lab.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium",
                    help="the browser to drive (default: Debian's chromium; `apt-get install chromium`)")
    ap.add_argument("--reports", default=str(ROOT / "reports"), help="folder with index.html and explore.html")
    ap.add_argument("--data-dir", default=str(ROOT / "data"), help="the split the notebook reads (make run's)")
    ap.add_argument("--model-dir", default=str(ROOT / "model"), help="the models the notebook loads (make run's)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds to wait for the notebook to run in JupyterLab")
    args = ap.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"no browser at {args.chromium}: `apt-get install chromium`, or pass --chromium PATH", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    reports, checks = Path(args.reports), []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        check_landing(page, reports, checks)
        check_rendered(page, reports, checks)
        check_lab(page, ROOT / "explore.ipynb", checks, args.timeout, Path(args.data_dir), Path(args.model_dir))
        browser.close()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [f"# Browser check (commit {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             "`.venv/bin/python benchmarks/browser_check.py`; screenshots beside this file.", "",
             "| check | passed | detail |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if ok else 'NO'} | {detail} |" for name, ok, detail in checks]
    write_text(OUT / "browser_check.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
