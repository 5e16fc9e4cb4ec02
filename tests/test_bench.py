"""The benchmarks' own logic: how speeds are timed and how their results are written."""
import json
import os

import pytest

from bench_serve import time_batches, time_stages
from bench_teacher import write_results


def test_time_batches_warms_every_batch_then_times_each_repeat():
    texts = ["ccc", "a", "bb", "dddd", "e"]
    seen = []
    row = time_batches(lambda batch: seen.append(list(batch)), texts, batch_size=2, warm_pass=True, repeats=3)
    by_length = [["a", "e"], ["bb", "ccc"], ["dddd"]]  # batches group sentences by length
    assert seen == by_length * 4  # the untimed warm pass, then three timed passes
    assert len(row["sentences_per_second_passes"]) == 3
    assert min(row["sentences_per_second_passes"]) <= row["sentences_per_second"] <= max(row["sentences_per_second_passes"])


def test_time_batches_at_batch_1_keeps_dev_order_and_warms_one_batch():
    seen = []
    time_batches(lambda batch: seen.append(list(batch)), ["ccc", "a", "bb"], batch_size=1)
    assert seen == [["ccc"], ["ccc"], ["a"], ["bb"]]


def test_time_stages_times_each_sentence_alone_through_inputs_then_logits():
    calls = []

    class FakePredictor:
        def inputs(self, texts):
            calls.append(("inputs", texts))
            return [len(texts[0])]

        def logits(self, arrays):
            calls.append(("logits", arrays))

    stages = time_stages(FakePredictor(), ["ab", "c"])
    assert calls == [("inputs", ["ab"]), ("logits", [2]), ("inputs", ["c"]), ("logits", [1])]
    assert set(stages) == {"inputs_ms", "model_ms"} and all(ms >= 0 for ms in stages.values())


def test_write_results_keeps_the_previous_file_when_writing_fails(tmp_path):
    path = tmp_path / "results" / "serve.json"
    write_results(str(path), {"rows": [1]})
    with pytest.raises(TypeError):
        write_results(str(path), {"rows": [object()]})  # not JSON: fails halfway through the dump
    assert json.loads(path.read_text()) == {"rows": [1]}
    assert os.listdir(path.parent) == ["serve.json"]


def test_results_hold_no_machine_paths():
    import os

    from bench_teacher import ROOT, portable

    home, parent = os.path.expanduser("~"), os.path.dirname(ROOT)
    result = {"command": f"x.py --data_dir {parent}/shared/data --teacher {home}/.cache/t --vocab {ROOT}/v.txt",
              "rows": [f"{home}/.cache/distill_lstm/teacher", 3]}
    assert portable(result) == {"command": "x.py --data_dir ../shared/data --teacher ~/.cache/t --vocab v.txt",
                                "rows": ["~/.cache/distill_lstm/teacher", 3]}
