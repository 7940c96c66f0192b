"""A minimal W3C WebDriver client (Python 3.11 stdlib only) for headless
Chromium through chromedriver: enough for the UI tests to load pages, fill
and submit forms, and read what the browser shows.

    with Browser() as b:            # starts chromedriver and a session
        b.get("https://localhost:8444/")
        b.find("#username").send_keys("admin@acme.test")
        b.find("#Login").click()
        b.current_url(), b.title(), b.source(), b.cookies()

`Browser` always ends its session and stops chromedriver on close, even
after a failure. `available()` says whether the Debian packages chromium and
chromium-driver are installed (the binaries the tests use).

The protocol: https://www.w3.org/TR/webdriver2/ (new session, navigate,
find element(s), element send keys / click / text / property, get title /
current URL / page source, cookies, delete session).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The key of a web element reference in WebDriver's JSON (W3C, section 12.1).
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"


def available():
    """None when chromium and chromedriver are installed, else what is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return "not installed: " + ", ".join(missing) + " (Debian packages chromium and chromium-driver)"
    return None


class WebDriverError(AssertionError):
    """An error answer of the WebDriver protocol: `error` is its code ("no such element", ...)."""

    def __init__(self, status, error, message):
        super().__init__(f"WebDriver {status} {error}: {message}")
        self.status, self.error, self.message = status, error, message


def free_port():
    """A port nothing listens on right now (chromedriver binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Element:
    """A web element of a session."""

    def __init__(self, browser, ref):
        self.browser, self.ref = browser, ref

    def _path(self, suffix=""):
        return f"/element/{self.ref}{suffix}"

    def send_keys(self, text):
        self.browser.cmd("POST", self._path("/value"), {"text": text})
        return self

    def clear(self):
        self.browser.cmd("POST", self._path("/clear"), {})
        return self

    def click(self):
        self.browser.cmd("POST", self._path("/click"), {})

    def text(self):
        """The rendered text (what a user reads)."""
        return self.browser.cmd("GET", self._path("/text"))

    def prop(self, name):
        """A DOM property ("value" of an input, ...)."""
        return self.browser.cmd("GET", self._path(f"/property/{name}"))

    def attribute(self, name):
        return self.browser.cmd("GET", self._path(f"/attribute/{name}"))


class Browser:
    """chromedriver on a free port with one headless Chromium session."""

    def __init__(self, timeout=30):
        why = available()
        if why:
            raise RuntimeError(why)
        self.tmp = tempfile.mkdtemp(prefix="sfmtls-webdriver-")
        self.log = os.path.join(self.tmp, "chromedriver.log")
        self.timeout = timeout
        self.proc = None
        self.session = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self):
        for _ in range(5):  # the free port may be taken before chromedriver binds it
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}", f"--log-path={self.log}"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            if self._wait_ready():
                break
            self._stop_driver()
        else:
            raise RuntimeError(f"chromedriver did not start\n{self.driver_log()}")
        profile = os.path.join(self.tmp, "profile")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": True,
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": self.timeout * 1000, "script": 10000, "implicit": 0},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--ignore-certificate-errors", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                         "--disable-extensions", "--password-store=basic", f"--user-data-dir={profile}"],
            },
        }}}
        value = self._request("POST", "/session", caps, timeout=90)
        self.session = value["sessionId"]

    def _wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self._request("GET", "/status", timeout=2).get("ready"):
                    return True
            except (OSError, WebDriverError, ValueError):
                pass
            time.sleep(0.1)
        return False

    def _request(self, method, path, body=None, timeout=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout + 30) as r:
                payload = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                v = json.loads(raw).get("value", {})
            except ValueError:
                raise WebDriverError(e.code, "unknown error", raw.decode(errors="replace")) from None
            raise WebDriverError(e.code, v.get("error"), v.get("message")) from None
        return payload.get("value")

    def cmd(self, method, path, body=None):
        """A command of this session (path after /session/{id})."""
        return self._request(method, f"/session/{self.session}{path}", body)

    # -- navigation and documents

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def current_url(self):
        return self.cmd("GET", "/url")

    def title(self):
        return self.cmd("GET", "/title")

    def source(self):
        """The document as the browser serialises it now."""
        return self.cmd("GET", "/source")

    # -- elements

    def find(self, css):
        """The first element matching a CSS selector (WebDriverError "no such element" when none)."""
        return Element(self, self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT_KEY])

    def find_all(self, css):
        found = self.cmd("POST", "/elements", {"using": "css selector", "value": css})
        return [Element(self, e[ELEMENT_KEY]) for e in found]

    def wait_for(self, pred, timeout=10, interval=0.05):
        """Calls pred() until it returns truthy (WebDriver errors count as not yet); returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = pred()
            except WebDriverError:
                v = None
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(interval)

    # -- cookies

    def cookies(self):
        """Every cookie of the current document, HttpOnly ones included (name, value, secure, httpOnly, ...)."""
        return self.cmd("GET", "/cookie")

    def delete_cookies(self):
        self.cmd("DELETE", "/cookie")

    # -- the end

    def driver_log(self):
        try:
            with open(self.log, errors="replace") as f:
                text = f.read()
        except OSError:
            return "(no chromedriver log)"
        return text if len(text) < 4000 else "...\n" + text[-4000:]

    def _stop_driver(self):
        """Stops chromedriver and whatever it left running: it leads its own
        process group (start_new_session), and Chromium's processes are in it."""
        if not self.proc:
            return
        pgid = self.proc.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(10)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(pgid, signal.SIGKILL)  # Chromium children outliving chromedriver
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)
        self.proc = None

    def close(self):
        """Ends the session (Chromium exits with it) and stops chromedriver; safe to call twice."""
        try:
            if self.session and self.proc and self.proc.poll() is None:
                try:
                    self._request("DELETE", f"/session/{self.session}", timeout=30)
                except (OSError, WebDriverError, ValueError):
                    pass
        finally:
            self.session = None
            self._stop_driver()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
