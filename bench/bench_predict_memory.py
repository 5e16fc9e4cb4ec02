"""predict.py's peak memory and time over many input lines: does it stream, or hold the input?

    python bench/bench_predict_memory.py --tag after [--lines 100000 1000000] [--modes stdin input]

The model is the fastest student, a BOW of random weights at the recipe's sizes (bench_serve.py's
--random_students bow: speed and memory do not depend on the weights), exported once. The lines are
short review-like ones: the first 8 to 40 characters of ChnSentiCorp dev reviews drawn at random. Each
run is predict.py in its own process, reading the lines from stdin (redirected from the file) or from
--input; its peak RSS is its own (GNU time's maximum resident set size), its seconds include Paddle's
start (--lines 0 measures that alone). Each row goes to bench/results/predict_memory.json as it is
measured, under --tag, in place of an earlier row of the same tag, lines and mode: predict.py before
and after a change sit side by side.
"""
import argparse
import json
import os
import random
import sys
import tempfile

from common import ROOT, SHARED, cpu_model, write_results  # first: it puts the project's root on sys.path
from peak_memory import measure  # before paddle: see peak_memory.ENVIRONMENT

MODEL = "bow-h300"  # bench_serve.py's name of --random_students bow
KEY = ("tag", "lines", "mode")  # what a results row measured


def write_lines(path, n, data_dir, seed=0):
    """n short review-like lines: a random dev review's first 8 to 40 characters each."""
    from data import load_local_splits

    reviews = [ex["text"] for ex in load_local_splits(data_dir)[0]["dev"]]
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(rng.choice(reviews)[:rng.randint(8, 40)] + "\n")


def export_student(export_dir, data_dir):
    from serve_models import build
    from inference import export

    model, specs, config, save_vocab = build(MODEL, None, data_dir)
    export(model, specs, config, export_dir, save_vocab)


def predict_command(export_dir, lines_path, mode, num_threads):
    """predict.py reading the lines from --input, or from stdin (mode stdin: measure() redirects it)."""
    command = [sys.executable, "predict.py", "--model_dir", export_dir, "--device", "cpu", "--num_threads",
               str(num_threads)]
    return command + ["--input", lines_path] * (mode == "input")


def count_lines(path):
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def save(path, row):
    """Add a row to the results, in place of one of the same KEY: a long run keeps what it has measured."""
    rows = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            rows = [r for r in json.load(f)["rows"] if [r[k] for k in KEY] != [row[k] for k in KEY]]
    write_results(path, {"model": f"{MODEL}: BOW of random weights, the recipe's sizes, exported",
                         "lines": "a random ChnSentiCorp dev review's first 8 to 40 characters each",
                         "cpu": cpu_model(), "rows": rows + [row]})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", required=True, help="what predict.py this is, e.g. before or after a change")
    parser.add_argument("--lines", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--modes", nargs="+", choices=["stdin", "input"], default=["stdin", "input"])
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--data_dir", default=os.path.join(SHARED, "data", "chnsenticorp"))
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "predict_memory.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export_dir, lines_path, output_path = (os.path.join(tmp, name) for name in ("export", "lines.txt", "out"))
        export_student(export_dir, args.data_dir)
        for n in args.lines:
            write_lines(lines_path, n, args.data_dir)
            for mode in args.modes:
                command = predict_command(export_dir, lines_path, mode, args.num_threads)
                seconds, peak, code = measure(command, lines_path if mode == "stdin" else os.devnull, output_path)
                answered = count_lines(output_path)
                if code != 0 or answered != n:
                    sys.exit(f"{' '.join(command)}: exit code {code}, {answered} of {n} lines answered")
                shown = " ".join(command).replace(tmp, "<tmp>") + " < <tmp>/lines.txt" * (mode == "stdin")
                save(args.results, {"tag": args.tag, "lines": n, "mode": mode, "seconds": round(seconds, 1),
                                    "peak_rss_mib": round(peak, 1), "command": shown,
                                    "input_mb": round(os.path.getsize(lines_path) / 1e6, 1)})


if __name__ == "__main__":
    main()
