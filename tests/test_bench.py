"""The benchmarks' own logic: how speeds are timed and how their results are written. Over 350 lines because
it covers every bench library module (bench/), a few short tests each."""
import json
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from common import ROOT, write_results
from serve_speeds import time_batches, time_stages


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

    from common import portable

    home, parent = os.path.expanduser("~"), os.path.dirname(ROOT)
    result = {"command": f"x.py --data_dir {parent}/shared/data --teacher {home}/.cache/t --vocab {ROOT}/v.txt",
              "rows": [f"{home}/.cache/distill_lstm/teacher", 3]}
    assert portable(result) == {"command": "x.py --data_dir ../shared/data --teacher ~/.cache/t --vocab v.txt",
                                "rows": ["~/.cache/distill_lstm/teacher", 3]}


def test_robustness_table_gives_means_spreads_and_the_share_of_the_teacher(tmp_path, monkeypatch, capsys):
    import robustness_analyses

    monkeypatch.setattr(robustness_analyses, "RESULTS", str(tmp_path / "robustness"))
    monkeypatch.setattr(robustness_analyses, "ROOT", str(tmp_path))
    for name, accs in {"teacher": [(0.94, 0.92)], "bilstm-alone": [(0.91, 0.83), (0.92, 0.85)],
                       "bilstm-distilled": [(0.93, 0.90), (0.93, 0.92), (0.94, 0.91)],
                       "tinybert_s2_lr5e-4": [(0.90, 0.86)]}.items():  # a TinyBERT configuration: no student, a "-"
        for seed, (dev, ood) in enumerate(accs):
            unseen = {"dev_unseen_acc": dev - 0.01 * seed} if name == "bilstm-distilled" else {}  # the others predate it
            write_results(str(tmp_path / "robustness" / name / f"seed{seed}.json"),
                          {"seed": seed, "dev_acc": dev, "ood_acc": ood, **unseen})
    robustness_analyses.table(None)
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "bench" / "results" / "robustness.json").read_text())
    assert list(rows) == ["teacher", "bilstm-alone", "bilstm-distilled", "tinybert_s2_lr5e-4"]
    assert rows["bilstm-alone"]["ood"] == pytest.approx([0.84, 0.0141421356])  # sample standard deviation
    assert rows["bilstm-distilled"]["ood_share_of_teacher"] == pytest.approx(0.91 / 0.92)
    assert "| bilstm-distilled | + 26,910 unlabelled reviews (the README's recipe until alpha0.5) | 3 | 0.9333 ± 0.0058 " \
           "| 0.9233 ± 0.0058 | 0.9100 ± 0.0100 | 98.9% |" in out
    assert rows["bilstm-alone"]["dev_unseen"] is None and "| 0.9150 ± 0.0071 | - | 0.8400 ± 0.0141 |" in out
    assert "| tinybert_s2_lr5e-4 | stage 2 alone at AdamW 5e-4 (the default: 1e-4), on the training sentences | 1 " in out


def test_pairs_table_reads_each_runs_seeds_beside_the_teachers_committed_folders(tmp_path, monkeypatch, capsys):
    import sentence_pairs

    monkeypatch.setattr(sentence_pairs, "RESULTS", str(tmp_path))
    scores = {"dev_acc": 0.8, "dev_f1": 0.7, "dev_unseen_acc": 0.75, "dev_unseen_f1": 0.65}
    write_results(str(tmp_path / "teacher.json"), scores)
    for seed, acc in ((1, 0.82), (7, 0.84)):
        write_results(str(tmp_path / "bilstm-alone" / f"seed{seed}.json"), {**scores, "dev_acc": acc})
    for name in ("teacher_checkpoint/vocab.txt", "teacher_checkpoint/checkpoint.json", "teacher_logits/abc/x.npz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}", encoding="utf-8")
    sentence_pairs.table(None)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == ["| teacher: m3e-small fine-tuned | 1 | 0.8000 | 0.7000 | 0.7500 | 0.6500 |",
                    "| bilstm-alone | 2 | 0.8300 ± 0.0141 | 0.7000 ± 0.0000 | 0.7500 ± 0.0000 | 0.6500 ± 0.0000 |"]


def test_pairs_bench_refuses_a_finished_run_that_another_recipe_made(tmp_path):
    """An edited recipe (the teacher's learning rate here) never gets the old run's numbers written beside it."""
    import sentence_pairs
    from args import parse_args
    from utils import InputError

    out = tmp_path / "teacher"
    command = [sys.executable, "teacher_train_glue.py", "--learning_rate", "5e-5", "--num_train_epochs", "1"]
    assert not sentence_pairs.finished(str(out), command)  # nothing there yet
    write_results(str(out / "best" / "checkpoint.json"), {"args": vars(parse_args("teacher", command[2:]))})
    write_results(str(out / "summary.json"), {"best_dev_acc": 0.82})
    assert sentence_pairs.finished(str(out), command)
    edited = [*command[:2], "--learning_rate", "1e-4", "--num_train_epochs", "2"]
    with pytest.raises(InputError, match=r"teacher: trained with --lr 5e-05 \(now 0.0001\), --max_epoch 1 "
                                         r"\(now 2\); move it away"):
        sentence_pairs.finished(str(out), edited)


def test_pairs_teacher_lr_runs_the_recipe_at_that_rate_over_fewer_steps_and_tables_it(tmp_path, monkeypatch,
                                                                                     capsys):
    import sentence_pairs
    from args import parse_args

    monkeypatch.setattr(sentence_pairs, "RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(sentence_pairs, "CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sentence_pairs, "fetch_offline_teacher", lambda: "m3e-small")
    ran = []

    def fake_run(command, **kwargs):  # a finished run, as teacher_train_glue.py leaves it
        ran.append(command)
        out = command[command.index("--output_dir") + 1]
        write_results(os.path.join(out, "best", "checkpoint.json"), {"args": vars(parse_args("teacher", command[2:]))})
        write_results(os.path.join(out, "summary.json"), {
            "best_dev_acc": 0.85, "best_dev_f1": 0.86, "dev_unseen_acc": 0.84, "dev_unseen_f1": 0.83, "best_step": 300,
            "dev_acc": [[300, 0.85]], "dev_f1": [[300, 0.86]], "epoch_seconds": [1.0], "train_examples_per_second": 1.0})

    monkeypatch.setattr(sentence_pairs.subprocess, "run", fake_run)
    args = SimpleNamespace(lr=1e-4, max_steps=300, num_threads=1)
    sentence_pairs.teacher_lr(args)
    sentence_pairs.teacher_lr(args)  # finished: not run again
    (command,) = ran
    parsed = parse_args("teacher", command[2:])
    assert (parsed.lr, parsed.max_steps, parsed.lr_schedule) == (1e-4, 300, "linear")  # the recipe's schedule
    assert command[-1] == "--overwrite_output_dir" and command[1] == "teacher_train_glue.py"
    result = json.loads((tmp_path / "results" / "teacher_lr" / "lr0.0001_steps300.json").read_text())
    assert (result["dev_acc"], result["lr"], result["max_steps"]) == (0.85, 1e-4, 300)
    sentence_pairs.table(None)
    assert "| teacher at lr 0.0001, 300 steps | 1 | 0.8500 | 0.8600 | 0.8400 | 0.8300 |" in capsys.readouterr().out


def test_robustness_parameters_fill_older_results_from_their_checkpoint_config(tmp_path, monkeypatch):
    import robustness_analyses
    import robustness_configs

    monkeypatch.setattr(robustness_analyses, "RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(robustness_configs, "CACHE_DIR", str(tmp_path / "cache"))
    old, new = tmp_path / "results" / "bow-alone" / "seed1.json", tmp_path / "results" / "bow-alone" / "seed7.json"
    write_results(str(old), {"seed": 1, "dev_acc": 0.9, "parameters": None})
    write_results(str(new), {"seed": 7, "dev_acc": 0.9, "parameters": {"embedding": 1, "other": 2}})
    best = tmp_path / "cache" / "robustness" / "bow-alone" / "seed1" / "best"
    best.mkdir(parents=True)
    (best / "checkpoint.json").write_text(json.dumps({"model": {
        "student": "bow", "vocab_size": 10, "num_classes": 2, "emb_dim": 4, "hidden_size": 3}}))
    robustness_analyses.parameters(None)
    # 10 x 4 embedding; tanh dense 4 x 3 + 3, output 3 x 2 + 2
    assert json.loads(old.read_text()) == {"seed": 1, "dev_acc": 0.9, "parameters": {"embedding": 40, "other": 23}}
    assert json.loads(new.read_text())["parameters"] == {"embedding": 1, "other": 2}  # recorded ones stay


def test_robustness_runs_continue_from_their_last_checkpoint(tmp_path, monkeypatch):
    import argparse

    import robustness_configs

    monkeypatch.setattr(robustness_configs, "teacher_dir",
                        lambda args, weightless_ok=False: str(tmp_path / ("committed" if weightless_ok else "best")))
    monkeypatch.setattr(robustness_configs, "fetch_offline_teacher", lambda: str(tmp_path / "m3e"))
    args = argparse.Namespace(student="textcnn", num_threads=1)
    fresh = robustness_configs.command(args, "distilled", 7, str(tmp_path / "run"))
    assert fresh[-1] == "--overwrite_output_dir" and fresh[fresh.index("--seed") + 1] == "7"
    # a distillation reads the committed logits, and may take the teacher's checkpoint without its weights
    assert fresh[fresh.index("--logits_cache") + 1] == robustness_configs.TEACHER_LOGITS
    assert fresh[fresh.index("--teacher_dir") + 1] == str(tmp_path / "committed")
    assert fresh[fresh.index("--student") + 1] == "textcnn" and "--eval_sets" in fresh
    (tmp_path / "run" / "last").mkdir(parents=True)
    assert robustness_configs.command(args, "distilled", 7, str(tmp_path / "run"))[-2:] == [
        "--init_from_ckpt", str(tmp_path / "run" / "last")]
    tinybert = robustness_configs.command(args, "tinybert_aug", 7, str(tmp_path / "tiny"))
    assert tinybert[1] == "tinybert_distill.py" and "--student" not in tinybert
    # TinyBERT's stage 1 reads the teacher's layers (its weights); stage 2 alone, the committed logits only
    assert tinybert[tinybert.index("--teacher_dir") + 1] == str(tmp_path / "best")
    for config, teacher in (("tinybert_s2_aug", "committed"), ("tinybert_init", "best")):
        cmd = robustness_configs.command(args, config, 7, str(tmp_path / "tiny"))
        assert cmd[cmd.index("--teacher_dir") + 1] == str(tmp_path / teacher)
        assert cmd[cmd.index("--logits_cache") + 1] == robustness_configs.TEACHER_LOGITS
    (tmp_path / "tiny" / "stage1" / "last").mkdir(parents=True)  # stopped in TinyBERT's stage 1: continued there
    assert robustness_configs.command(args, "tinybert_aug", 7, str(tmp_path / "tiny"))[-2:] == [
        "--init_from_ckpt", str(tmp_path / "tiny" / "stage1" / "last")]
    (tmp_path / "tiny" / "last").mkdir()  # ... and in stage 2, there
    assert robustness_configs.command(args, "tinybert_aug", 7, str(tmp_path / "tiny"))[-1] == str(
        tmp_path / "tiny" / "last")
    assert robustness_configs.run_name("textcnn", "tinybert_aug") == "tinybert_aug"
    assert robustness_configs.run_name("textcnn", "distilled") == "textcnn-distilled"


def test_stage1_cache_bytes_count_hidden_states_and_attention_maps_of_mapped_layers():
    from tinybert_cache import cache_bytes

    config = SimpleNamespace(hidden_size=4, num_attention_heads=2)
    # sentences of 3 and 5 tokens, 2 mapped layers: (1 + 2) x length x 4 hidden values and
    # 2 layers x 2 heads x length^2 attention values each, 2 bytes a value
    expected = ((3 * 3 * 4 + 2 * 2 * 9) + (3 * 5 * 4 + 2 * 2 * 25)) * 2
    assert cache_bytes([3, 5], [2, 4], config, 2) == expected


def test_cpu_model_names_the_processor_and_its_cores():
    from common import cpu_model

    name = cpu_model()
    assert name.endswith(f", {os.cpu_count()} cores")
    if os.path.isfile("/proc/cpuinfo") and "model name" in open("/proc/cpuinfo", encoding="utf-8").read():
        assert name.split(",")[0] in open("/proc/cpuinfo", encoding="utf-8").read()  # not platform's "x86_64"


def test_tinybert_shapes_for_serving_follow_tinybert_distills_config_rule():
    from paddlenlp.transformers import BertConfig, BertForSequenceClassification

    from serve_models import tinybert_name, tinybert_student

    teacher = BertForSequenceClassification(BertConfig(
        vocab_size=30, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=64, num_classes=2))
    name = tinybert_name("2x16")
    student = tinybert_student(name, teacher, num_classes=2)
    assert name == "tinybert-L2-h16" and isinstance(student, BertForSequenceClassification)
    config = student.config
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (2, 16, 64)


def test_robustness_seeds_of_a_configuration_share_its_transfer_set(tmp_path, monkeypatch):
    """`logits CONFIG` fills the cache entry with seed 1's flags: every seed's must give the same
    transfer set, differing from seed 1's only in the training seed and where the run goes."""
    import argparse

    import robustness_configs
    from args import parse_args

    monkeypatch.setattr(robustness_configs, "teacher_dir", lambda args, weightless_ok=False: str(tmp_path / "best"))
    monkeypatch.setattr(robustness_configs, "fetch_offline_teacher", lambda: str(tmp_path / "m3e"))
    args = argparse.Namespace(student="bow", num_threads=1)
    for config, (job, _, _) in robustness_configs.CONFIGS.items():
        if job == "distill":
            commands = [robustness_configs.command(args, config, seed, str(tmp_path / str(seed))) for seed in (1, 7)]
            flags = [vars(parse_args("distill", cmd[2:])) for cmd in commands]
            differ = {name for name in flags[0] if flags[0][name] != flags[1][name]}
            assert differ == {"seed", "output_dir", "logdir", "run_name"}, config


def test_by_length_averages_each_length_bin_and_leaves_empty_bins_none():
    import numpy as np

    from robustness_analyses import LENGTH_BINS, by_length

    assert LENGTH_BINS == [0, 20, 40, 80, 160, 100000]
    # 19 words is the first bin's, 20 the second's; 400 the open last bin's
    assert by_length(np.array([19, 20, 39, 400]), np.array([1.0, 0.0, 1.0, 1.0])) == [1.0, 0.5, None, None, 1.0]


def test_robustness_analyses_refuse_unfinished_runs_before_any_work(tmp_path, monkeypatch):
    import pytest

    import robustness_analyses
    import robustness_configs

    monkeypatch.setattr(robustness_configs, "CACHE_DIR", str(tmp_path))
    done = tmp_path / "robustness" / "bilstm-distilled" / "seed1"
    done.mkdir(parents=True)
    (done / "summary.json").write_text("{}")
    (tmp_path / "robustness" / "bilstm-distilled" / "seed7" / "best").mkdir(parents=True)  # still training
    robustness_analyses.require_finished("bilstm-distilled", [1])
    with pytest.raises(SystemExit, match=r"bilstm-distilled: no finished run for seed\(s\) 7 in "):
        robustness_analyses.require_finished("bilstm-distilled", [1, 7])


def test_robustness_analyses_skip_seeds_their_results_already_hold(tmp_path, monkeypatch):
    """A fresh machine has no checkpoints: lengths and unseen of runs already measured are skipped, not failed;
    lengths from before it scored dev's unseen texts are measured again."""
    import argparse

    import robustness_analyses
    import robustness_configs

    monkeypatch.setattr(robustness_configs, "CACHE_DIR", str(tmp_path / "cache"))  # no checkpoints at all
    monkeypatch.setattr(robustness_analyses, "RESULTS", str(tmp_path / "results"))
    done = tmp_path / "results" / "bilstm-distilled"
    done.mkdir(parents=True)
    runs = [{"seed": 7, "dev_unseen_acc": [0.9]}, {"seed": 1, "dev_unseen_acc": [0.8]}]
    for name in ("lengths.json", "unseen_words.json"):
        (done / name).write_text(json.dumps({"runs": runs}))
    for analysis in (robustness_analyses.lengths, robustness_analyses.unseen):
        analysis(argparse.Namespace(student="bilstm", config="distilled", seeds=[1, 7]))  # nothing to read: returns
        with pytest.raises(SystemExit, match="no finished run for seed"):  # a seed it lacks needs the checkpoints
            analysis(argparse.Namespace(student="bilstm", config="distilled", seeds=[1, 7, 2021]))
    (done / "lengths.json").write_text(json.dumps({"runs": [{"seed": 7}, {"seed": 1}]}))
    with pytest.raises(SystemExit, match="no finished run for seed"):
        robustness_analyses.lengths(argparse.Namespace(student="bilstm", config="distilled", seeds=[1, 7]))


def test_family_table_judges_the_gain_of_distillation_against_the_larger_spread(tmp_path, monkeypatch, capsys):
    import family_table

    monkeypatch.setattr(family_table, "RESULTS", str(tmp_path))
    runs = {"bilstm-alone": [0.910, 0.920, 0.915], "bilstm-alpha0.5": [0.930, 0.925, 0.935],  # +1.5, std 0.005
            "bow-alone": [0.905, 0.910, 0.915], "bow-alpha0.5": [0.900, 0.925, 0.915],  # +0.33, std 0.0126
            "textcnn-alone": [0.80] * 3, "textcnn-alone_lr1e-3": [0.905] * 3,  # TextCNN's alone recipe was tuned
            "gru-alpha0.5_h100": [0.93] * 3, "gru-alpha0.5": [0.94] * 3,  # a member of another size has its own rows
            "bow-alone_paddlenlp": [0.90] * 3, "bow-hard_paddlenlp": [0.91] * 3,  # ... and one of another shape
            "tinybert_s2": [0.90, 0.91, 0.92], "tinybert": [0.93, 0.935, 0.94],  # TinyBERT: stage 1 against stage 2
            "bow-hard": [0.905, 0.905, 0.900],  # -0.67 against BOW alone's std 0.005: a loss beyond the spread
            "gru-alone": [0.95, 0.95], "tinybert_s2_aug": [0.95, 0.95]}  # two seeds: no claim yet
    unseen = {"bilstm-alone": [0.890, 0.900, 0.895], "bilstm-alpha0.5": [0.895, 0.890, 0.900]}  # +0.0: within
    for name, devs in runs.items():
        for i, (seed, dev) in enumerate(zip([1, 7, 2021], devs)):
            dev_unseen = {"dev_unseen_acc": unseen[name][i]} if name in unseen else {}
            write_results(str(tmp_path / "robustness" / name / f"seed{seed}.json"),
                          {"seed": seed, "dev_acc": dev, "ood_acc": 0.9, "parameters": {"embedding": 3e6, "other": 2e5},
                           **dev_unseen})
    family_table.table({"student-h300": 150.0, "tinybert-L2-h256": 20.0, "ernie-gram-zh-shaped": 5.0},
                        str(tmp_path / "family.json"))
    rows = {(r["model"], r["recipe"]): r for r in json.loads((tmp_path / "family.json").read_text())["rows"]}
    shaped = "BOW, PaddleNLP's shape"
    assert list(rows) == [("BOW", "alone"), ("BOW", "distilled"), ("BOW", "hard labels"), (shaped, "alone"),
                          (shaped, "hard labels"),
                          ("TextCNN", "alone"), ("Bi-LSTM", "alone"), ("Bi-LSTM", "distilled"), ("Bi-GRU", "distilled"),
                          ("Bi-GRU 100", "distilled"), ("TinyBERT 2 x 256", "stage 2 alone"),
                          ("TinyBERT 2 x 256", "stages 1 + 2")]
    assert rows[shaped, "hard labels"]["config"] == "bow-hard_paddlenlp"
    assert rows[shaped, "hard labels"]["gain"]["dev"]["points"] == pytest.approx(1.0)
    assert rows["TinyBERT 2 x 256", "stages 1 + 2"]["gain"] == {
        "over": "stage 2 alone", "dev": {"points": pytest.approx(2.5), "beyond_spread": True}, "dev_unseen": None}
    assert rows["TinyBERT 2 x 256", "stage 2 alone"]["gain"] is None
    assert rows["Bi-GRU 100", "distilled"]["config"] == "gru-alpha0.5_h100"
    assert rows["Bi-GRU 100", "distilled"]["gain"] is None  # no alone run of its size
    assert rows["Bi-GRU", "distilled"]["gain"] is None  # nor of Bi-GRU alone's two seeds
    assert rows["TextCNN", "alone"]["dev"] == [0.905, 0.0, 3]
    assert rows["Bi-LSTM", "distilled"]["gain"] == {
        "over": "alone", "dev": {"points": pytest.approx(1.5), "beyond_spread": True},
        "dev_unseen": {"points": pytest.approx(0.0, abs=1e-9), "beyond_spread": False}}  # the gain gone on unseen texts
    assert rows["BOW", "distilled"]["gain"]["dev"] == {"points": pytest.approx(1 / 3), "beyond_spread": False}
    assert rows["BOW", "hard labels"]["gain"]["dev"] == {"points": pytest.approx(-2 / 3), "beyond_spread": True}
    assert rows["Bi-LSTM", "alone"]["gain"] is None
    out = capsys.readouterr().out
    assert "| Bi-LSTM | distilled (`recipes/distill.txt`) | 3 | 0.9300 ± 0.0050 | +1.50 | 0.8950 ± 0.0050 " \
           "| +0.00 (within the spread) | 0.9000 ± 0.0000 | 3.0M + 0.20M | 150 (-; 30x) | 0.934 (distill_lstm) |" in out
    assert "| BOW | distilled (`recipes/distill.txt`) | 3 | 0.9133 ± 0.0126 | +0.33 (within the spread) | - | - |" in out
    assert "| BOW | hard labels (`--distill_loss hard --alpha 0`) | 3 | 0.9033 ± 0.0029 | -0.67 | - | - |" in out
    assert "| TextCNN | alone (`recipes/student.txt` `--lr 1e-3`) | 3 | 0.9050 ± 0.0000 |" in out
    assert "| TinyBERT 2 x 256 | stages 1 + 2 (`tinybert_distill.py --n_iter 0 --stage1_epochs 1`) | 3 | 0.9350 ± 0.0050 " \
           "| +2.50 over stage 2 alone | - | - | 0.9000 ± 0.0000 | 3.0M + 0.20M | 20 (-; 4.0x) |" in out
    assert f"| {shaped} | alone (`recipes/student.txt` `--pooling sum --hidden_size 128 --fc_hidden_size 96`) |" in out


def label_bench(tmp_path, monkeypatch, rows):
    """bench_label_errors on a toy task of `rows` training rows (half of each label), its cache and results in
    tmp_path: (the module, the task's (label, text) rows)."""
    import label_cleaning as bench
    from conftest import toy_sentences, write_tsv

    task = tmp_path / "task"
    task.mkdir()
    sentences = toy_sentences(rows, seed=0)
    write_tsv(task / "train.tsv", sentences)
    write_tsv(task / "dev.tsv", sentences[:8])
    for name, value in [("TASK", task), ("WORK", tmp_path / "work"), ("RESULTS", tmp_path / "results"),
                        ("FOLD_PROBS", tmp_path / "results" / "fold_probs")]:
        monkeypatch.setattr(bench, name, str(value))
    return bench, sentences


def fake_label_errors(ran, truth):
    """subprocess.run standing in for label_errors.py: records the command and writes what detect reads,
    every row's out-of-sample probabilities (sure of the row's true label in `truth`, but for every
    7th row), label_issues.json, and the cleaned set's directory."""
    from cleaning import PROBS

    def run(cmd, **kwargs):
        ran.append(cmd)
        out = cmd[cmd.index("--output_dir") + 1]
        os.makedirs(os.path.join(out, "data"), exist_ok=True)
        sure = np.linspace(0.6, 0.99, len(truth))
        p_true = np.where(np.arange(len(truth)) % 7 == 0, 1 - sure, sure)
        p_positive = np.where(np.asarray(truth) == 1, p_true, 1 - p_true)
        np.save(os.path.join(out, PROBS), np.stack([1 - p_positive, p_positive], axis=1).astype("float32"))
        rule = cmd[cmd.index("--filter_by") + 1] if "--filter_by" in cmd else "confident_learning"
        with open(os.path.join(out, "label_issues.json"), "w", encoding="utf-8") as f:
            json.dump({"filter_by": rule, "fold_seconds": [300, 450]}, f)
    return run


def test_label_bench_flips_a_fixed_share_and_resumes_on_a_fresh_machine(tmp_path, monkeypatch, capsys):
    """The symmetric draw flips exactly its share of labels (file lines listed), sym10_seed0 the rows the
    first bench flipped; a detection whose cleaned data is gone with the machine runs again while runs on
    that data are still to come, and `train` says which step writes missing data instead of training on
    nothing."""
    import argparse
    import shutil

    bench, rows = label_bench(tmp_path, monkeypatch, 40)
    draw = bench.draw_name("sym10_seed0")
    data_dir, flips = bench.noisy_task(draw)
    noisy = (tmp_path / "work" / "sym10_seed0" / "noisy" / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert flips == {int(i) + 2 for i in np.random.default_rng(0).choice(40, size=4, replace=False)}
    assert all(noisy[line - 1] != "\t".join(rows[line - 2]) for line in flips)
    assert sum(a != "\t".join(b) for a, b in zip(noisy[1:], rows)) == 4
    assert bench.noisy_task(draw) == (data_dir, flips)  # read back, not drawn again

    ran = []
    monkeypatch.setattr(bench.subprocess, "run", fake_label_errors(ran, [int(label) for label, _ in rows]))
    args = argparse.Namespace(model="student", tag=None, draw=draw, num_threads=1, processes=1, extra=[], seeds=[1],
                              data="drop-student")
    with pytest.raises(SystemExit, match="no such data; `bench_label_errors.py detect --draw sym10_seed0 --model "
                                         "student` writes it"):
        bench.train(args)
    bench.detect(args)  # label_errors.py (faked) scores, then writes each cleaned set
    assert [cmd[cmd.index("--clean") + 1] for cmd in ran] == ["drop", "relabel"]
    result = tmp_path / "results" / "sym10_seed0" / "detect_student.json"
    detected = json.loads(result.read_text())
    assert (detected["flipped"], detected["cleaned_by"], detected["wall_minutes"]) == (4, "confident_learning", 12.5)

    # the folds' probabilities are kept with the results (committed), so a draw's folds outlast the machine
    assert all(cmd[cmd.index("--probs_cache") + 1] == str(tmp_path / "results" / "fold_probs") for cmd in ran)

    ran.clear()
    shutil.rmtree(tmp_path / "work" / "sym10_seed0")  # a new machine: the cache is gone, the results are not
    result.write_text('{"wall_minutes": 48}')
    bench.detect(args)  # measured, but no cleaned data on this machine: written again, the measurement kept
    assert len(ran) == 2 and json.loads(result.read_text()) == {"wall_minutes": 48}
    ran.clear()
    for seed in bench.SEEDS:  # every run on the dropped set has landed; the relabelled set's data is here
        path = tmp_path / "results" / "sym10_seed0" / "train_drop-student" / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    shutil.rmtree(bench.data_dir_of(draw, "drop-student"))
    bench.detect(args)
    assert not ran and "detect_student.json: done, skipped" in capsys.readouterr().out

    # a tagged variant (other ARGS) is a scorer of its own, whose label_errors.py may run under the launcher
    tagged = argparse.Namespace(**{**vars(args), "tag": "3epochs", "processes": 2, "extra": ["--num_train_epochs", "3"]})
    bench.detect(tagged)
    assert ran[0][1:3] == ["-m", "paddle.distributed.launch"] and ran[0][-2:] == ["--num_train_epochs", "3"]
    detected = json.loads((tmp_path / "results" / "sym10_seed0" / "detect_student_3epochs.json").read_text())
    assert detected["scorer"] == "student_3epochs" and detected["processes"] == 2
    drop = os.path.join("sym10_seed0", "issues-student_3epochs-drop", "data")
    assert detected["cleaned_data"]["drop"].endswith(drop)
    with pytest.raises(SystemExit, match="`bench_label_errors.py detect --draw sym10_seed0 --model teacher --tag "
                                         "3epochs` writes it"):
        bench.train(argparse.Namespace(**{**vars(args), "data": "drop-teacher_3epochs"}))
    for bad in ("clean-teacher", "drop-ernie", "drop-teacher_3 epochs"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.data_name(bad)


def test_train_on_a_cleaned_set_scores_the_tasks_unseen_dev_texts(tmp_path, monkeypatch):
    """A cleaned set that dropped a row whose twin is in dev is still scored on dev's texts the task's
    clean train does not hold, the same set for every row of the label table."""
    import argparse

    from conftest import toy_sentences, write_tsv

    bench, rows = label_bench(tmp_path, monkeypatch, 40)
    unseen = [row for row in toy_sentences(60, seed=1) if row not in rows][:3]
    write_tsv(tmp_path / "task" / "dev.tsv", [*rows[:4], *unseen])
    draw = bench.draw_name("sym10_seed0")
    drop = tmp_path / "data"
    drop.mkdir()
    write_tsv(drop / "train.tsv", rows[1:])  # dev's first text no longer in train
    monkeypatch.setattr(bench, "data_dir_of", lambda draw, name: str(drop))
    ran = []

    def student(cmd, **kwargs):
        ran.append(cmd)
        name, path = cmd[cmd.index("--eval_sets") + 1].split("=", 1)
        scored = (tmp_path / path).read_text(encoding="utf-8").splitlines()
        out = cmd[cmd.index("--output_dir") + 1]
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
            json.dump({"best_dev_acc": 0.9, "dev_unseen_acc": 0.5,
                       "eval_sets": {name: {"file": path, "examples": len(scored) - 1, "acc": 0.75}}}, f)
        assert scored == ["label\ttext_a", *("\t".join(row) for row in unseen)]

    monkeypatch.setattr(bench.subprocess, "run", student)
    bench.train(argparse.Namespace(draw=draw, data="drop-student", seeds=[1], num_threads=1))
    result = json.loads((tmp_path / "results" / "sym10_seed0" / "train_drop-student" / "seed1.json").read_text())
    assert len(ran) == 1 and (result["dev_unseen_acc"], result["dev_unseen_examples"]) == (0.75, 3)


def test_a_class_conditional_draw_flips_each_labels_own_share(tmp_path, monkeypatch):
    """cc15_5_seed0 flips 15% of the positive rows and 5% of the negative ones; another seed draws other rows."""
    import argparse
    import collections

    bench, rows = label_bench(tmp_path, monkeypatch, 200)
    _, flips = bench.noisy_task(bench.draw_name("cc15_5_seed0"))
    assert collections.Counter(rows[line - 2][0] for line in flips) == {"1": 15, "0": 5}
    noisy = (tmp_path / "work" / "cc15_5_seed0" / "noisy" / "train.tsv").read_text(encoding="utf-8").splitlines()
    for line, (label, text) in enumerate(rows, start=2):
        assert noisy[line - 1] == f"{1 - int(label) if line in flips else label}\t{text}"
    first, second = (bench.noisy_task(bench.draw_name(f"sym10_seed{seed}"))[1] for seed in (0, 1))
    assert len(first) == len(second) == 20 and first != second
    for bad in ("sym10", "cc15_seed0", "sym101_seed0", "gauss10_seed0"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.draw_name(bad)


def test_detect_scores_every_rule_and_its_rows_file_recounts_each(tmp_path, monkeypatch, capsys):
    """Every --filter_by rule is scored from the one set of probabilities (cleanlab's flags for it), the
    committed per-row file recounts each rule's flagged, precision, recall and F1, and the table shows them."""
    import argparse
    import csv

    from cleanlab.filter import find_label_issues

    bench, rows = label_bench(tmp_path, monkeypatch, 200)
    draw = bench.draw_name("cc15_5_seed0")
    truth = [int(label) for label, _ in rows]
    monkeypatch.setattr(bench.subprocess, "run", fake_label_errors([], truth))
    monkeypatch.setattr(bench, "fetch_offline_teacher", lambda: "m3e-small")
    bench.detect(argparse.Namespace(model="teacher", tag="1epoch", draw=draw, num_threads=1, processes=1,
                                    extra=["--filter_by", "both"], seeds=[1]))
    result = json.loads((tmp_path / "results" / "cc15_5_seed0" / "detect_teacher_1epoch.json").read_text())
    assert result["folds"] == "grouped by text" and result["cleaned_by"] == "both"
    assert result["flipped"] == 20 and result["flipped_by_true_label"] == {"0": 5, "1": 15}
    assert set(result["rules"]) == set(bench.RULES) and "confident_learning" in bench.RULES

    with open(tmp_path / "results" / "cc15_5_seed0" / result["per_row"], encoding="utf-8", newline="") as f:
        judged = list(csv.DictReader(f, delimiter="\t"))
    assert [int(row["line"]) for row in judged] == list(range(2, 202))
    given = np.asarray([int(row["label"]) for row in judged])
    assert all((given[i] != truth[i]) == (row["flipped"] == "1") for i, row in enumerate(judged))
    probs = np.load(os.path.join(bench.issues_dir(draw, "drop", "teacher_1epoch"), "out_of_sample_probs.npy"))
    for rule, scores in result["rules"].items():
        flagged = np.asarray([row[rule] == "1" for row in judged])
        assert set(np.flatnonzero(flagged)) == set(np.flatnonzero(find_label_issues(given, probs, filter_by=rule)))
        flipped = np.asarray([row["flipped"] == "1" for row in judged])
        correct = int((flagged & flipped).sum())
        precision, recall = correct / max(flagged.sum(), 1), correct / flipped.sum()
        assert (scores["flagged"], scores["correct"]) == (flagged.sum(), correct)
        assert scores["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
        assert (scores["precision"], scores["recall"]) == pytest.approx((precision, recall))
    assert len({scores["f1"] for scores in result["rules"].values()}) > 1  # the rules differ here

    bench.table(None)
    scores = result["rules"]["confident_learning"]
    assert (f"| cc15_5_seed0 | teacher_1epoch --filter_by both | confident_learning | {scores['flagged']} "
            f"| {scores['precision']:.3f} | {scores['recall']:.3f} | {scores['f1']:.3f} |") in capsys.readouterr().out


def test_random_students_take_a_hidden_size_by_name():
    import argparse

    from serve_models import random_student, random_student_name

    assert [random_student_name(t) for t in ("student", "bilstm", "gru-h128", "bow")] == [
        "student", "student-h300", "gru-h128", "bow-h300"]
    with pytest.raises(argparse.ArgumentTypeError, match="'lstm-h128': not a student"):
        random_student_name("lstm-h128")
    with pytest.raises(argparse.ArgumentTypeError):
        random_student_name("gru-h0")
    from data import vocab_from_words

    vocab = vocab_from_words(["[PAD]", "[UNK]", "好"])
    gru = random_student("gru-h128", vocab, 2)
    assert type(gru).__name__ == "BiGRU" and gru.fc.weight.shape == [256, 128]
    assert random_student("student", vocab, 2).fc.weight.shape == [600, 300]


def test_the_real_sets_worst_rows_are_tabled_with_a_persons_judgements(tmp_path, monkeypatch, capsys):
    """Each of the worst rows is judged once as wrong, ambiguous or correct, and the table counts them; a
    judgement file that misreads a row or leaves one out is one error naming the file (and line)."""
    import label_cleaning as bench
    from conftest import toy_sentences, write_tsv

    task = tmp_path / "task"
    task.mkdir()
    write_tsv(task / "train.tsv", toy_sentences(12, seed=0))
    monkeypatch.setattr(bench, "TASK", str(task))
    worst = [{"line": str(line), "label": "1", "suggested_label": "0", "label_quality": "0.01",
              "text_a": "不好|太差" if line == 5 else "一般"} for line in (5, 9, 3)]
    result = tmp_path / "real_teacher.json"
    result.write_text(json.dumps({"model": "teacher", "flagged": 4, "worst_30": worst}), encoding="utf-8")
    judgements = tmp_path / "real_teacher_judgements.tsv"
    judgements.write_text("line\tjudgement\tnote\n5\twrong\tsays bad\n9\tambiguous\tmixed\n3\tcorrect\t\n",
                          encoding="utf-8")
    bench.real_table(str(result))
    out = capsys.readouterr().out
    assert "teacher scorer on the real training set: 4 of 12 rows flagged; of the 3 worst, 1 wrong, 1 ambiguous, " \
           "1 correct" in out
    assert "| 1 | 5 | 1 | 0 | 0.01 | 不好\\|太差 | wrong: says bad |" in out

    judgements.write_text("line\tjudgement\tnote\n5\twrong\tx\n9\tmaybe\tx\n3\tcorrect\tx\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=f"{judgements}:3: expected line<TAB>wrong\\|ambiguous\\|correct"):
        bench.real_table(str(result))
    judgements.write_text("line\tjudgement\tnote\n5\twrong\tx\n9\twrong\tx\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"judge exactly the worst rows: lines \[3\] differ"):
        bench.real_table(str(result))


def test_robustness_keeps_a_tinybert_runs_stage1_losses_and_reruns_results_without_dev_unseen(tmp_path):
    import robustness_analyses
    from visualdl import LogWriter

    with LogWriter(logdir=str(tmp_path / "run" / "vdl" / "stage1")) as writer:
        for step, (att, hidden) in enumerate([(30.0, 2.7), (9.0, 1.0), (5.0, 0.7)], start=1):
            writer.add_scalar("train/att", att, step)
            writer.add_scalar("train/hidden", hidden, step)
            writer.add_scalar("train/lr", 5e-4, step)
    assert robustness_analyses.stage1_losses(str(tmp_path / "run")) == {
        "stage1_losses": {"att": [30.0, 9.0, 5.0], "hidden": [pytest.approx(2.7), 1.0, pytest.approx(0.7)]}}
    assert robustness_analyses.stage1_losses(str(tmp_path / "word_student")) == {}

    old, new = tmp_path / "seed1.json", tmp_path / "seed7.json"
    write_results(str(old), {"seed": 1, "dev_acc": 0.9})
    write_results(str(new), {"seed": 7, "dev_acc": 0.9, "dev_unseen_acc": 0.88})
    assert [robustness_analyses.measured_unseen(str(p)) for p in (old, new, tmp_path / "seed2021.json")] == [
        False, True, False]


def served(model, speed, onednn=False, threads=1, diff=1e-7):
    """An exported row of bench_serve.py at batch 1, its passes all at `speed`."""
    return {"model": model, "mode": "exported", "threads": threads, "batch_size": 1, "onednn": onednn,
            "sentences_per_second": speed, "sentences_per_second_passes": [speed] * 3,
            "eager_vs_exported": {"max_abs_diff": diff, "same_labels": True}}


def test_each_model_is_served_at_its_faster_onednn_setting_and_compared_with_m3e_small_first(tmp_path, capsys):
    import family_table
    from serve_speeds import best_exported, print_best

    failed = {"model": "textcnn-h300", "mode": "exported", "threads": 1, "batch_size": 1, "onednn": True,
              "error": "failed (exit status 1): RuntimeError: std::exception"}
    rows = [served("bow-h128", 100.0), served("bow-h128", 150.0, onednn=True),
            served("gru-h100", 50.0), served("gru-h100", 80.0, onednn=True, diff=0.2),  # wrong outputs: not a setting
            served("textcnn-h300", 60.0), failed, {**served("textcnn-h300", 900.0), "mode": "eager"},
            served("bow-h128", 400.0, threads=2),
            served("m3e-small", 10.0), served("m3e-small", 20.0, onednn=True),
            served("ernie-gram-zh-shaped", 2.0), served("ernie-gram-zh-shaped", 1.0, onednn=True)]
    best = best_exported(rows)
    assert {key: (r["sentences_per_second"], r["onednn"]) for key, r in best.items()} == {
        ("bow-h128", 1, 1): (150.0, True), ("gru-h100", 1, 1): (50.0, False), ("textcnn-h300", 1, 1): (60.0, False),
        ("bow-h128", 2, 1): (400.0, False), ("m3e-small", 1, 1): (20.0, True),
        ("ernie-gram-zh-shaped", 1, 1): (2.0, False)}
    print_best(rows, ["bow-h128", "gru-h100", "textcnn-h300", "m3e-small", "ernie-gram-zh-shaped"], [1, 2], [1])
    out = capsys.readouterr().out
    assert "| oneDNN off / on | x m3e-small | x ernie-gram-zh shape (the online recipe's teacher) |" in out
    assert "| bow-h128 | 1 | 1 | 150.0 (oneDNN on) | 100.0 / 150.0 | 7.5x (7.5x .. 7.5x) | 75x (75x .. 75x) |" in out
    assert "| gru-h100 | 1 | 1 | 50.0 (oneDNN off) | 50.0 / 80.0 (not the eager model's outputs) | 2.5x" in out
    assert f"| textcnn-h300 | 1 | 1 | 60.0 (oneDNN off) | 60.0 / {failed['error']} | 3.0x" in out
    assert "| bow-h128 | 2 | 1 | 400.0 (oneDNN off) | 400.0 / - | - | - |" in out  # no teacher timed on 2 threads
    path = tmp_path / "serve.json"
    write_results(str(path), {"rows": rows})
    assert family_table.serving_speeds(str(path)) == {"bow-h128": 150.0, "gru-h100": 50.0, "textcnn-h300": 60.0,
                                                        "m3e-small": 20.0, "ernie-gram-zh-shaped": 2.0}


def test_a_failed_onednn_configuration_is_a_row_any_other_failure_stops_the_bench():
    import subprocess
    import sys

    from serve_speeds import time_configuration

    crash = [sys.executable, "-c", "import sys; sys.exit('RuntimeError: std::exception')"]
    assert time_configuration(crash, [1, 64], model="textcnn-h300", mode="exported", threads=2, onednn=True) == [
        {"model": "textcnn-h300", "mode": "exported", "threads": 2, "onednn": True, "batch_size": batch,
         "error": "failed (exit status 1): RuntimeError: std::exception"} for batch in (1, 64)]
    with pytest.raises(subprocess.CalledProcessError):
        time_configuration(crash, [1], model="textcnn-h300", mode="exported", threads=2, onednn=False)
    rows = [{"model": "m", "batch_size": 1}]
    assert time_configuration([sys.executable, "-c", f"print('log'); print({json.dumps(rows)!r})"], [1],
                              model="m", mode="eager", threads=1, onednn=False) == rows


def test_family_students_have_their_runs_shape_and_the_vocabulary_their_job_builds(toy_task, tmp_path, monkeypatch):
    import argparse

    import robustness_configs
    from serve_models import family_name, family_run, family_student
    from data import segment, vocab_words
    from students import parameter_counts

    data_dir, _ = toy_task
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("键盘手感一流\n", encoding="utf-8")
    monkeypatch.setitem(robustness_configs.CONFIGS, "toy_paddlenlp", (
        "distill", ["--n_iter", "1", "--unlabeled_path", str(unlabeled), *robustness_configs.PADDLENLP_BOW], ""))
    assert family_run("bow-toy_paddlenlp") == "bow-toy_paddlenlp"
    for bad in ("bow-nothing", "lstm-alone", "bow-tinybert", "alone"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a run of bench_robustness.py's word students"):
            family_run(bad)
    alone, alone_vocab, labels, _ = family_student("bow-alone_paddlenlp", str(data_dir))
    distilled, vocab, _, job = family_student("bow-toy_paddlenlp", str(data_dir))
    assert family_name("bow-toy_paddlenlp", str(data_dir)) == "bow-h128" and labels == ["0", "1"]
    # PaddleNLP's BoW head whatever the vocabulary (the README's 0.05M); one embedding row per word of the job's data
    assert alone.pooling == distilled.pooling == "sum" and job.max_seq_length == 256
    assert parameter_counts(alone)["other"] == parameter_counts(distilled)["other"] == 51106
    assert [m.embedder.weight.shape[0] for m in (alone, distilled)] == [len(alone_vocab), len(vocab)]
    train_words = set(vocab_words(alone_vocab))
    assert train_words < set(vocab_words(vocab))
    assert not set(segment(["键盘手感一流"])[0]) & train_words and set(segment(["键盘手感一流"])[0]) <= set(vocab_words(vocab))


def test_predict_memory_bench_takes_each_runs_own_peak_memory(tmp_path):
    from peak_memory import measure

    big = [sys.executable, "-c", "x = bytearray(300 << 20); x[::4096] = b'1' * len(x[::4096])"]
    small = [sys.executable, "-c", "print('done')"]
    (_, big_peak, big_code), (_, small_peak, small_code) = (measure(command, os.devnull, str(tmp_path / "out"))
                                                            for command in (big, small))
    assert big_code == small_code == 0 and (tmp_path / "out").read_text() == "done\n"
    assert big_peak > 300 > small_peak  # each run's own: not this process's (Paddle's), nor the largest so far


def test_the_committed_teacher_checkpoint_stands_in_only_for_the_default_run_and_jobs_that_read_cached_logits(
        tmp_path, monkeypatch):
    import common

    default, other = tmp_path / "cache" / "teacher", tmp_path / "elsewhere"
    monkeypatch.setattr(common, "TEACHER_OUTPUT", str(default))
    monkeypatch.setattr(common, "TEACHER_CHECKPOINT", str(tmp_path / "committed"))
    (tmp_path / "committed").mkdir()
    (tmp_path / "committed" / "checkpoint.json").write_text("{}", encoding="utf-8")
    assert common.teacher_dir(SimpleNamespace(teacher_run=str(default)), weightless_ok=True) == str(
        tmp_path / "committed")
    for run, weightless_ok in ((default, False), (other, True)):
        with pytest.raises(SystemExit, match="no finished teacher; run `python bench/bench_teacher.py train`"):
            common.teacher_dir(SimpleNamespace(teacher_run=str(run)), weightless_ok=weightless_ok)
    default.mkdir(parents=True)
    (default / "summary.json").write_text("{}", encoding="utf-8")  # this machine's finished run comes first
    assert common.teacher_dir(SimpleNamespace(teacher_run=str(default)), weightless_ok=True) == str(default / "best")


def test_pair_bench_distils_from_the_committed_teacher_checkpoint_when_the_machine_has_none(tmp_path, monkeypatch):
    """bench_pairs.py teacher commits the best checkpoint without its weights; a machine without the teacher run
    distils from that copy and the committed logits cache, one that has it from its best/, one with neither stops."""
    import sentence_pairs as bench
    from checkpoint import META, WEIGHTS

    run, committed = tmp_path / "cache" / "teacher" / "lcqmc", tmp_path / "results" / "teacher_checkpoint"
    for name, value in [("TEACHER_RUN", run), ("TEACHER_CHECKPOINT", committed), ("RESULTS", tmp_path / "results"),
                        ("TEACHER_LOGITS", tmp_path / "results" / "teacher_logits")]:
        monkeypatch.setattr(bench, name, str(value))
    monkeypatch.setattr(bench, "fetch_offline_teacher", lambda: "m3e-small")

    def flag(cmd, name):
        return cmd[cmd.index(name) + 1]

    with pytest.raises(SystemExit, match="no finished teacher"):
        bench.student_command("distilled", "bilstm", 1, 1, str(tmp_path / "out"))
    (run / "best").mkdir(parents=True)
    for name in (WEIGHTS, "vocab.txt"):
        (run / "best" / name).write_text(name, encoding="utf-8")
    (run / "best" / META).write_text(json.dumps({"args": {"lr": 5e-5}}), encoding="utf-8")
    summary = {"best_dev_acc": 0.8, "best_dev_f1": 0.81, "dev_unseen_acc": 0.79, "dev_unseen_f1": 0.78,
               "best_step": 7, "dev_acc": [[7, 0.8]], "dev_f1": [[7, 0.81]], "epoch_seconds": [1.0],
               "train_examples_per_second": 1.0}
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    bench.teacher(SimpleNamespace(num_threads=1))  # finished: not trained again
    assert sorted(os.listdir(committed)) == [META, "vocab.txt"]
    assert json.loads((tmp_path / "results" / "teacher.json").read_text(encoding="utf-8"))["dev_acc"] == 0.8
    distilled = bench.student_command("distilled", "bilstm", 1, 1, str(tmp_path / "out"))
    assert flag(distilled, "--teacher_dir") == str(run / "best")
    assert flag(distilled, "--logits_cache") == str(tmp_path / "results" / "teacher_logits")
    (run / "summary.json").unlink()  # another machine: the run is gone, the committed copy is not
    assert flag(bench.student_command("distilled", "bilstm", 1, 1, str(tmp_path / "out")), "--teacher_dir") == str(
        committed)
    assert "--teacher_dir" not in bench.student_command("alone", "bilstm", 1, 1, str(tmp_path / "out"))


def test_vocab_table_keeps_the_checkpoint_sizes_recorded_once_the_runs_are_gone(tmp_path, monkeypatch):
    import vocab_rules

    monkeypatch.setattr(vocab_rules, "RESULTS", str(tmp_path))
    here, gone = tmp_path / "here", tmp_path / "gone"
    for name in ("best", "last"):
        (here / name).mkdir(parents=True)
        (here / name / "model_state.pdparams").write_bytes(b"x" * (10 if name == "best" else 30))
    for seed, run_dir, acc in ((1, here, 0.91), (7, gone, 0.92)):
        (tmp_path / f"jieba_dict_after_seed{seed}.json").write_text(json.dumps({
            "result": {"dev_acc": acc, "best_step": 5, "command": f"x.py --output_dir {run_dir} --seed {seed}"},
            "summary": {"dev_acc": [[5, acc - 0.01], [10, acc]]}}), encoding="utf-8")
    recorded = {"best_bytes": 55, "last_bytes": 152, "evaluations": 64, "written_bytes": 10600}
    (tmp_path / "accuracy.json").write_text(json.dumps({"after": {"seeds": {"7": {"dev_acc": 0.5, **recorded}}}}),
                                            encoding="utf-8")
    table = vocab_rules.seed_table()["after"]
    assert table["seeds"][1] == {"dev_acc": 0.91, "best_step": 5, "best_bytes": 10, "last_bytes": 30,
                                 "evaluations": 2, "written_bytes": 2 * 30 + 2 * 10}  # measured: its run is here
    assert table["seeds"][7] == {"dev_acc": 0.92, "best_step": 5, **recorded}  # the result's accuracy, recorded sizes
    assert table["mean"] == pytest.approx(0.915)
