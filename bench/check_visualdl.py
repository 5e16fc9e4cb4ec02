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
(dev/acc by default), fetches /app/scalar, renders it in headless Chromium and checks the run list
is drawn, and with --screenshot saves a picture of it (`apt-get install -y chromium
fonts-noto-cjk`; without a browser those two steps say "skipped"). The server is always stopped.
Any failure exits 1 with one line.
"""
import argparse
import subprocess
import sys

from visualdl_board import (CheckError, check, rendered_must_show, rendered_text, screenshot, start_visualdl,
                            stop_visualdl)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logdir", nargs="+", required=True, help="run directories (LogWriter logdirs)")
    p.add_argument("--screenshot", metavar="PNG", help="also save a headless screenshot of the scalars page")
    p.add_argument("--port", type=int, help="default: a free port")
    p.add_argument("--tag", default="dev/acc", help="scalar tag every run must have (default: %(default)s)")
    a = p.parse_args(argv)
    proc = None
    try:
        proc, url = start_visualdl(a.logdir, a.port)
        names = check(url, proc.names, a.tag)
        print(f"ok: {url}/app/scalar (cwd {proc.root}) serves {len(names)} runs: {', '.join(names)}")
        page = rendered_text(url + "/app/scalar")
        if page is None:
            print("skipped: no chromium to render the page")
        else:
            missing = [text for text in rendered_must_show(names, a.tag) if text not in page]
            if missing:
                raise CheckError(f"the rendered scalars page does not show {missing}")
            print(f"ok: the rendered page lists every run and the {a.tag} chart's group")
        if a.screenshot:
            if screenshot(url + "/app/scalar", a.screenshot, runs=len(names)):
                print(f"screenshot: {a.screenshot}")
            else:
                print("skipped: no chromium")
    except (CheckError, OSError, subprocess.SubprocessError) as e:
        sys.exit(f"check_visualdl: FAILED: {e}")
    finally:
        if proc:
            stop_visualdl(proc)


if __name__ == "__main__":
    main()
