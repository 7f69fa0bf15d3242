"""Reports: the loader, the narrative and tables for people, ``custval report`` end to end,
and the rendered HTML in a real browser (headless Chromium over the DevTools protocol).

The end-to-end render runs once per module (fixture ``rendered``) on the sample with small
size parameters. The browser check serves the output folder on a loopback ``http.server`` and
opens the index and one report in a fresh headless Chromium: no console errors, no failed
requests, every image loaded, and a full-page screenshot in the test's tmp folder (kept by
pytest under its basetemp, e.g. ``/tmp/pytest-of-$USER/pytest-current/``). It is skipped with
the reason when Chromium is absent; ``.ci/run`` installs Debian's chromium so CI runs it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import html.parser
import http.server
import json
import math
import os
import re
import shutil
import signal
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import custval
from custval import reports
from custval.cli import main
from custval.reports import story, tables

# One worker renders the module-scoped reports (``rendered``, ``injected``, ``investment``) once;
# spread over two, each worker would render them again.
pytestmark = pytest.mark.xdist_group("reports")

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    override = os.environ.get("CUSTVAL_CHROMIUM")
    for candidate in ((override,) if override else ()) + CHROMIUM_CANDIDATES:
        path = shutil.which(candidate) if not os.path.isabs(candidate) else candidate
        if path and os.access(path, os.X_OK):
            return path
    return None


@dataclass
class PageReport:
    """What the browser saw on one page."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    title: str = ""
    screenshot: Path | None = None
    dialogs: list[str] = field(default_factory=list)
    downloads: list[list] = field(default_factory=list)  # [href, HTTP status] of CSV links

    @property
    def broken_images(self) -> list[dict]:
        return [i for i in self.images if not (i["complete"] and i["naturalWidth"] > 0)]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # no request log on stderr
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    socketserver.TCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


class _DevTools:
    """A minimal DevTools-protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        self.dialogs: list[str] = []

    def _post(self, method: str, **params: object) -> int:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def _receive(self) -> dict:
        """The next message; a JavaScript dialog (alert, confirm, prompt) is recorded and
        dismissed at once, so a page that opens one still finishes loading."""
        message = json.loads(self.ws.recv())
        if message.get("method") == "Page.javascriptDialogOpening":
            params = message.get("params", {})
            self.dialogs.append(f"{params.get('type')}: {params.get('message')}")
            self._post("Page.handleJavaScriptDialog", accept=False)
        return message

    def send(self, method: str, **params: object) -> dict:
        message_id = self._post(method, **params)
        while True:
            message = self._receive()
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method} failed: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            message = self._receive()
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(f"no {method} within {timeout} s")

    def drain(self, seconds: float) -> None:
        """Collect events for a while (late console messages, image decodes)."""
        self.ws.settimeout(0.2)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.append(self._receive())
            except Exception:  # a timeout ends a quiet spell
                continue
        self.ws.settimeout(60)

    def close(self) -> None:
        self.ws.close()


@contextlib.contextmanager
def chromium(executable: str) -> Iterator[int]:
    """A headless Chromium with a fresh profile; yields its DevTools port."""
    # Chromium's helper processes (zygote, renderer, crashpad) can outlive the browser and still
    # write to the profile: run it as its own process group, end the whole group, and let the
    # profile's removal retry instead of failing the test.
    with tempfile.TemporaryDirectory(
        prefix="custval-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [
                executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "--window-size=1280,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and port_file.read_text().strip()):
                if process.poll() is not None:
                    raise RuntimeError(f"chromium exited with code {process.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError("chromium did not open its DevTools port within 60 s")
                time.sleep(0.1)
            yield int(port_file.read_text().split()[0])
        finally:
            _end_group(process)
            for _ in range(50):  # helpers that were still writing are gone; remove the profile
                shutil.rmtree(profile, ignore_errors=True)
                if not os.path.exists(profile):
                    break
                time.sleep(0.1)


def _end_group(process: subprocess.Popen) -> None:
    """Terminate ``process`` and every process of its group (SIGTERM, then SIGKILL)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(0.2)  # let the group's other members act on the signal


def inspect_page(
    executable: str, url: str, screenshot: Path | None = None, *, width: int = 1280
) -> PageReport:
    """Load ``url`` and report console errors, failed requests and images; screenshot it."""
    with chromium(executable) as port:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            target = json.load(response)
        tools = _DevTools(target["webSocketDebuggerUrl"])
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                tools.send(f"{domain}.enable")
            tools.send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            tools.send("Page.navigate", url=url)
            tools.wait_for("Page.loadEventFired")
            tools.drain(1.0)
            state = tools.send(
                "Runtime.evaluate",
                expression="JSON.stringify({title: document.title, images: "
                "Array.from(document.images).map(i => ({src: i.src.slice(0, 40), "
                "complete: i.complete, naturalWidth: i.naturalWidth}))})",
                returnByValue=True,
            )["result"]["value"]
            report = PageReport(url=url, **json.loads(state))
            report.downloads = tools.send(
                "Runtime.evaluate",
                expression="Promise.all(Array.from(document.querySelectorAll('a[href$=\".csv\"]'))"
                ".map(a => fetch(a.href).then(r => r.text().then(t => [a.getAttribute('href'), "
                "r.status, t.split('\\n')[0]]))))",
                awaitPromise=True,
                returnByValue=True,
            )["result"]["value"]
            for event in tools.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.consoleAPICalled" and params.get("type") in {
                    "error",
                    "assert",
                }:
                    report.console_errors.append(
                        " ".join(
                            str(a.get("value", a.get("description", ""))) for a in params["args"]
                        )
                    )
                elif method == "Runtime.exceptionThrown":
                    details = params.get("exceptionDetails", {})
                    report.console_errors.append(
                        details.get("exception", {}).get("description", details.get("text", ""))
                    )
                elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                    report.console_errors.append(params["entry"].get("text", ""))
                elif method == "Network.loadingFailed":
                    report.failed_requests.append(params.get("errorText", ""))
            if screenshot is not None:
                metrics = tools.send("Page.getLayoutMetrics")
                size = metrics.get("cssContentSize") or metrics["contentSize"]
                shot = tools.send(
                    "Page.captureScreenshot",
                    format="png",
                    captureBeyondViewport=True,
                    clip={
                        "x": 0,
                        "y": 0,
                        "width": width,
                        "height": min(size["height"], 16000),
                        "scale": 1,
                    },
                )
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                report.screenshot = screenshot
            report.dialogs = list(tools.dialogs)
            return report
        finally:
            tools.close()


SMALL = [
    *("--param", "n_draws=20"),
    *("--param", "backtest_cutoffs=2"),
    *("--param", "importance_samples=300"),
    *("--param", "n_bootstrap=30"),
    *("--param", "n_folds=3"),
]

SECTION_TITLES = {
    "01-customer-base": [
        "Our customer base",
        "The data: what is used and what is left out",
        "Customers and revenue over time",
        "How often new customers come back",
        "Customer segments by recency and frequency",
    ],
    "02-customer-value": [
        "Who our most valuable customers are",
        "First, the evidence: how well each model predicts purchases it has not seen",
        "The most valuable customers",
        "How concentrated value is",
        "How certain these values are",
    ],
    "03-churn-risk": [
        "Who is slipping away",
        "First, the evidence: how well churn can be predicted",
        "Valuable and at risk",
    ],
    "04-relationship-investment": [
        "Where relationship investment pays back",
        "Did the campaign pay back?",
        "The loyalty programme (observational)",
        "Whom to contact next",
        "Payback of acquisition by channel",
        "The plan by segment",
    ],
}


# --- the browser helper (DevTools protocol over websocket-client) ------------------------------


# --- HTML text ---------------------------------------------------------------------------------


class _VisibleText(html.parser.HTMLParser):
    """The text a reader sees: everything outside <style>, <script> and tags."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in {"style", "script"}:
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script"}:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _VisibleText()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


# --- unit tests: loader, aggregates, story, tables ---------------------------------------------


@pytest.fixture(scope="module")
def sample_data():
    return reports.load_report_data()


def _log(rows):
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"])
    )


def test_load_report_data_sample_reconciles(sample_data):
    assert sample_data.is_sample
    assert sample_data.cleaning.reconciles
    assert sample_data.cleaning.rows_dropped["excluded_code"] > 0  # postage
    assert (
        sample_data.customers["customer_id"].dtype == sample_data.transactions["customer_id"].dtype
    )
    assert set(sample_data.campaign["customer_id"]) >= set(
        sample_data.transactions["customer_id"].unique()
    )


def test_load_report_data_from_files_maps_columns(tmp_path):
    raw = pd.DataFrame(
        {
            "Invoice": ["1", "1", "2", "C3"],
            "Code": ["A", "POST", "A", "A"],
            "Qty": [2, 1, 1, -1],
            "Price": [5.0, 3.0, 5.0, 5.0],
            "When": ["2024-01-02 10:00", "2024-01-02 10:00", "2024-02-01 09:00", "2024-02-03"],
            "Cust": [7.0, 7.0, 7.0, 7.0],
        }
    )
    path = tmp_path / "log.csv"
    raw.to_csv(path, index=False)
    customers = tmp_path / "customers.csv"
    pd.DataFrame({"Cust": [7.0], "channel": ["search"], "acquisition_date": ["2024-01-02"]}).to_csv(
        customers, index=False
    )
    data = reports.load_report_data(
        path,
        customers,
        columns={
            "customer_id": "Cust",
            "timestamp": "When",
            "quantity": "Qty",
            "unit_price": "Price",
            "order_id": "Invoice",
            "product_code": "Code",
        },
        cleaning={"exclude_codes": "online-retail"},
    )
    assert not data.is_sample
    assert data.transactions["amount"].sum() == pytest.approx(10.0)
    assert data.cleaning.rows_dropped["excluded_code"] == 1
    assert data.customers["customer_id"].tolist() == ["7"]
    assert pd.api.types.is_datetime64_any_dtype(data.customers["acquisition_date"])
    assert data.campaign is None


def test_load_report_data_refuses_dates_it_cannot_read(tmp_path):
    path = tmp_path / "log.csv"
    pd.DataFrame(
        {"customer_id": ["7", "7"], "timestamp": ["2024-01-02", "2024-02-01"], "amount": [5.0, 6.0]}
    ).to_csv(path, index=False)
    customers = tmp_path / "customers.csv"
    pd.DataFrame(
        {"customer_id": ["7", "8"], "acquisition_date": ["2024-01-02", "next spring"]}
    ).to_csv(customers, index=False)
    with pytest.raises(
        custval.DataError,
        match=r"column 'acquisition_date' has 1 values that are not dates \(rows 1 \('next spring'",
    ):
        reports.load_report_data(path, customers)
    # an empty cell is a missing date, kept as NaT
    pd.DataFrame({"customer_id": ["7", "8"], "acquisition_date": ["2024-01-02", None]}).to_csv(
        customers, index=False
    )
    data = reports.load_report_data(path, customers)
    assert data.customers["acquisition_date"].isna().tolist() == [False, True]


def test_load_report_data_refuses_unknown_preset(tmp_path):
    with pytest.raises(custval.DataError, match="unknown exclude_codes preset 'nope'"):
        reports.load_report_data(tmp_path / "x.csv", cleaning={"exclude_codes": "nope"})


def test_activity_by_period_flags_partial_months():
    log = _log(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-02-10", 5.0),
            ("b", "2024-02-11", 7.0),
            ("b", "2024-03-05", 1.0),
        ]
    )
    activity = reports.activity_by_period(log, period="M")
    assert activity["revenue"].tolist() == [10.0, 12.0, 1.0]
    assert activity["active_customers"].tolist() == [1, 2, 1]
    assert activity["new_customers"].tolist() == [1, 1, 0]
    assert activity["partial"].tolist() == [False, False, True]


def test_cohort_retention_shares_and_unobserved_cells():
    log = _log(
        [
            ("a", "2024-01-05", 1.0),
            ("a", "2024-02-05", 1.0),
            ("b", "2024-01-07", 1.0),
            ("c", "2024-02-01", 1.0),
            ("c", "2024-03-31", 1.0),
        ]
    )
    retention = reports.cohort_retention(log, period="M", min_size=1)
    assert retention.loc["2024-01-01", 0] == 1.0
    assert retention.loc["2024-01-01", 1] == 0.5
    assert retention.loc["2024-02-01", 1] == 1.0
    assert math.isnan(retention.loc["2024-02-01", 2])  # March is only partly observed
    assert retention.attrs["sizes"].tolist()[:2] == [2, 1]


def test_markdown_escapes_dollars_once():
    assert story.markdown("costs $5 and $6") == r"costs \$5 and \$6"
    assert story.markdown([r"already \$5", "", "next"]) == "already \\$5\n\nnext"


@pytest.mark.parametrize(
    ("horizon", "words"),
    [
        ("12M", "12 months"),
        ("1Y", "1 year"),
        ("52W", "52 weeks"),
        ("inf", "the customer's whole future"),
    ],
)
def test_horizon_words(horizon, words):
    assert story.horizon_words(horizon) == words


def test_cleaning_story_and_table_reconcile(sample_data):
    report = sample_data.cleaning
    text = story.cleaning(report)
    assert "&#36;" in text and "accounted for" in text  # the currency, never maths
    table = tables.cleaning(report).data
    assert table.columns.tolist() == ["", "Lines", "Share of lines", "Revenue"]
    assert table.iloc[0, 0] == "In the file" and table.iloc[-1, 0] == "Used in the reports"
    lines = [int(v.replace(",", "").replace("−", "-")) for v in table["Lines"]]
    assert lines[0] + sum(lines[1:-1]) == lines[-1]


def test_story_numbers_come_from_the_data(sample_data):
    data = sample_data
    activity = reports.activity_by_period(data.transactions, observation_end=data.observation_end)
    retention = reports.cohort_retention(data.transactions, observation_end=data.observation_end)
    summary = custval.rfm_summary(data.transactions, freq="W")
    segment_table = reports.segment_summary(custval.rfm_segments(summary), data.transactions)
    assert segment_table["customers"].sum() == data.transactions["customer_id"].nunique()
    assert segment_table["revenue_share"].sum() == pytest.approx(1.0)
    sentences = story.customer_base_summary(data, activity, retention, segment_table)
    assert 3 <= len(sentences) <= 5
    customers = f"{data.transactions['customer_id'].nunique():,}"
    assert sentences[0].startswith(customers)
    champions = segment_table.loc["Champions"]
    assert f"{100 * champions['revenue_share']:.0f}%" in story.segments_title(segment_table)
    shown = tables.segments(segment_table).data
    assert "Segment" in shown.columns and len(shown) == len(segment_table)


def test_people_table_formats_and_hides_index():
    frame = pd.DataFrame({"Name": ["a", "b"], "Value": [1234.5, np.nan]})
    styler = tables.people_table(frame, {"Value": custval._format.money})
    assert styler.data["Value"].tolist() == ["$1,234", ""]
    assert "Name" in styler.to_html() and '<th class="blank' not in styler.to_html()


def test_retention_assumptions_say_where_the_save_rate_comes_from(sample_data):
    data = dataclasses.replace(sample_data, customers=None, campaign=None, truth=None)
    assert reports.campaign_effects(data) == (None, None)
    rate, source, cost = reports.retention_assumptions(data, None, assumed_save_rate=0.2)
    assert (rate, cost) == (0.2, 2.5) and source.startswith("an assumption")
    rate, source, cost = reports.retention_assumptions(
        sample_data, None, save_rate=0.05, cost_per_contact=1.0
    )
    assert (rate, cost, source) == (0.05, 1.0, "given for this report")
    assert (
        "assumed save rate"
        in story.investment_summary(None, _Headline("ROI"), None, _Headline("Plan"), save_rate=0.2)[
            0
        ]
    )


class _Headline:
    def __init__(self, headline: str) -> None:
        self.headline = headline


def test_margin_to_apply_only_for_revenue_tables():
    revenue = pd.DataFrame({"clv": [1.0]})
    revenue.attrs["value_basis"] = "revenue"
    profit = revenue.copy()
    profit.attrs["value_basis"] = "contribution"
    assert reports.margin_to_apply(revenue, 1.0) == 1.0
    assert reports.margin_to_apply(profit, 0.3) is None


def test_cli_report_refuses_bad_arguments(capsys):
    assert main(["report", "--sample", "--transactions", "x.csv", "--no-progress"]) == 2
    assert "either --sample or --transactions" in capsys.readouterr().err
    assert main(["report", "--sample", "--param", "n_draws", "--no-progress"]) == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err


def test_setup_notebook_and_show_give_images_with_alt_text(monkeypatch):
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    # setup_notebook sets the process's rcParams (titles on the left, ...): keep them to this test
    with mpl.rc_context():
        reports.setup_notebook()
        _, ax = plt.subplots()
        ax.set_title("Revenue rose 5%")
        reports.figures.show(ax)
    (image,) = shown
    assert image.alt == "Revenue rose 5%" and image.data[:4] == b"\x89PNG"
    assert not plt.get_fignums()


# --- custval report end to end -----------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """``custval report`` on the sample, once per test session even across xdist workers."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent  # this session's, shared by workers
    else:
        shared = tmp_path_factory.getbasetemp()
    out = shared / "custval-report-sample"
    with _locked(shared / "custval-report-sample.lock"):
        if not (out / "index.html").exists():
            code = main(["report", "--sample", "--out", str(out), "--no-progress", *SMALL])
            assert code == 0
    return out


def test_report_writes_every_page(rendered):
    assert (rendered / "index.html").exists()
    for stem in reports.NOTEBOOKS:
        assert (rendered / f"{stem}.html").exists()
        assert (rendered / "full" / f"{stem}.html").exists()
        assert reports.read_findings(rendered / "findings" / f"{stem}.json")["summary"]


@pytest.mark.parametrize("stem", list(reports.NOTEBOOKS))
def test_report_pages_read_well(rendered, stem):
    page = (rendered / f"{stem}.html").read_text(encoding="utf-8")
    full = (rendered / "full" / f"{stem}.html").read_text(encoding="utf-8")
    text = visible_text(page)
    for title in SECTION_TITLES.get(stem, [reports.NOTEBOOKS[stem]]):
        assert title in text, f"{stem} lacks the section {title!r}"
    assert "data:image/png;base64" in page
    for version, content in (("report", text), ("full", visible_text(full))):
        for word in ("Traceback", "Warning", "Error"):
            assert word not in content, f"{word!r} in the {version} version of {stem}"
    # No raw object reprs or unrendered Markdown in the marketing version.
    for fragment in ("<Axes", "<Figure", "<matplotlib", "Styler object", "**", "\\$"):
        assert fragment not in text, f"{fragment!r} in {stem}"
    assert "import custval" not in text and "import custval" in visible_text(full)
    head = page.split("</head>")[0]
    assert not re.search(r"(src|href)=\"https?://", head), "resources loaded from the internet"


@pytest.mark.parametrize("stem", list(reports.NOTEBOOKS))
def test_every_notebook_executes_cleanly(rendered, stem):
    executed = json.loads((rendered / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    for index, cell in enumerate(executed["cells"]):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"cell {index}: {output.get('evalue')}"
            if output["output_type"] == "stream":
                assert output["name"] != "stderr", f"cell {index} wrote to stderr: {output}"
            data = output.get("data", {})
            if set(data) == {"text/plain"}:  # shown as text: no richer form to show instead
                shown = json.dumps(data["text/plain"])
                for fragment in ("<Axes", "<Figure", "<matplotlib", "Styler", "object at 0x"):
                    assert fragment not in shown, f"cell {index} shows {shown}"
            if "image/png" in output.get("data", {}):
                assert output["metadata"]["image/png"]["alt"], f"cell {index}: image without alt"
    summary = reports.read_findings(rendered / "findings" / f"{stem}.json")["summary"]
    assert 3 <= len(summary) <= 5
    assert all(isinstance(s, str) and s.endswith(".") for s in summary)


def test_index_summarises_every_report(rendered):
    text = visible_text((rendered / "index.html").read_text(encoding="utf-8"))
    for stem, title in reports.NOTEBOOKS.items():
        assert title in text
        for sentence in reports.read_findings(rendered / "findings" / f"{stem}.json")["summary"]:
            assert " ".join(sentence.split()) in text


# --- a real browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium_path():
    path = find_chromium()
    if path is None:
        pytest.skip(
            "Chromium is not installed (looked for /usr/bin/chromium and chromium on PATH); "
            "install it with `apt-get install -y chromium` (.ci/run does) to check the reports "
            "in a real browser"
        )
    pytest.importorskip("websocket", reason="websocket-client (the test extra) is needed")
    return path


@pytest.mark.parametrize(
    "page", ["index.html", "02-customer-value.html", "04-relationship-investment.html"]
)
def test_reports_load_in_a_real_browser(rendered, chromium_path, tmp_path, page):
    screenshot = tmp_path / page.replace(".html", ".png")
    with serve(rendered) as base:
        result = inspect_page(chromium_path, f"{base}/{page}", screenshot)
    assert result.console_errors == []
    assert result.failed_requests == []
    assert result.broken_images == []
    assert result.dialogs == []
    if page in ("index.html", "04-relationship-investment.html"):
        # the download links resolve: the browser fetches each CSV
        assert [status for _, status, _ in result.downloads] == [200, 200], result.downloads
        assert all(head.startswith("customer_id,") for _, _, head in result.downloads)
    if page != "index.html":
        assert len(result.images) >= 3
    assert screenshot.stat().st_size > 10_000
    assert result.title


# --- the real UCI Online Retail data -----------------------------------------------------------


@pytest.mark.slow
def test_report_renders_on_online_retail(online_retail_path, tmp_path):
    out = tmp_path / "online-retail"
    code = main(
        [
            "report",
            "--transactions",
            str(online_retail_path),
            "--customer-id",
            "CustomerID",
            "--timestamp",
            "InvoiceDate",
            "--quantity",
            "Quantity",
            "--unit-price",
            "UnitPrice",
            "--order-id",
            "InvoiceNo",
            "--product-code",
            "StockCode",
            "--exclude-codes",
            "online-retail",
            "--currency",
            "£",
            "--out",
            str(out),
            "--no-progress",
            *SMALL,
        ]
    )
    assert code == 0
    for stem in reports.NOTEBOOKS:
        text = visible_text((out / f"{stem}.html").read_text(encoding="utf-8"))
        for word in ("Traceback", "Warning", "Error"):
            assert word not in text
        assert "£" in text or stem != "01-customer-base"
    assert "4,3" in reports.read_findings(out / "findings" / "01-customer-base.json")["summary"][0]
    # no campaign: the investment report says so, and whom to contact rests on an assumption
    investment = reports.read_findings(out / "findings" / "04-relationship-investment.json")
    assert investment["summary"][0].startswith("No randomized campaign was given")
    assert "assumed save rate, not measured" in investment["summary"][1]
    text = visible_text((out / "04-relationship-investment.html").read_text(encoding="utf-8"))
    assert "needs a randomized campaign table" in text and "£" in text
    for download in investment["downloads"]:
        assert (out / download["path"]).is_file()


# --- nothing from the data or the options becomes markup --------------------------------------

PAYLOADS = (
    "<script>alert(1)</script>",
    '<b onmouseover="alert(2)">seg</b>',
    "<img src=x onerror=alert(3)>",
    "javascript:alert(4)",
    "[click](javascript:alert(5))",
    "![x](http://e/x.png)",
)
INJECTED_CURRENCY = "<i>$</i><script>alert(6)</script>"


def _payload(i: int) -> str:
    return PAYLOADS[i % len(PAYLOADS)]


@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    """The reports rendered from a log, customer and campaign tables whose every text field
    (ids, product codes, channels, regions, campaign segments, the file names and the
    currency) holds an HTML/JavaScript/Markdown payload."""
    sample = custval.load_sample()
    keep = sample.customers["customer_id"].iloc[:1500]
    ids = {c: f"{_payload(int(c))}#{c}" for c in keep}
    folder = tmp_path_factory.mktemp("injected")
    log = sample.transactions
    log = log[log["customer_id"].isin(keep)].copy()
    log["customer_id"] = log["customer_id"].map(ids)
    log["product_code"] = [
        "POST" if code == "POST" else f"{_payload(i)}{code}"
        for i, code in enumerate(log["product_code"])
    ]
    customers = sample.customers[sample.customers["customer_id"].isin(keep)].copy()
    customers["customer_id"] = customers["customer_id"].map(ids)
    for column, offset in (("channel", 0), ("region", 3)):
        names = sorted(customers[column].unique())
        mapping = {n: f"{_payload(offset + k)} {n}" for k, n in enumerate(names)}
        customers[column] = customers[column].map(mapping)
    campaign = sample.campaign[sample.campaign["customer_id"].isin(keep)].copy()
    campaign["customer_id"] = campaign["customer_id"].map(ids)
    campaign["segment"] = campaign["segment"].map(
        {"member": PAYLOADS[1], "non_member": PAYLOADS[4]}
    )
    paths = {}
    for name, frame in (("transactions", log), ("customers", customers), ("campaign", campaign)):
        paths[name] = folder / f"{PAYLOADS[2]} {name}.csv"  # a file name with markup
        frame.to_csv(paths[name], index=False)
    out = folder / "reports"
    small = {"n_draws": 20, "backtest_cutoffs": 2, "importance_samples": 300}
    reports.render(
        out,
        transactions=paths["transactions"],
        customers=paths["customers"],
        campaign=paths["campaign"],
        columns={"product_code": "product_code", "order_id": "order_id"},
        cleaning={"exclude_codes": ["POST"]},
        margin=0.3,
        currency=INJECTED_CURRENCY,
        parameters={**small, "n_bootstrap": 30, "n_folds": 3},
        progress=False,
    )
    return out


def _injected_markup(page: str) -> list[str]:
    """Elements and attributes in ``page`` that came from a payload."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, "html.parser")
    found = []
    for tag in soup.find_all(True):
        for name, value in tag.attrs.items():
            text = " ".join(value) if isinstance(value, list) else str(value)
            if name.lower().startswith("on"):
                found.append(f"<{tag.name} {name}={text!r}>")
            if name.lower() in {"href", "src", "action", "formaction"} and (
                text.strip().lower().startswith("javascript:") or text in {"x", "http://e/x.png"}
            ):
                found.append(f"<{tag.name} {name}={text!r}>")
        if tag.name == "script" and ("alert(" in (tag.string or "") or tag.get("src")):
            found.append(f"<script>{tag.string}</script>")
        if tag.name in {"b", "i"} and tag.get_text() in {"seg", "$"}:
            found.append(f"<{tag.name}>{tag.get_text()}</{tag.name}>")
        if tag.name == "a" and tag.get_text() in {"click", "javascript:alert(4)"}:
            found.append(f"<a>{tag.get_text()}</a>")
        if tag.name == "img" and tag.get("alt") == "x":
            found.append("<img alt=x>")
    return found


def test_escape_helpers_leave_no_markup():
    from nbconvert.filters.markdown import markdown2html

    from custval._format import escape_html, escape_markdown

    for payload in (*PAYLOADS, INJECTED_CURRENCY):
        shown = markdown2html(f"Segment **{escape_markdown(payload)}** and $5")
        assert _injected_markup(shown) == [], payload
        assert payload in visible_text(shown)  # shown as the text it is, not dropped
        assert _injected_markup(f"<p>{escape_html(payload)}</p>") == []
    assert "<strong>" in markdown2html(f"**{escape_markdown('Champions')}**")
    # The check itself finds each payload when it is not escaped.
    for payload in (*PAYLOADS[:3], *PAYLOADS[4:], INJECTED_CURRENCY):
        assert _injected_markup(markdown2html(f"Segment {payload}")), payload


def test_people_table_escapes_cells_and_headers():
    frame = pd.DataFrame({PAYLOADS[0]: [PAYLOADS[1], PAYLOADS[2]], "n": [1, 2]})
    styler = tables.people_table(frame, {"n": str}, caption=PAYLOADS[4])
    page = styler.to_html()
    assert _injected_markup(page) == []
    assert PAYLOADS[1] in visible_text(page) and PAYLOADS[0] in visible_text(page)
    assert styler.data.iloc[0, 0] == PAYLOADS[1]  # the data stays as it is


def test_key_findings_show_sentences_as_text():
    from nbconvert.filters.markdown import markdown2html

    shown = markdown2html(story.key_findings([f"Segment {p} grew." for p in PAYLOADS]))
    assert _injected_markup(shown) == []
    for payload in PAYLOADS:
        assert payload in visible_text(shown)


@pytest.mark.slow
def test_reports_turn_no_user_text_into_markup(injected):
    pages = sorted(injected.glob("*.html")) + sorted((injected / "full").glob("*.html"))
    assert len(pages) == 1 + 2 * len(reports.NOTEBOOKS)
    for path in pages:
        page = path.read_text(encoding="utf-8")
        assert _injected_markup(page) == [], path.name
    investment = visible_text((injected / "04-relationship-investment.html").read_text())
    assert PAYLOADS[1] in investment  # the campaign segment, shown as text
    value = visible_text((injected / "02-customer-value.html").read_text())
    assert "#" in value and any(p in value for p in PAYLOADS)  # customer ids, as text
    index = visible_text((injected / "index.html").read_text())
    assert f"{PAYLOADS[2]} transactions.csv" in index


@pytest.mark.slow
@pytest.mark.parametrize("page", ["index.html", "04-relationship-investment.html"])
def test_injected_reports_open_no_dialog_in_a_real_browser(injected, chromium_path, page):
    with serve(injected) as base:
        result = inspect_page(chromium_path, f"{base}/{urllib.request.quote(page)}")
    assert result.dialogs == []
    assert result.console_errors == []


# --- the investment report: payback, whom to contact, the lists, and that they agree ------------


@pytest.fixture(scope="module")
def investment(sample_data):
    """The investment report's numbers on the sample, as notebook 04 computes them."""
    data = sample_data
    value_table = reports.customer_values(data, margin=0.3, n_draws=0)
    churn = custval.churn_scores(data.transactions, horizon="90D", n_threads=1)
    value_table["churn_probability"] = churn.reindex(value_table.index).fillna(1.0)
    revenue, _ = reports.campaign_effects(data, n_bootstrap=0, n_folds=3)
    targets, targeting = reports.contact_targets(
        data,
        value_table,
        revenue,
        margin=0.3,
        cost_per_contact=2.5,
        save_rate=0.1,
        n_bootstrap=30,
    )
    return value_table, revenue, targets, targeting


def test_summary_plan_and_list_agree_in_signs_and_totals(investment, tmp_path):
    value_table, revenue, targets, targeting = investment
    payback = custval.invest.campaign_payback(revenue, margin=0.3, cost_per_contact=2.5)
    plan = reports.targets_by_segment(targets)
    n, net = targets.attrs["n_contact"], targets.attrs["net_return"]
    assert targets.attrs["basis"] == "measured" and n > 0
    # the list: every contacted customer's predicted profit exceeds the cost, no other's does
    assert (targets.loc[targets["contact"], "net_value"] > 0).all()
    assert (targets.loc[~targets["contact"], "net_value"] <= 0).all()
    assert targets["net_value"].to_numpy() == pytest.approx(
        (targets["predicted_incremental_profit"] - 2.5).to_numpy()
    )
    # the plan: the same customers and the same money, segment by segment
    assert int(plan["to_contact"].sum()) == n == int(targets["contact"].sum())
    assert float(plan["net_return"].sum()) == pytest.approx(net)
    assert (plan.loc[plan["to_contact"] > 0, "net_return"] > 0).all()
    by_segment = targets[targets["contact"]].groupby("segment")["net_value"].sum()
    assert plan.loc[by_segment.index, "net_return"].to_numpy() == pytest.approx(by_segment)
    # the downloaded list: the same rows and total
    downloads = reports.write_downloads(
        tmp_path / "downloads", targets=targets, value_table=value_table
    )
    assert downloads[0]["label"] == f"Download the {n:,} customers to contact (CSV)"
    listed = pd.read_csv(tmp_path / downloads[0]["path"])
    assert len(listed) == n and listed["net_value"].sum() == pytest.approx(net)
    assert listed.columns.tolist() == [
        "customer_id",
        "segment",
        "clv",
        "clv_lower",
        "clv_upper",
        "churn_probability",
        "predicted_incremental_profit",
        "net_value",
        "reason",
    ]
    assert len(pd.read_csv(tmp_path / downloads[1]["path"])) == len(value_table)
    # the executive summary and the plan's sentence quote the same count and money
    summary = story.investment_summary(
        revenue,
        None,
        None,
        None,
        currency="$",
        campaign_payback=payback,
        targets=targets,
        targeting=targeting,
        segment_plan=plan,
    )
    assert summary[0] == payback.sentence() and "paid back 1.5 times" in summary[0]
    money = custval._format.money(net, "$")
    assert f"Contact next the {n:,} customers" in summary[1] and money in summary[1]
    assert money.replace("$", "&#36;").replace(",", ",") in story.plan_from_targets(plan, targets)
    assert f"{n:,} customers" in story.contact_list(targets, downloads)
    # held-out check: targeting on response beats random and churn risk on the sample, whose
    # responsive segment (non-members) is known
    assert targeting.beats_random and targeting.beats_churn_risk


def test_without_a_campaign_the_targets_say_the_save_rate_is_assumed(investment, sample_data):
    value_table = investment[0]
    targets, targeting = reports.contact_targets(
        sample_data, value_table, None, margin=0.3, cost_per_contact=2.5, save_rate=0.1
    )
    assert targeting is None and targets.attrs["basis"] == "assumed"
    roi = custval.invest.retention_roi(value_table, cost_per_contact=2.5, save_rate=0.1)
    assert targets.attrs["n_contact"] == int((roi.scores["expected_net_value"] > 0).sum())
    assert "assumed save rate" in targets["reason"].iloc[0]
    summary = story.investment_summary(
        None,
        roi,
        None,
        None,
        save_rate=0.1,
        targets=targets,
        segment_plan=reports.targets_by_segment(targets),
    )
    assert summary[0].startswith("No randomized campaign was given")
    assert "assumed save rate, not measured" in summary[1]
    assert "in revenue, not profit" not in summary[1]  # the value table is at a 30% margin
    revenue_table = value_table.copy()
    revenue_table.attrs = {**value_table.attrs, "value_basis": "revenue", "margin": 1.0}
    on_revenue, _ = reports.contact_targets(
        sample_data, revenue_table, None, margin=1.0, cost_per_contact=2.5, save_rate=0.1
    )
    assert on_revenue.attrs["gain"] == "revenue"
    assert "in revenue, not profit" in story.contact_list(on_revenue)


def test_csv_lists_cannot_run_formulas(tmp_path):
    targets = pd.DataFrame(
        {
            "segment": ['=HYPERLINK("http://e")', "Champions"],
            "clv": [1.0, 2.0],
            "clv_lower": [0.5, 1.5],
            "clv_upper": [1.5, 2.5],
            "churn_probability": [0.2, 0.3],
            "predicted_incremental_profit": [5.0, -1.0],
            "net_value": [2.5, -3.5],
            "contact": [True, False],
            "reason": ["@SUM(A1)", "x"],
        },
        index=pd.Index(["+1", "2"], name="customer_id"),
    )
    reports.write_downloads(tmp_path, targets=targets, value_table=targets[["clv"]])
    listed = pd.read_csv(tmp_path / "contact-list.csv", dtype=str)
    assert listed.iloc[0].tolist()[:2] == ["'+1", '\'=HYPERLINK("http://e")']
    assert listed["reason"].tolist() == ["'@SUM(A1)"]
    assert listed["clv"].tolist() == ["1.0"]  # numbers stay numbers


def test_report_links_its_downloads(rendered):
    from bs4 import BeautifulSoup

    for page in (
        "index.html",
        "04-relationship-investment.html",
        "full/04-relationship-investment.html",
    ):
        soup = BeautifulSoup((rendered / page).read_text(encoding="utf-8"), "html.parser")
        links = [a for a in soup.find_all("a") if a.get("href", "").endswith(".csv")]
        assert len(links) == 2, page
        for a in links:
            target = (rendered / page).parent / a["href"]
            assert target.is_file(), (page, a["href"])
        n = sum(1 for _ in (rendered / "downloads" / "contact-list.csv").open()) - 1
        assert links[0].get_text() == f"Download the {n:,} customers to contact (CSV)"


def test_programme_effect_is_observational_and_covers_the_known_effect(sample_data):
    effect, members = reports.programme_effect(sample_data, n_bootstrap=100)
    truth = sample_data.truth["loyalty"]
    assert members == truth["n_members_at_end"]
    weighted = effect.estimates.loc["propensity weighted"]
    # the truth: members buy 1.7 more orders in the year after joining, at about $40 an order
    known = truth["att_orders_365d"] * sample_data.truth["spend"]["population_mean_order_value"]
    assert weighted["ci_lower"] < known < weighted["ci_upper"]
    # frequent buyers join more: the naive comparison overstates, weighting corrects part of it
    assert effect.estimates.loc["naive difference", "estimate"] > weighted["estimate"]
    payback = custval.invest.campaign_payback(
        effect, margin=0.3, cost_per_contact=10.0, n_members=members
    )
    text = story.programme_payback(payback, effect)
    assert payback.design == "observational" and "observational" in text
    assert "is an assumption of this report" in text
    without = dataclasses.replace(sample_data, customers=None, campaign=None, truth=None)
    assert reports.programme_effect(without) == (None, 0)


def test_every_report_values_customers_with_the_model_the_value_report_chooses(sample_data):
    """Notebook 02 compares the models; 03 and 04 call customer_values without the comparison
    and must still get the chosen model (one place decides)."""
    models = reports.value_models(sample_data)
    assert models.best in models.comparison.index
    chosen = reports.customer_values(sample_data, margin=0.3, models=models)
    again = reports.customer_values(sample_data, margin=0.3)  # as notebooks 03 and 04 call it
    assert again.attrs["transaction_model"] == chosen.attrs["transaction_model"]
    assert type(models.transaction_model) is type(models.fitted[models.best])
    pd.testing.assert_series_equal(again["clv"], chosen["clv"])
