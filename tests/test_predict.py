import json
import subprocess
import sys

import numpy as np
import paddle
import pytest

import export_model
import predict
import student_lstm_small
import teacher_train_glue
from predict import Predictor
from student_lstm_small import BiLSTM
from utils import WEIGHTS, InputError, load_state_strict, read_checkpoint_meta

STUDENT = ["--emb_dim", "16", "--hidden_size", "16", "--batch_size", "8", "--device", "cpu",
           "--num_threads", "2", "--max_epoch", "6", "--lr", "1e-2", "--dropout_prob", "0.0"]


@pytest.fixture
def exported_student(toy_task, tmp_path):
    data_dir, vocab = toy_task
    out = tmp_path / "student"
    student_lstm_small.main(["--data_dir", str(data_dir), "--vocab_path", str(vocab), "--output_dir", str(out),
                             *STUDENT])
    export_model.main(["--checkpoint", str(out / "best"), "--output_dir", str(tmp_path / "export")])
    return out / "best", tmp_path / "export"


def run_predict(capsys, *argv):
    predict.main(list(argv))
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


def test_exported_student_gives_the_eager_probabilities(exported_student):
    checkpoint, export_dir = exported_student
    meta = read_checkpoint_meta(checkpoint)
    model = BiLSTM(**meta["model"])
    load_state_strict(model, str(checkpoint / WEIGHTS))
    model.eval()
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
    with pytest.raises(InputError, match="not an exported model"):
        Predictor(str(tmp_path))


def test_exported_teacher_gives_the_eager_probabilities(toy_task, tiny_teacher, tmp_path):
    data_dir, _ = toy_task
    out = tmp_path / "teacher"
    teacher_train_glue.main(["--data_dir", str(data_dir), "--model_name_or_path", str(tiny_teacher),
                             "--model_type", "ernie-gram", "--output_dir", str(out), "--max_steps", "2",
                             "--batch_size", "8", "--max_seq_length", "32", "--device", "cpu"])
    export_model.main(["--checkpoint", str(out / "best"), "--output_dir", str(tmp_path / "export")])
    texts = ["这个酒店很好", "房间很差，失望", "推荐"]
    model, tokenizer = teacher_train_glue.load_teacher("ernie-gram", str(out / "best"), ["0", "1"])
    model.eval()
    predictor = Predictor(str(tmp_path / "export"), num_threads=2)
    ids, type_ids = predictor.inputs(texts)
    eager = paddle.nn.functional.softmax(model(paddle.to_tensor(ids), paddle.to_tensor(type_ids))).numpy()
    np.testing.assert_allclose(predictor.predict(texts), eager, rtol=1e-5, atol=1e-6)
