"""VisualDL started on run directories, and what it serves and renders checked (check_visualdl.py's steps)."""
import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np
from PIL import Image

HOST = "127.0.0.1"
# The board as the README starts it (check_visualdl.py's docstring says why each flag)
FLAGS = ["--component_tabs", "scalar", "hyper_parameters", "-L", "en", "--disable-telemetry"]
BROWSERS = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"]
# Virtual-time budgets a page gets to fetch and draw, tried in turn until it shows what is checked:
# a loaded 2-core machine needs far more than an idle one.
RENDER_BUDGETS_S = (10, 40, 120)
# VisualDL 2.5.3's run colours (server/dist/_dist_/utils/chart.js `color`, and `colorAlt` for the
# unsmoothed line): every curve is drawn in one of them.
RUN_COLOURS = ["#2932E1", "#00CC88", "#981EFF", "#066BFF", "#3AEB0D", "#E71ED5", "#25C9FF", "#0DEBB0", "#FF0287",
               "#00E2FF", "#00FF9D", "#D50505", "#FFAA00", "#A3EB0D", "#FF0900", "#FF6600", "#FFEA00", "#FE4A3B",
               "#9498F0", "#66E0B8", "#CB8EFF", "#6AA6FF", "#89F36E", "#F178E6", "#7CDFFF", "#6EF3D0", "#FF80C3",
               "#7FF0FF", "#66FFC4", "#E66969", "#FFD47F", "#FFB27F", "#FFF266", "#FE9289"]
# The scalars page's chart area in CSS px: below the blue header, left of the settings and run list
# (whose run colour dots must not count as a curve).
HEADER_PX, ASIDE_PX = 60, 290
MIN_CURVE_PIXELS = 100  # a drawn curve has hundreds; an empty chart's axes and grid none
# The Scalars page reads its smoothing from this localStorage key of the board's origin
# (server/dist/_dist_/pages/scalar.js); its `?smoothing=` URL parameter never reached the page here.
SMOOTHING_KEY = "scalar_smoothing"


class CheckError(Exception):
    pass


def free_port(port=0):
    """`port` if nothing listens on it (0: any free port); else CheckError."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port just closed is free; one listened on is not
        try:
            s.bind((HOST, port))
        except OSError:
            raise CheckError(f"port {port} is in use") from None
        return s.getsockname()[1]


def common_root(logdirs):
    """The directory run names are relative to: the runs' common parent (the grandparent of a
    single run, so `runs/student/vdl` is named `student/vdl`, not `vdl`)."""
    parents = {os.path.dirname(os.path.abspath(d)) for d in logdirs}
    return os.path.commonpath(parents) if len(parents) > 1 else os.path.dirname(parents.pop())


def visualdl_command(logdirs, port):
    exe = os.path.join(os.path.dirname(sys.executable), "visualdl")
    exe = exe if os.path.exists(exe) else shutil.which("visualdl") or "visualdl"
    return [exe, "--logdir", *logdirs, *FLAGS, "-t", HOST, "-p", str(port)]


def start_visualdl(logdirs, port=None, timeout=60):
    """Start VisualDL on the given run directories; returns (process, base_url) once /alive answers."""
    missing = [d for d in logdirs if not os.path.isdir(d)]
    if missing:
        raise CheckError(f"{missing[0]}: no such directory")
    root = common_root(logdirs)
    names = [os.path.relpath(os.path.abspath(d), root) for d in logdirs]
    port = free_port(port or 0)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(visualdl_command(names, port), cwd=root, stdout=log, stderr=subprocess.STDOUT)
    proc.log, proc.root, proc.names = log, root, names
    url = f"http://{HOST}:{port}"
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/alive", timeout=2)
            return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.seek(0)
            last = (log.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            stop_visualdl(proc)
            raise CheckError(f"visualdl did not answer on port {port} within {timeout}s: {last}")
        time.sleep(0.5)


def stop_visualdl(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.log.close()


def api(url, method):
    """GET /app/api/<method>; VisualDL wraps every answer as {"status": 0, "msg": "", "data": ...}."""
    with urllib.request.urlopen(f"{url}/app/api/{method}", timeout=120) as r:
        body = json.load(r)
    if body.get("status") != 0:
        raise CheckError(f"/app/api/{method}: {body.get('msg')}")
    return body["data"]


def run_names(url):
    """Run names as the Scalars sidebar shows them (display_name if set, else the directory)."""
    return api(url, "scalar/tags")["runs"]


def tags(url):
    """{run directory: [scalar tags]}, keyed by directory even when a run has a display_name."""
    runs = {}
    for key, kind in api(url, "tags").items():  # "student/vdl/dev%acc": "scalar"
        run, tag = key.rsplit("/", 1)
        if kind == "scalar":
            runs.setdefault(run, []).append(tag.replace("%", "/"))
    return runs


def check(url, logdirs, tag="dev/acc"):
    """Every directory in `logdirs` (as VisualDL was given them, e.g. proc.names), or a run below
    it, is listed with `tag` under a name of its own, and the scalars page is served. Returns the
    sidebar's run names."""
    by_dir, names = tags(url), run_names(url)
    for d in logdirs:
        runs = [r for r in by_dir if r == d or r.startswith(d + "/")]
        if not runs:
            raise CheckError(f"{d}: VisualDL found no scalars in it (no vdlrecords.*.log?)")
        if not any(tag in by_dir[r] for r in runs):
            raise CheckError(f"{d}: no '{tag}' tag, only {sorted({t for r in runs for t in by_dir[r]})}")
    if len(set(names)) < len(by_dir):
        raise CheckError(f"{len(by_dir)} runs but only {len(set(names))} names {names}: two LogWriters "
                         "share a display_name, and VisualDL merges their curves")
    if api(url, "component_tabs")[:1] != ["scalar"]:
        raise CheckError("the board does not open on the Scalars tab")
    with urllib.request.urlopen(url + "/app/scalar", timeout=30) as r:  # no Accept-Language: 500 without -L
        if r.status != 200 or b'id=root' not in r.read():
            raise CheckError(f"/app/scalar: HTTP {r.status}, not the VisualDL page")
    return names


def find_browser():
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def headless(browser, profile):
    """Headless Chromium on the profile directory `profile`. Other hosts are made unresolvable, so
    what it shows is what an offline user sees."""
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={profile}", f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}"]


def browser_command(browser, profile, url, wait_ms, *extra):
    """The browser on `url` (a JS app: --virtual-time-budget lets it fetch and draw; without it only
    the header is there)."""
    return [*headless(browser, profile), f"--virtual-time-budget={wait_ms}", *extra, url]


def run_browser(browser, profile, url, wait_ms, *extra):
    # the budget is virtual time; the real time it takes on a loaded machine is several times more
    return subprocess.run(browser_command(browser, profile, url, wait_ms, *extra), capture_output=True, text=True,
                          timeout=wait_ms / 1000 * 3 + 300)


class DevTools:
    """A headless browser on `profile` driven over the DevTools protocol through a pipe
    (--remote-debugging-pipe: NUL-terminated JSON commands on its fd 3, answers on its fd 4)."""

    def __init__(self, browser, profile, timeout=120):
        (self.theirs_in, ours_out), (ours_in, self.theirs_out) = os.pipe(), os.pipe()
        self.proc = subprocess.Popen([*headless(browser, profile), "--remote-debugging-pipe", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False,
                                     preexec_fn=self._pipe_fds)
        os.close(self.theirs_in)
        os.close(self.theirs_out)
        self.out, self.inp, self.timeout, self.calls, self.buffer = ours_out, ours_in, timeout, 0, b""

    def _pipe_fds(self):  # in the child: the pipe's ends where the browser expects them
        os.dup2(self.theirs_in, 3)
        os.dup2(self.theirs_out, 4)

    def call(self, method, session=None, **params):
        self.calls += 1
        command = {"id": self.calls, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self.out, json.dumps(command).encode() + b"\0")
        deadline = time.time() + self.timeout
        while True:  # skip events and older answers until this command's
            while b"\0" not in self.buffer:
                if not select.select([self.inp], [], [], max(0, deadline - time.time()))[0]:
                    raise CheckError(f"DevTools {method}: no answer within {self.timeout} s")
                chunk = os.read(self.inp, 1 << 16)
                if not chunk:
                    raise CheckError(f"DevTools {method}: the browser exited")
                self.buffer += chunk
            message, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(message)
            if answer.get("id") == self.calls:
                if "error" in answer:
                    raise CheckError(f"DevTools {method}: {answer['error'].get('message')}")
                return answer["result"]

    def close(self):
        try:
            self.call("Browser.close")  # a clean exit writes the profile (localStorage included) to disk
            self.proc.wait(self.timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.out)
            os.close(self.inp)


def store_locally(browser, profile, url, items):
    """Put `items` into the localStorage of `url`'s origin in the browser profile `profile`, where a
    page of that origin later opened with it reads them before it draws."""
    tools = DevTools(browser, profile)
    try:
        target = tools.call("Target.createTarget", url="about:blank")["targetId"]
        session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tools.call("Page.navigate", session, url=url)
        for key, value in items.items():
            done = tools.call("Runtime.evaluate", session, returnByValue=True, expression=(
                f"localStorage.setItem({json.dumps(key)}, {json.dumps(value)}); localStorage.getItem({json.dumps(key)})"))
            if done["result"].get("value") != value:
                error = done.get("exceptionDetails", {}).get("exception", {}).get("description")
                raise CheckError(f"{url}: could not store {key} in its localStorage: {error}")
    finally:
        tools.close()


@contextlib.contextmanager
def browser_profile(browser, url, smoothing=None):
    """A new browser profile for `url`'s board; with `smoothing`, its Scalars page draws at that."""
    with tempfile.TemporaryDirectory() as profile:
        if smoothing is not None:
            parts = urllib.parse.urlsplit(url)  # a page of the board's origin that runs no script to overwrite it
            store_locally(browser, profile, f"{parts.scheme}://{parts.netloc}/app/api/component_tabs",
                          {SMOOTHING_KEY: f"{smoothing:g}"})
        yield profile


def rendered_text(url, must_show, browser=None, smoothing=None):
    """The page as the browser rendered it (its DOM after the scripts ran) once it shows every string
    in `must_show`, given ever longer to draw; None without a browser. CheckError names what it
    still did not show after the longest budget."""
    browser = browser or find_browser()
    if not browser:
        return None
    for seconds in RENDER_BUDGETS_S:
        with browser_profile(browser, url, smoothing) as profile:
            done = run_browser(browser, profile, url, seconds * 1000, "--dump-dom")
        if done.returncode != 0 or "<body" not in done.stdout:
            raise CheckError(f"{browser} rendered nothing (exit {done.returncode})")
        missing = [text for text in must_show if text not in done.stdout]
        if not missing:
            return done.stdout
    raise CheckError(f"the rendered page does not show {missing} after {seconds} s of rendering")


def rendered_must_show(names, tag, smoothing=None):
    """What the rendered scalars page's text holds: the run list, the group of the tag's chart (the
    chart itself, title included, is drawn on a canvas) and, if given, the smoothing slider's value."""
    slider = [] if smoothing is None else [f'aria-valuenow="{smoothing:g}"']
    return [*names, f">{tag.split('/')[0]}<", *slider]


def hex_rgb(colour):
    return [int(colour[i:i + 2], 16) for i in (1, 3, 5)]


def curve_pixels(png, scale=1):
    """Pixels of a run colour in the chart area of a scalars-page screenshot taken at `scale`."""
    image = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    charts = image[HEADER_PX * scale:, :image.shape[1] - ASIDE_PX * scale]
    drawn = np.zeros(charts.shape[:2], dtype=bool)
    for rgb in map(hex_rgb, RUN_COLOURS):  # antialiased lines are near their colour, not on it
        drawn |= np.abs(charts - rgb).max(axis=-1) <= 24
    return int(drawn.sum())


def window_height(runs):
    return max(900, 700 + 40 * runs)  # the run list on the right starts ~620 px down


def screenshot(url, path, runs=1, browser=None, wait_ms=10000, scale=1, smoothing=None):
    """Headless screenshot of `url` (a 1400 px wide window, `scale` device pixels per CSS px, the
    Scalars page's `smoothing` if given); returns False when no browser is installed."""
    browser = browser or find_browser()
    if not browser:
        return False
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    with browser_profile(browser, url, smoothing) as profile:
        done = run_browser(browser, profile, url, wait_ms, f"--window-size=1400,{window_height(runs)}",
                           f"--force-device-scale-factor={scale}", f"--screenshot={os.path.abspath(path)}")
    if done.returncode != 0 or not os.path.exists(path) or not os.path.getsize(path):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckError(f"{browser} wrote no screenshot (exit {done.returncode}): {last}")
    return True


def screenshot_curves(url, path, runs=1, browser=None, scale=1, smoothing=None):
    """A screenshot of the scalars page once its charts show curves, given ever longer to draw;
    returns the curves' pixels, or None without a browser. CheckError when, after the longest
    budget, no chart shows a curve (an empty chart is not a board that works)."""
    for seconds in RENDER_BUDGETS_S:
        if not screenshot(url, path, runs, browser, seconds * 1000, scale, smoothing):
            return None
        pixels = curve_pixels(path, scale)
        if pixels >= MIN_CURVE_PIXELS:
            return pixels
    raise CheckError(f"no curve drawn on {url} after {seconds} s of rendering ({pixels} pixels of a run "
                     f"colour; picture: {path})")
