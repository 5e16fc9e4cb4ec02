"""bench_serve.py's timings and tables: timing passes, each exported model at its faster oneDNN setting, multiples."""
import json
import subprocess
import time

import numpy as np

# What the multiples are of, first to last: the teacher whose accuracies the students report, then the shape of the
# teacher the online recipe fine-tunes (random weights: its accuracy is not measured here)
REFERENCES = {"m3e-small": "m3e-small", "ernie-gram-zh-shaped": "ernie-gram-zh shape (the online recipe's teacher)"}
# An exported model's probabilities further than this from the eager model's are a wrong kernel's (Paddle's issues
# report oneDNN outputs that differ for some models), not fp32 sums added in another order (about 1e-7)
AGREEMENT = 1e-3


def time_batches(run, texts, batch_size, warm_pass=False, repeats=1):
    """Sentences per second (the median of `repeats` timed passes, and each pass's) and per-batch
    latency percentiles (over all timed passes). Batch 1 takes the sentences in dev order (online
    serving); larger batches group them by length first, as predict.py does. The timed passes follow
    one warm-up batch, or with warm_pass an untimed pass over all the batches (every input shape seen
    once: the steady state of a server that has been running)."""
    if batch_size > 1:
        texts = sorted(texts, key=len)
    for i in range(0, len(texts) if warm_pass else 1, batch_size):
        run(texts[i:i + batch_size])
    latencies, speeds = [], []
    for _ in range(repeats):
        start = time.time()
        for i in range(0, len(texts), batch_size):
            tick = time.perf_counter()
            run(texts[i:i + batch_size])
            latencies.append(time.perf_counter() - tick)
        speeds.append(len(texts) / (time.time() - start))
    return {"batch_size": batch_size, "sentences_per_second": float(np.median(speeds)),
            "sentences_per_second_passes": speeds,
            "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99))}


def time_stages(predictor, texts):
    """Mean milliseconds per sentence, at batch 1, in making the model's inputs (tokenization, ids)
    and in the exported model's run (with copying the inputs in and the logits out)."""
    spent = {"inputs_ms": 0.0, "model_ms": 0.0}
    for text in texts:
        tick = time.perf_counter()
        arrays = predictor.inputs([text])
        tock = time.perf_counter()
        predictor.logits(arrays)
        spent["inputs_ms"] += tock - tick
        spent["model_ms"] += time.perf_counter() - tock
    return {stage: 1000 * seconds / len(texts) for stage, seconds in spent.items()}


def time_configuration(command, batch_sizes, **configuration):
    """The rows `one` prints for a configuration (model, mode, threads, onednn). With oneDNN on, a process that
    fails gives rows saying so: Paddle's oneDNN kernels do not run every model, and that is a result. Any other
    failure stops the bench."""
    out = subprocess.run(command, check=not configuration["onednn"], capture_output=True, text=True)
    if out.returncode:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        return [{**configuration, "batch_size": batch, "error": f"failed (exit status {out.returncode}): {last}"}
                for batch in batch_sizes]
    return json.loads(out.stdout.strip().splitlines()[-1])


def setting(row):
    """oneDNN "on" or "off" of an exported row (off in results from before it was recorded), "" of an eager one."""
    return "" if row["mode"] == "eager" else "on" if row.get("onednn") else "off"


def agrees(row):
    """Whether an exported row ran and gave the eager model's probabilities."""
    return "error" not in row and row["eager_vs_exported"]["max_abs_diff"] <= AGREEMENT


def best_exported(rows):
    """{(model, threads, batch size): the fastest exported row of its oneDNN settings}, of the settings that ran
    and gave the eager model's probabilities."""
    best = {}
    for r in rows:
        key = (r["model"], r["threads"], r["batch_size"])
        if r["mode"] == "exported" and agrees(r) and (
                key not in best or r["sentences_per_second"] > best[key]["sentences_per_second"]):
            best[key] = r
    return best


def times(ratio):
    """A speed multiple as the tables write it: one decimal below 20x."""
    return f"{ratio:.1f}x" if ratio < 20 else f"{ratio:.0f}x"


def multiple(mine, theirs):
    """Median speed over median speed of two rows, and its range over pass pairings (my slowest pass with
    their fastest .. the reverse)."""
    mine, theirs = mine["sentences_per_second_passes"], theirs["sentences_per_second_passes"]
    return (f"{times(np.median(mine) / np.median(theirs))} "
            f"({times(min(mine) / max(theirs))} .. {times(max(mine) / min(theirs))})")


def speed_cell(row):
    """A row's sentences/s in the tables, or why it has none."""
    if row is None:
        return "-"
    if "error" in row:
        return row["error"]
    return f"{row['sentences_per_second']:.1f}" + ("" if row["mode"] == "eager" or agrees(row) else
                                                   " (not the eager model's outputs)")


def print_rows(rows):
    print("\n| model | mode | oneDNN | threads | batch | sentences/s | p50 ms | p99 ms | size MB | peak RSS MiB "
          "| max probability difference from eager |")
    print("|---" * 11 + "|")
    for r in rows:
        cells = [r["model"], r["mode"], setting(r), r["threads"], r["batch_size"], speed_cell(r)]
        if "error" not in r:
            diff = r["eager_vs_exported"] and f"{r['eager_vs_exported']['max_abs_diff']:.1e}"
            cells += [f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['size_mb']:.0f}", f"{r['peak_rss_mib']:.0f}",
                      diff or ""]
        print("| " + " | ".join(map(str, cells)) + " |" + " |" * (11 - len(cells)))
    staged = [r for r in rows if "stages" in r]
    if staged:
        print("\n| model | oneDNN | threads | inputs (tokenization, ids) ms/sentence | model run ms/sentence |\n"
              "|---|---|---|---|---|")
        for r in staged:
            print(f"| {r['model']} | {setting(r)} | {r['threads']} | {r['stages']['inputs_ms']:.3f} "
                  f"| {r['stages']['model_ms']:.3f} |")


def print_best(rows, models, threads, batch_sizes):
    """Each exported model at its faster oneDNN setting (both settings' speeds beside it), and its multiples of
    the teachers timed (REFERENCES' order) at the same threads and batch: median (pass pairings)."""
    best = best_exported(rows)
    if not best:
        return
    exported = {(r["model"], r["threads"], r["batch_size"], setting(r)): r for r in rows if r["mode"] == "exported"}
    references = [name for name in REFERENCES if any(key[0] == name for key in best)]
    columns = ["model", "threads", "batch", "sentences/s at the faster setting", "oneDNN off / on",
               *(f"x {REFERENCES[name]}" for name in references)]
    print("\n| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for key in [(model, n, batch) for model in models for n in threads for batch in batch_sizes]:
        if key in best:
            mine = best[key]
            cells = [*key, f"{mine['sentences_per_second']:.1f} (oneDNN {setting(mine)})",
                     " / ".join(speed_cell(exported.get((*key, on))) for on in ("off", "on"))]
            cells += [multiple(mine, best[(name, *key[1:])]) if (name, *key[1:]) in best else "-"
                      for name in references]
            print("| " + " | ".join(map(str, cells)) + " |")
