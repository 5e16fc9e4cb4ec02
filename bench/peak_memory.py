"""A command's seconds, exit code and own peak memory (GNU time's), measured from outside (bench_predict_memory.py)."""
import os
import subprocess
import time

from common import ROOT

# Taken before paddle is imported (to export), which sets OMP_NUM_THREADS=1 in this process's environment: predict.py
# gets the user's
ENVIRONMENT = dict(os.environ)


def measure(command, stdin_path, output_path):
    """(seconds, peak RSS in MiB, exit code) of one predict.py run. GNU time takes the peak: the rusage
    this process gets of a child would count the memory it had itself (Paddle, the export) when it forked."""
    stats = f"{output_path}.time"
    with open(stdin_path, "rb") as stdin, open(output_path, "wb") as stdout:
        start = time.time()
        code = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", stats, *command], stdin=stdin, stdout=stdout,
                              cwd=ROOT, env=ENVIRONMENT).returncode
        seconds = time.time() - start
    with open(stats, encoding="utf-8") as f:
        peak_kib = int(f.read().split()[-1])  # after "Command exited with non-zero status N", if it did
    return seconds, peak_kib / 1024, code
