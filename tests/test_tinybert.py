"""tinybert_distill.py: the layer mapping, stage 1's losses, and both stages on a tiny teacher."""
import json
import os
import re
import shutil

import numpy as np
import paddle
import pytest
from visualdl import LogReader

import tinybert
from checkpoint import WEIGHTS
from conftest import main_of
from inference import Predictor
from teacher import load_teacher, teacher_config
from tinybert import LayerDistiller, attention_scores, init_from_teacher, layer_losses, layer_map, masked_mse
from utils import InputError, run_main

TINY = ["--batch_size", "16", "--device", "cpu", "--num_threads", "2", "--log_freq", "1", "--n_iter", "1"]


def test_layers_map_uniformly():
    assert layer_map(2, 4) == [2, 4] and layer_map(3, 12) == [4, 8, 12] and layer_map(4, 4) == [1, 2, 3, 4]


def test_a_student_deeper_than_its_teacher_is_refused():
    with pytest.raises(InputError, match=r"^--num_layers 4: the teacher has 2 layers.*--num_layers 2 or fewer"):
        layer_map(4, 2)


DEEPER = re.escape("--num_layers 3: the teacher has 2 layers; TinyBERT's uniform mapping (student layer m learns "
                   "teacher layer m*N/M) needs a student no deeper than its teacher: give --num_layers 2 or fewer")
NARROWER = (r"--init_from_teacher: the teacher's \S+ has shape \[\d+, 16\], the student's \[\d+, 8\]; "
            "give --hidden_size 16 --intermediate_size 32, the teacher's sizes, or start at random")


@pytest.mark.parametrize("sizes, message", [(["--num_layers", "3"], DEEPER),
                                            (["--num_layers", "3", "--init_from_teacher"], DEEPER),
                                            (["--hidden_size", "8", "--init_from_teacher"], NARROWER)])
def test_a_student_its_teacher_cannot_teach_is_one_error_before_the_teachers_logits(fine_tuned, tmp_path, capsys,
                                                                                     sizes, message):
    """Refused before the teacher's logits are computed and cached; --init_from_teacher names the cause, the depth
    or the width (it used to ask for the width it was given)."""
    data_dir, _, base, best = fine_tuned
    argv = ["--data_dir", str(data_dir), "--model_name", str(base), "--teacher_dir", str(best),
            "--output_dir", str(tmp_path / "tinybert"), "--logits_cache", str(tmp_path / "cache"), "--num_layers", "1",
            "--hidden_size", "16", "--stage1_epochs", "0", "--max_epoch", "1", *TINY, *sizes]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: main_of("tinybert_distill")(argv))
    assert exit_info.value.code == 2
    assert re.fullmatch(f"error: {message}", capsys.readouterr().err.splitlines()[-1])
    assert not (tmp_path / "tinybert").exists() and not list((tmp_path / "cache").glob("*"))


def test_masked_mse_is_the_mean_over_kept_positions():
    student = paddle.to_tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
    teacher = paddle.to_tensor([[[1.0, 0.0], [0.0, 4.0], [0.0, 0.0]]])
    kept = paddle.to_tensor([[[True], [True], [False]]])
    assert float(masked_mse(student, teacher, kept)) == pytest.approx((0 + 4 + 9 + 0) / 4)
    scores = paddle.to_tensor([[[[1.0, 5.0], [2.0, 7.0]], [[3.0, 5.0], [4.0, 7.0]]]])  # [batch, heads, query, key]
    pairs = paddle.to_tensor([[[[True, False], [True, False]]]])  # the second token is padding
    assert float(masked_mse(scores, paddle.zeros_like(scores), pairs)) == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_attention_scores_are_what_the_softmax_of_each_layer_reads(fine_tuned):
    """Recomputed from each layer's input, the scores give PaddleNLP's attention probabilities back."""
    teacher, _, _ = tiny_pair(fine_tuned, hidden=16, layers=2)
    ids = paddle.to_tensor([[1, 5, 6, 7, 2]])
    out = teacher.ernie_gram(ids, output_hidden_states=True, output_attentions=True, return_dict=True)
    for layer in (1, 2):
        probs = paddle.nn.functional.softmax(attention_scores(teacher, out.hidden_states, layer), axis=-1)
        np.testing.assert_allclose(probs.numpy(), out.attentions[layer - 1].numpy(), atol=1e-5)


def tiny_pair(fine_tuned, hidden, layers, intermediate=None):
    from teacher import load_teacher

    _, _, base, best = fine_tuned
    teacher, tokenizer = load_teacher("ernie-gram", str(base), ["0", "1"], str(best / "model_state.pdparams"))
    teacher.eval()
    args = type("Args", (), {"num_layers": layers, "hidden_size": hidden, "intermediate_size": intermediate})
    student = type(teacher)(tinybert.student_config(args, teacher.config, 2))
    return teacher, student, tokenizer


def test_a_student_copied_from_its_teacher_has_zero_layer_losses(fine_tuned):
    teacher, student, tokenizer = tiny_pair(fine_tuned, hidden=16, layers=2)
    mapping = layer_map(2, 2)
    init_from_teacher(student, teacher, mapping)
    student.eval()
    ids = paddle.to_tensor([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0]])
    terms = layer_losses(LayerDistiller(student, 16, 16), teacher, ids, paddle.zeros_like(ids), mapping,
                         tokenizer.pad_token_id)
    assert all(float(v) < 1e-10 for v in terms.values())
    with paddle.no_grad():  # and a different student is not
        student.set_state_dict({k: v + 0.1 for k, v in student.state_dict().items()})
    terms = layer_losses(LayerDistiller(student, 16, 16), teacher, ids, paddle.zeros_like(ids), mapping,
                         tokenizer.pad_token_id)
    assert all(float(v) > 1e-4 for v in terms.values())


def test_init_from_teacher_names_the_sizes_it_needs(fine_tuned):
    shape = r"\[\d+(, \d+)*\]"
    for hidden, intermediate in ((8, None), (16, 64)):  # narrower than the teacher; its width, a wider feed-forward
        teacher, student, _ = tiny_pair(fine_tuned, hidden=hidden, layers=1, intermediate=intermediate)
        with pytest.raises(InputError, match=rf"^--init_from_teacher: the teacher's \S+ has shape {shape}, the "
                                             rf"student's {shape}; give --hidden_size 16 --intermediate_size 32"):
            init_from_teacher(student, teacher, layer_map(1, 2))


def test_both_stages_run_export_and_predict(fine_tuned, tmp_path):
    data_dir, _, base, best = fine_tuned
    out = tmp_path / "tinybert"
    main_of("tinybert_distill")(["--data_dir", str(data_dir), "--model_name", str(base), "--teacher_dir", str(best),
                           "--output_dir", str(out), "--logits_cache", str(tmp_path / "cache"), "--num_layers", "1",
                           "--hidden_size", "8", "--stage1_epochs", "3", "--max_epoch", "20", "--lr", "2e-2", *TINY])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["best_dev_acc"] >= 0.75 and summary["parameters"]["other"] > 0
    vocab_size = json.loads((base / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    assert summary["parameters"]["embedding"] == vocab_size * 8  # the token table at the student's width
    assert (out / "stage1" / "summary.json").is_file()

    def tags(logdir):
        reader = LogReader(file_path=str(logdir / [f for f in os.listdir(logdir) if f.startswith("vdlrecords")][0]))
        return reader, set(reader.get_tags()["scalar"])

    reader, stage1_tags = tags(out / "vdl" / "stage1")
    assert {"train/emb", "train/hidden", "train/attn"} <= stage1_tags
    losses = [r.value for r in reader.get_data("scalar", "train/hidden")]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])  # the student moves to the teacher's layers
    assert "train/kl" in tags(out / "vdl")[1]

    main_of("export_model")(["--checkpoint", str(out / "best"), "--output_dir", str(tmp_path / "export")])
    predictor = Predictor(str(tmp_path / "export"), num_threads=1)
    assert predictor.max_seq_length == 32  # served at the teacher's length, which it trained and was scored at
    probs = predictor.predict(["这个酒店很好", "房间很差，失望"])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(-1), 1, atol=1e-5)


def test_stage_2_alone_trains_from_a_teacher_checkpoint_without_its_weights(fine_tuned, tmp_path):
    """Stage 2 reads only the teacher's cached logits, its tokenizer and its sizes: the weightless copy the benches
    commit trains the same student as the weights did (one machine); stage 1 needs the weights, and says so."""
    data_dir, _, base, best = fine_tuned
    weightless = tmp_path / "weightless"
    shutil.copytree(best, weightless, ignore=shutil.ignore_patterns(WEIGHTS))

    def run(teacher_dir, output_dir, *extra):
        main_of("tinybert_distill")(["--data_dir", str(data_dir), "--model_name", str(base), "--teacher_dir",
                                     str(teacher_dir), "--output_dir", str(output_dir), "--logits_cache",
                                     str(tmp_path / "cache"), "--num_layers", "1", "--hidden_size", "8",
                                     "--max_epoch", "2", *TINY, *extra])

    run(best, tmp_path / "with", "--stage1_epochs", "0")
    run(weightless, tmp_path / "without", "--stage1_epochs", "0")
    with_weights, without = (paddle.load(str(tmp_path / d / "best" / WEIGHTS)) for d in ("with", "without"))
    assert with_weights.keys() == without.keys()
    assert all(np.array_equal(with_weights[k].numpy(), without[k].numpy()) for k in with_weights)
    with pytest.raises(InputError, match="teacher's weights are not here"):
        run(weightless, tmp_path / "stage1", "--stage1_epochs", "1")
    assert not (tmp_path / "stage1").exists()
    model, _ = load_teacher("ernie-gram", str(best), ["0", "1"])
    assert teacher_config("ernie-gram", str(weightless)).to_dict() == model.config.to_dict()  # the student's sizes


def test_a_run_stopped_in_stage_1_continues_there_and_ends_as_an_uninterrupted_one(fine_tuned, tmp_path, monkeypatch):
    data_dir, _, base, best = fine_tuned

    def distil(out, *extra):
        main_of("tinybert_distill")(["--data_dir", str(data_dir), "--model_name", str(base), "--teacher_dir", str(best),
                               "--output_dir", str(out), "--logits_cache", str(tmp_path / "cache"), "--num_layers",
                               "1", "--hidden_size", "8", "--stage1_epochs", "2", "--max_epoch", "2", "--save_steps",
                               "2", *TINY, *extra])

    distil(tmp_path / "whole")
    layer_loss, calls = tinybert.make_layer_loss, []

    def stopping(*args):
        compute = layer_loss(*args)

        def loss(distiller, batch):
            calls.append(1)
            if len(calls) == 5:  # in stage 1's step 5, after step 4's checkpoint
                raise KeyboardInterrupt
            return compute(distiller, batch)
        return loss

    monkeypatch.setattr(tinybert, "make_layer_loss", stopping)
    with pytest.raises(KeyboardInterrupt):
        distil(tmp_path / "stopped")
    assert not (tmp_path / "stopped" / "last").exists()
    monkeypatch.setattr(tinybert, "make_layer_loss", layer_loss)
    distil(tmp_path / "stopped", "--init_from_ckpt", str(tmp_path / "stopped" / "stage1" / "last"))
    stage1 = json.loads((tmp_path / "stopped" / "stage1" / "summary.json").read_text(encoding="utf-8"))
    whole = json.loads((tmp_path / "whole" / "stage1" / "summary.json").read_text(encoding="utf-8"))
    assert stage1["dev_acc"] == whole["dev_acc"]  # every evaluation of stage 1, before and after the stop
    for name in ("last", "best"):
        a, b = (paddle.load(str(tmp_path / run / name / "model_state.pdparams")) for run in ("whole", "stopped"))
        for key in a:
            np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
