"""VisualDL started on run directories, and what it serves and renders checked (check_visualdl.py's steps)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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


def browser_command(browser, profile, url, wait_ms, *extra):
    """Headless Chromium on `url` (a JS app: --virtual-time-budget lets it fetch and draw; without
    it only the header is there). Other hosts are made unresolvable, so what it shows is what an
    offline user sees."""
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={profile}", f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}",
            f"--virtual-time-budget={wait_ms}", *extra, url]


def run_browser(browser, profile, url, wait_ms, *extra):
    # the budget is virtual time; the real time it takes on a loaded machine is several times more
    return subprocess.run(browser_command(browser, profile, url, wait_ms, *extra), capture_output=True, text=True,
                          timeout=wait_ms / 1000 * 3 + 300)


def rendered_text(url, must_show, browser=None):
    """The page as the browser rendered it (its DOM after the scripts ran) once it shows every string
    in `must_show`, given ever longer to draw; None without a browser. CheckError names what it
    still did not show after the longest budget."""
    browser = browser or find_browser()
    if not browser:
        return None
    for seconds in RENDER_BUDGETS_S:
        with tempfile.TemporaryDirectory() as profile:
            done = run_browser(browser, profile, url, seconds * 1000, "--dump-dom")
        if done.returncode != 0 or "<body" not in done.stdout:
            raise CheckError(f"{browser} rendered nothing (exit {done.returncode})")
        missing = [text for text in must_show if text not in done.stdout]
        if not missing:
            return done.stdout
    raise CheckError(f"the rendered page does not show {missing} after {seconds} s of rendering")


def rendered_must_show(names, tag):
    """What the rendered scalars page's text holds: the run list, and the group of the tag's chart
    (the chart itself, title included, is drawn on a canvas)."""
    return [*names, f">{tag.split('/')[0]}<"]


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


def screenshot(url, path, runs=1, browser=None, wait_ms=10000, scale=1):
    """Headless screenshot of `url` (a 1400 px wide window, `scale` device pixels per CSS px);
    returns False when no browser is installed."""
    browser = browser or find_browser()
    if not browser:
        return False
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    with tempfile.TemporaryDirectory() as profile:
        done = run_browser(browser, profile, url, wait_ms, f"--window-size=1400,{window_height(runs)}",
                           f"--force-device-scale-factor={scale}", f"--screenshot={os.path.abspath(path)}")
    if done.returncode != 0 or not os.path.exists(path) or not os.path.getsize(path):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckError(f"{browser} wrote no screenshot (exit {done.returncode}): {last}")
    return True


def screenshot_curves(url, path, runs=1, browser=None, scale=1):
    """A screenshot of the scalars page once its charts show curves, given ever longer to draw;
    returns the curves' pixels, or None without a browser. CheckError when, after the longest
    budget, no chart shows a curve (an empty chart is not a board that works)."""
    for seconds in RENDER_BUDGETS_S:
        if not screenshot(url, path, runs, browser, seconds * 1000, scale):
            return None
        pixels = curve_pixels(path, scale)
        if pixels >= MIN_CURVE_PIXELS:
            return pixels
    raise CheckError(f"no curve drawn on {url} after {seconds} s of rendering ({pixels} pixels of a run "
                     f"colour; picture: {path})")
