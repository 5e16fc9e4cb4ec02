"""Check that VisualDL opens on the scalar curves with every run under a readable name.

    python bench/check_visualdl.py --logdir small_models/chnsenticorp/vdl \
        small_models/chnsenticorp_distill/vdl [--screenshot /tmp/vdl.png] [--port 8040]

It starts the board the way this project recommends (run from the runs' common parent, so a run
is named by its path below it, e.g. `chnsenticorp_distill/vdl/teacher`, unless its LogWriter got
a display_name):

    visualdl --logdir DIR ... --component_tabs scalar hyper_parameters -L en --disable-telemetry \
        -t 127.0.0.1 -p PORT

`--component_tabs scalar ...` makes /app/index open the Scalars tab (without it the first tab is
a random pick from a set, sometimes the empty "Upload Model" graph page); `-L en` fixes the
language (otherwise a browser asking for neither en nor zh gets HTTP 500); `--disable-telemetry`
stops the startup POST to paddlepaddle.org.cn and the page's hm.baidu.com script.
Then it checks, through the API the page itself uses, that every directory shows up with the tag
(dev/acc by default), fetches /app/scalar, renders it in headless Chromium (`apt-get install -y
chromium fonts-noto-cjk`; without a browser those steps say "skipped"), checks the run list is
drawn and that the charts show curves (pixels of VisualDL's run colours: a chart without curves
fails), giving a slow machine minutes to draw. The page is drawn at --smoothing (0 by default: the
raw curves; VisualDL's own default is 0.6), set before it draws in the browser profile's
localStorage, and the slider must show it. --screenshot keeps that picture, --hparams_screenshot
takes one of the Hyper Parameters table.
The server is always stopped. Any failure exits 1 with one line.
"""
import argparse
import os
import subprocess
import sys
import tempfile

from visualdl_board import (RENDER_BUDGETS_S, CheckError, check, find_browser, rendered_must_show, rendered_text,
                            screenshot, screenshot_curves, start_visualdl, stop_visualdl)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logdir", nargs="+", required=True, help="run directories (LogWriter logdirs)")
    p.add_argument("--screenshot", metavar="PNG", help="keep the screenshot of the scalars page")
    p.add_argument("--hparams_screenshot", metavar="PNG", help="also save one of the Hyper Parameters table")
    p.add_argument("--scale", type=int, default=1, help="device pixels per CSS pixel of the screenshots "
                   "(2 for pictures in docs; default: %(default)s)")
    p.add_argument("--port", type=int, help="default: a free port")
    p.add_argument("--tag", default="dev/acc", help="scalar tag every run must have (default: %(default)s)")
    p.add_argument("--smoothing", type=float, default=0.0, help="the Scalars page's smoothing, from 0 (the raw "
                   "curves) to 0.99 in steps of 0.01 (VisualDL's default: 0.6; here: %(default)s)")
    a = p.parse_args(argv)
    if not 0 <= a.smoothing <= 0.99 or round(a.smoothing, 2) != a.smoothing:
        p.error(f"--smoothing {a.smoothing}: not one of 0, 0.01, ..., 0.99 (the slider's values)")
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            browser = find_browser()
            proc, url = start_visualdl(a.logdir, a.port)
            names = check(url, proc.names, a.tag)
            print(f"ok: {url}/app/scalar (cwd {proc.root}) serves {len(names)} runs: {', '.join(names)}")
            if not browser:
                print("skipped: no chromium to render the page")
                return
            rendered_text(url + "/app/scalar", rendered_must_show(names, a.tag, a.smoothing), browser, a.smoothing)
            print(f"ok: the rendered page lists every run and the {a.tag} chart's group, at smoothing {a.smoothing:g}")
            picture = a.screenshot or os.path.join(tmp, "scalars.png")
            pixels = screenshot_curves(url + "/app/scalar", picture, len(names), browser, a.scale, a.smoothing)
            print(f"ok: the charts show curves ({pixels} pixels of run colours)")
            if a.screenshot:
                print(f"screenshot: {a.screenshot}")
            if a.hparams_screenshot:
                screenshot(url + "/app/hyper-parameter", a.hparams_screenshot, len(names), browser,
                           RENDER_BUDGETS_S[-1] * 1000, a.scale)
                print(f"screenshot: {a.hparams_screenshot}")
        except (CheckError, OSError, subprocess.SubprocessError) as e:
            sys.exit(f"check_visualdl: FAILED: {e}")
        finally:
            if proc:
                stop_visualdl(proc)


if __name__ == "__main__":
    main()
