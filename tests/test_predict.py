import io
import json
import os
import select
import subprocess
import sys

import numpy as np
import paddle
import pytest

import inference
from checkpoint import WEIGHTS, load_state_strict, read_checkpoint_meta
from conftest import main_of
from inference import Predictor, format_row, line_batches
from students import build_student
from teacher import load_teacher
from test_student import NO_DEVICE
from utils import InputError, run_main

STUDENT = ["--emb_dim", "16", "--hidden_size", "16", "--batch_size", "8", "--device", "cpu",
           "--num_threads", "2", "--max_epoch", "6", "--lr", "1e-2", "--dropout_prob", "0.0"]


def export_student(data_dir, vocab, tmp_path):
    """A student trained on data_dir and exported: (its best checkpoint, the export)."""
    out = tmp_path / "student"
    main_of("student_lstm_small")(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out),
                             *STUDENT])
    main_of("export_model")(["--checkpoint", str(out / "best"), "--output_dir", str(tmp_path / "export")])
    return out / "best", tmp_path / "export"


@pytest.fixture
def exported_student(toy_task, tmp_path):
    return export_student(*toy_task, tmp_path)


def eager_student(checkpoint):
    """The checkpoint's student in eval mode, as training left it."""
    model = build_student(read_checkpoint_meta(checkpoint)["model"])
    load_state_strict(model, str(checkpoint / WEIGHTS))
    model.eval()
    return model


def run_predict(capsys, *argv):
    main_of("predict")(list(argv))
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


def test_exported_student_gives_the_eager_probabilities(exported_student):
    checkpoint, export_dir = exported_student
    model = eager_student(checkpoint)
    texts = ["这个酒店很好", "房间很差，失望", "推荐", "价格不错非常满意我们觉得"]
    predictor = Predictor(str(export_dir), num_threads=2)
    ids, lengths = predictor.inputs(texts)
    eager = paddle.nn.functional.softmax(model(paddle.to_tensor(ids), paddle.to_tensor(lengths))).numpy()
    np.testing.assert_allclose(predictor.predict(texts, batch_size=3), eager, rtol=1e-5, atol=1e-6)


def test_text_and_json_outputs_report_bad_lines_and_predict_the_rest(exported_student, tmp_path, capsys):
    _, export_dir = exported_student
    path = tmp_path / "input.txt"
    path.write_bytes("这个酒店很好\n\n房间很差\n".encode() + b"\xff\xfe bad\n" + ("好" * 50).encode() + b"\n")
    out, err = run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--max_chars", "40",
                           "--device", "cpu")
    assert len(out) == 5 and "3 of 5 lines could not be classified" in err
    assert out[0].split("\t")[0] in ("0", "1") and out[0].split("\t")[1].startswith("0:")
    assert out[1] == "ERROR\tline 2: empty line" and out[3].startswith("ERROR\tline 4: not valid UTF-8")
    assert out[4] == "ERROR\tline 5: 50 characters, more than --max_chars 40"

    out, _ = run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--max_chars", "40",
                         "--device", "cpu", "--format", "json")
    rows = [json.loads(line) for line in out]
    assert rows[0]["line"] == 1 and sum(rows[0]["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert rows[0]["label"] == max(rows[0]["probabilities"], key=rows[0]["probabilities"].get)
    assert rows[1] == {"line": 2, "error": "empty line"} and rows[2]["line"] == 3


def test_eval_on_a_labelled_tsv_prints_accuracy(exported_student, toy_task, capsys):
    data_dir, _ = toy_task
    _, export_dir = exported_student
    out, err = run_predict(capsys, "--model_dir", str(export_dir), "--input", str(data_dir / "dev.tsv"),
                           "--text_column", "text_a", "--eval", "--device", "cpu")
    assert len(out) == 24
    accuracy = float(err.split("accuracy ")[1].split()[0])
    assert accuracy >= 0.9 and "on 24 labelled lines" in err


def test_stdin_and_missing_model(exported_student, tmp_path):
    _, export_dir = exported_student
    done = subprocess.run([sys.executable, "predict.py", "--model_dir", str(export_dir), "--device", "cpu"],
                          input="推荐\n很差\n".encode(), capture_output=True, check=True)
    assert len(done.stdout.decode().splitlines()) == 2
    assert b"Warning" not in done.stderr  # Paddle's ccache and distutils warnings are silenced
    with pytest.raises(InputError, match="not an exported model"):
        Predictor(str(tmp_path))


def export_teacher(data_dir, tiny_teacher, tmp_path):
    """The tiny teacher fine-tuned for 2 steps on data_dir and exported: (its best checkpoint, the export)."""
    out = tmp_path / "teacher"
    main_of("teacher_train_glue")(["--data_dir", str(data_dir), "--model_name_or_path", str(tiny_teacher),
                             "--model_type", "ernie-gram", "--output_dir", str(out), "--max_steps", "2",
                             "--batch_size", "8", "--max_seq_length", "48", "--device", "cpu"])
    main_of("export_model")(["--checkpoint", str(out / "best"), "--output_dir", str(tmp_path / "export")])
    return out / "best", tmp_path / "export"


def assert_export_is_the_teacher(checkpoint, export_dir, texts):
    """The export's probabilities of texts are the checkpoint's eager teacher's; returns them."""
    model, _ = load_teacher("ernie-gram", str(checkpoint), ["0", "1"])
    model.eval()
    predictor = Predictor(str(export_dir), num_threads=2)
    ids, type_ids = predictor.inputs(texts)
    eager = paddle.nn.functional.softmax(model(paddle.to_tensor(ids), paddle.to_tensor(type_ids))).numpy()
    probs = predictor.predict(texts)
    np.testing.assert_allclose(probs, eager, rtol=1e-5, atol=1e-6)
    return probs


def test_exported_teacher_gives_the_eager_probabilities(toy_task, tiny_teacher, tmp_path):
    checkpoint, export_dir = export_teacher(toy_task[0], tiny_teacher, tmp_path)
    assert_export_is_the_teacher(checkpoint, export_dir, ["这个酒店很好", "房间很差，失望", "推荐"])

    (tmp_path / "export" / "tokenizer_config.json").unlink()
    with pytest.raises(InputError, match="export/tokenizer_config.json: missing"):
        Predictor(str(tmp_path / "export"))


def test_export_never_deletes_what_it_did_not_write(exported_student, tmp_path):
    checkpoint, export_dir = exported_student
    run_dir = checkpoint.parent
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    with pytest.raises(InputError, match="holds .*best.*which an export did not write"):
        main_of("export_model")(["--checkpoint", str(checkpoint), "--output_dir", str(run_dir)])
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before

    main_of("export_model")(["--checkpoint", str(checkpoint), "--output_dir", str(export_dir)])  # a previous export
    (export_dir / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="holds notes.txt, which an export did not write"):
        main_of("export_model")(["--checkpoint", str(checkpoint), "--output_dir", str(export_dir)])
    assert (export_dir / "notes.txt").exists() and (export_dir / "inference.pdiparams").exists()


def damage_missing(export_dir, other):
    (export_dir / "inference.pdiparams").unlink()


def damage_truncated(export_dir, other):
    data = (export_dir / "inference.pdiparams").read_bytes()
    (export_dir / "inference.pdiparams").write_bytes(data[:len(data) // 2])


def damage_swapped(export_dir, other):
    (export_dir / "inference.pdiparams").write_bytes((other / "inference.pdiparams").read_bytes())


def damage_vocab(export_dir, other):
    (export_dir / "vocab.txt").unlink()


def damage_old_config(export_dir, other):  # as export_model.py wrote it before it listed the files
    config = json.loads((export_dir / "predict_config.json").read_text(encoding="utf-8"))
    del config["files"], config["text_column"]
    (export_dir / "predict_config.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.mark.parametrize("damage, file", [(damage_missing, "inference.pdiparams: missing"),
                                          (damage_truncated, "inference.pdiparams: not the file this export wrote"),
                                          (damage_swapped, "inference.pdiparams: not the file this export wrote"),
                                          (damage_vocab, "vocab.txt: missing"),
                                          (damage_old_config, "predict_config.json: no files, text_column")])
def test_a_damaged_export_is_named_before_anything_is_printed(exported_student, tmp_path, capsys, damage, file):
    checkpoint, export_dir = exported_student
    other = tmp_path / "other_export"
    main_of("student_lstm_small")(["--data_dir", str(tmp_path / "data"), "--vocab_path", str(tmp_path / "vocab.txt"),
                             "--output_dir", str(tmp_path / "other_run"), *STUDENT, "--seed", "5"])
    main_of("export_model")(["--checkpoint", str(tmp_path / "other_run" / "best"), "--output_dir", str(other)])
    damage(export_dir, other)
    capsys.readouterr()
    argv = ["--model_dir", str(export_dir), "--input", str(tmp_path / "data" / "dev.tsv"), "--text_column",
            "text_a", "--eval", "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: main_of("predict")(argv))
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and captured.out == ""
    assert captured.err.startswith(f"error: {export_dir / file.split(':')[0]}:") and file in captured.err


def test_outputs_are_finite_and_json_is_always_valid(exported_student, tmp_path, capsys, monkeypatch):
    _, export_dir = exported_student
    path = tmp_path / "input.txt"
    path.write_text("推荐\n很差\n", encoding="utf-8")
    monkeypatch.setattr(Predictor, "logits", lambda self, arrays: np.full((len(arrays[1]), 2), np.nan, "float32"))
    with pytest.raises(InputError, match="outputs are not finite"):
        run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--format", "json", "--device", "cpu")
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError):  # and were one to slip through, it would not print bare NaN
        format_row(1, np.array([np.nan, np.nan]), None, ["0", "1"], "json")


def test_eval_reads_labels_by_the_training_rule_and_checks_them_first(exported_student, tmp_path, capsys):
    _, export_dir = exported_student
    path = tmp_path / "test.tsv"
    path.write_text("label\ttext_a\n  1\t推荐\n0 \t很差\n", encoding="utf-8")  # as the public test file has
    out, err = run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--text_column", "text_a",
                           "--eval", "--device", "cpu")
    assert len(out) == 2 and "on 2 labelled lines" in err
    path.write_text("label\ttext_a\n1.0\t推荐\n0.0\t很差\n", encoding="utf-8")  # numbers, as pandas writes them
    out, err = run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--text_column", "text_a",
                           "--eval", "--device", "cpu")
    assert len(out) == 2 and "on 2 labelled lines" in err
    path.write_text("label\ttext_a\n1\t推荐\n2\t很差\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"test.tsv:3: label '2' is not one of the model's \['0', '1'\]"):
        run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--text_column", "text_a",
                    "--eval", "--device", "cpu")
    assert capsys.readouterr().out == ""  # found before any prediction was printed


@pytest.mark.parametrize("lines, argv, message", [
    (["label\ttext_a", "1\t推荐"], [], r"input.tsv:1: a tsv header .*--text_column text_a"),
    (["text_a\ttext_b\tlabel", "推荐\t很好\t1"], ["--text_column", "text_a"],
     r"input.tsv:1: pairs \(text_a, text_b\), where the model classifies single texts \(no text_b\)"),
    (["label\treview", "1\t推荐"], ["--text_column", "review"], "trained on column 'text_a', not 'review'"),
    (["label\ttext_a", "1\t推荐"], ["--eval"], "--eval needs --text_column"),
])
def test_predict_refuses_to_guess_what_a_file_holds(exported_student, tmp_path, capsys, lines, argv, message):
    assert_refused(exported_student[1], tmp_path / "input.tsv", capsys, lines, argv, message)


def assert_refused(export_dir, path, capsys, lines, argv, message):
    """predict.py refuses a file of these lines with the message, before it prints anything."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        run_predict(capsys, "--model_dir", str(export_dir), "--input", str(path), "--device", "cpu", *argv)
    assert capsys.readouterr().out == ""


def test_onednn_runs_only_when_asked_and_gives_the_same_probabilities(exported_student, monkeypatch):
    _, export_dir = exported_student
    enabled, create = [], inference.inference.create_predictor
    monkeypatch.setattr(inference.inference, "create_predictor",
                        lambda config: enabled.append(config.onednn_enabled()) or create(config))
    texts = ["这个酒店很好", "房间很差，失望", "推荐", "价格不错非常满意我们觉得"]
    off, on = (Predictor(str(export_dir), onednn=onednn).predict(texts, batch_size=3) for onednn in (False, True))
    assert enabled == [False, True]  # Paddle's inference turns oneDNN on unless told otherwise
    np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-6)
    from args import parse_args

    assert [parse_args("predict", ["--model_dir", "m", *flag]).onednn
            for flag in ([], ["--onednn"], ["--enable_mkldnn"])] == [False, True, True]  # the old name still works


def test_a_model_onednn_cannot_run_is_one_clear_error(exported_student, capsys, monkeypatch):
    _, export_dir = exported_student
    predictor = Predictor(str(export_dir), onednn=True)
    real = predictor.predictor

    class Failing:  # what paddle.inference raises for an op oneDNN has no kernel for (TextCNN's, Paddle 3.3.1)
        def __getattr__(self, name):
            return getattr(real, name)

        def run(self):
            raise RuntimeError("std::exception")

    predictor.predictor = Failing()
    with pytest.raises(InputError, match=r"cannot run this model with oneDNN .*run it without --onednn"):
        predictor.predict(["推荐"])
    predictor.onednn = False  # without oneDNN the same failure is not a setting's: it is raised as it is
    with pytest.raises(RuntimeError, match="std::exception"):
        predictor.predict(["推荐"])


def test_device_gpu_on_a_cpu_paddle_is_one_error_not_a_silent_cpu_run(exported_student, tmp_path, capsys,
                                                                       monkeypatch):
    _, export_dir = exported_student
    monkeypatch.setattr(paddle.device, "is_compiled_with_cuda", lambda: False)  # this test's Paddle, whatever its build
    path = tmp_path / "input.txt"
    path.write_text("推荐\n", encoding="utf-8")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: main_of("predict")(["--model_dir", str(export_dir), "--input", str(path), "--device", "gpu"]))
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and captured.out == ""
    assert captured.err.strip() == f"error: {NO_DEVICE['gpu']}"


def read_line_within(stream, seconds):
    """One line of a child's stdout, or None if none came within `seconds`."""
    return stream.readline() if select.select([stream], [], [], seconds)[0] else None


def test_a_line_written_into_an_open_pipe_is_answered_before_the_pipe_closes(exported_student):
    _, export_dir = exported_student
    child = subprocess.Popen([sys.executable, "predict.py", "--model_dir", str(export_dir), "--device", "cpu"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        answers = []
        for text in ("推荐", "很差"):  # the second after the first's answer: every batch, not only the first
            child.stdin.write(f"{text}\n".encode())
            child.stdin.flush()
            answers.append(read_line_within(child.stdout, 120))  # Paddle's start takes seconds on a busy machine
        assert [answer is not None and answer.decode().split("\t")[0] for answer in answers] == ["1", "0"]
        child.stdin.close()
        assert child.stdout.read() == b"" and child.wait(timeout=60) == 0
    finally:
        child.kill()


def test_a_batch_is_cut_short_when_no_more_input_is_ready_and_is_full_otherwise(tmp_path):
    read_end, write_end = os.pipe()
    with open(read_end, "rb") as pipe, open(write_end, "wb", buffering=0) as writer:
        batches = line_batches(pipe, batch_size=4)
        writer.write(b"a\nb\n")
        assert next(batches) == [(1, b"a"), (2, b"b")]  # the pipe is still open: what came is answered
        writer.write(b"c\nd\ne\nf")
        writer.close()
        assert list(batches) == [[(3, b"c"), (4, b"d"), (5, b"e"), (6, b"f")]]  # f: a last line without newline
    path = tmp_path / "input.txt"
    path.write_bytes(b"x\n" * 9 + b"y" * 200_000 + b"\n")  # a line longer than one read
    with open(path, "rb") as f:
        assert [[lineno for lineno, _ in batch] for batch in line_batches(f, batch_size=4)] == [
            [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    with open(path, "rb") as f:
        assert list(line_batches(f, batch_size=64))[0][-1] == (10, b"y" * 200_000)


def test_eval_from_stdin_checks_every_label_before_the_first_prediction(exported_student, toy_task, capsys,
                                                                        monkeypatch):
    data_dir, _ = toy_task
    _, export_dir = exported_student
    argv = ["--model_dir", str(export_dir), "--text_column", "text_a", "--eval", "--device", "cpu"]
    from_file, file_err = run_predict(capsys, *argv, "--input", str(data_dir / "dev.tsv"))
    dev = (data_dir / "dev.tsv").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(dev)))
    from_stdin, stdin_err = run_predict(capsys, *argv, "--batch_size", "4")
    assert [line.split("\t")[0] for line in from_stdin] == [line.split("\t")[0] for line in from_file]
    assert stdin_err == file_err and "on 24 labelled lines" in stdin_err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(dev + "7\t推荐\n".encode())))
    with pytest.raises(InputError, match=r"-:26: label '7' is not one of the model's"):
        run_predict(capsys, *argv, "--batch_size", "4")
    assert capsys.readouterr().out == ""  # six batches came before line 26: none was printed
