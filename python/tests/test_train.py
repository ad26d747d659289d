"""`Model.train` is `glassbox train`: the same weights bit for bit for the same seed, the run
directory the CLI writes, progress reported, the model left holding the trained values."""

import json
import struct

import numpy as np
import pytest

import glassbox
from conftest import EXAMPLES

LV = EXAMPLES / "lotka_volterra_ude.gbx"


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f8").reshape(info["shape"])
    return out


def test_train_equals_the_cli_and_writes_the_same_run(cli, tmp_path):
    done = cli("train", LV, "--iterations", "6", "--seed", "3", "--threads", "1",
               "--out", tmp_path / "cli")
    assert done.returncode == 0, done.stderr
    m = glassbox.Model.from_file(str(LV))
    before = m.params
    seen = []
    res = m.train(iterations=6, seed=3, threads=1, out=str(tmp_path / "py"),
                  progress=lambda i, total, metric: seen.append((i, total, metric["loss"])))
    assert (tmp_path / "py" / "weights.safetensors").read_bytes() == \
        (tmp_path / "cli" / "weights.safetensors").read_bytes()
    assert [s[0] for s in seen] == list(range(1, 7)) and seen[0][1] == 6
    assert len(res["metrics"]) == 6 and res["report"]["iterations"] == 6
    cli_run = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert [x["loss"] for x in res["metrics"]] == [x["loss"] for x in cli_run["metrics"]]
    # The model now holds the trained values: those of the weights file.
    w = read_safetensors(tmp_path / "cli" / "weights.safetensors")
    changed = 0
    for name, value in w.items():
        np.testing.assert_array_equal(m.params[name], value)
        changed += not np.array_equal(before[name], value)
    assert changed > 0


def test_train_refuses_an_existing_run_and_contradictory_stops(tmp_path):
    m = glassbox.Model.from_file(str(LV))
    m.train(iterations=1, out=str(tmp_path), progress=False)
    with pytest.raises(glassbox.GlassboxError) as e:
        m.train(iterations=1, out=str(tmp_path), progress=False)
    assert "overwrite" in str(e.value)
    m.train(iterations=1, out=str(tmp_path), overwrite=True, progress=False)
    with pytest.raises(glassbox.GlassboxError) as e:
        m.train(iterations=2, epochs=1)
    assert e.value.code == "glassbox::bad_argument"


def test_the_progress_line_goes_to_stderr(capfd):
    m = glassbox.Model.from_file(str(LV))
    m.train(iterations=3, seed=1)
    err = capfd.readouterr().err
    assert "iteration 3/3 loss" in err and err.endswith("\n")


def test_weights_load_from_a_run_and_save_as_the_cli_writes_them(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", LV, "--iterations", "3", "--out", run).returncode == 0
    m = glassbox.Model.from_file(str(LV))
    m.load_weights(str(run))
    w = read_safetensors(run / "weights.safetensors")
    for name, value in w.items():
        np.testing.assert_array_equal(m.params[name], value)
    m.save_weights(str(tmp_path / "again.safetensors"))
    assert (tmp_path / "again.safetensors").read_bytes() == (run / "weights.safetensors").read_bytes()
    other = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    with pytest.raises(glassbox.GlassboxError):
        other.load_weights(str(run))  # another model's weights
    with pytest.raises(glassbox.GlassboxError):
        m.load_weights(str(tmp_path / "missing"))


def test_resume_continues_a_stopped_run_to_the_uninterrupted_weights(cli, tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    args = (LV, "--iterations", "6", "--seed", "3", "--threads", "1")
    assert cli("train", *args, "--out", whole).returncode == 0
    stopped = cli("train", *args, "--out", part, "--stop-after", "3")
    assert stopped.returncode == 130, stopped.stderr
    m = glassbox.Model.from_file(str(LV))
    res = m.train(resume=str(part), threads=1, progress=False)
    assert res["out"] == str(part) and len(res["metrics"]) == 6
    assert (part / "weights.safetensors").read_bytes() == (whole / "weights.safetensors").read_bytes()
    for name, value in read_safetensors(whole / "weights.safetensors").items():
        np.testing.assert_array_equal(m.params[name], value)
    # A finished run resumed again: a warning, and its report.
    with pytest.warns(UserWarning, match="run_finished: the run in .* is already finished"):
        again = m.train(resume=str(part), progress=False)
    assert again["report"]["iterations"] == 6


def test_resume_refuses_what_it_cannot_honour(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", LV, "--iterations", "4", "--seed", "3", "--out", run,
               "--stop-after", "2").returncode == 130
    m = glassbox.Model.from_file(str(LV))
    with pytest.raises(glassbox.GlassboxError) as e:
        m.train(resume=str(run), seed=5, progress=False)
    assert e.value.code == "glassbox::resume_flag" and "seed=5" in str(e.value)
    with pytest.raises(glassbox.GlassboxError) as e:
        m.train(resume=str(run), overwrite=True, progress=False)
    assert e.value.code == "glassbox::resume_flag" and "overwrite=True" in str(e.value)
    with pytest.raises(glassbox.GlassboxError) as e:
        m.train(force=True, progress=False)
    assert e.value.code == "glassbox::bad_argument"
    with pytest.raises(glassbox.GlassboxError) as e:
        m.train(resume=str(tmp_path / "nothing"), progress=False)
    assert e.value.code == "glassbox::no_checkpoint"
    changed = glassbox.Model.from_source(LV.read_text().replace("lr = 1e-2", "lr = 2e-2"), name=str(LV))
    with pytest.raises(glassbox.GlassboxError) as e:
        changed.train(resume=str(run), progress=False)
    assert e.value.code == "glassbox::resume_model_changed" and "force=True" in str(e.value)
    changed.train(resume=str(run), force=True, progress=False)


def _csv_rows(text):
    lines = text.strip().splitlines()
    return lines[0].split(","), np.array([[float(v) for v in line.split(",")] for line in lines[1:]])


def test_predict_is_the_cli_s_predict(cli, tmp_path):
    # A classifier: logits of samples given as an array, as `predict --input` reads them
    # from a file (bit for bit: the same code on the same weights).
    digits = EXAMPLES / "digits.gbx"
    assert cli("train", digits, "--iterations", "0", "--out", tmp_path / "run").returncode == 0
    rows = (EXAMPLES / "data" / "digits.csv").read_text().splitlines()[:20]
    (tmp_path / "some.csv").write_text("\n".join(rows) + "\n")
    done = cli("predict", digits, "--weights", tmp_path / "run", "--input", tmp_path / "some.csv")
    assert done.returncode == 0, done.stderr
    header, table = _csv_rows(done.stdout)
    logit_cols = [i for i, h in enumerate(header) if h.startswith("logit")]
    m = glassbox.Model.from_file(str(digits))
    m.load_weights(str(tmp_path / "run"))
    x = np.array([[float(v) for v in r.split(",")[:64]] for r in rows])
    out = m.predict(x)
    np.testing.assert_array_equal(out["logits"], table[:, logit_cols])
    np.testing.assert_array_equal(out["classes"], table[:, header.index("class")])
    assert out["forward"]["rows"] == 20
    with pytest.raises(glassbox.GlassboxError) as e:
        m.predict(x[:, :10])
    assert e.value.code == "glassbox::bad_argument" and "64" in str(e.value)
    with pytest.raises(glassbox.GlassboxError):
        m.predict()
    # A trajectory model: its states at the times asked, as `predict --at`.
    assert cli("train", LV, "--iterations", "2", "--out", tmp_path / "lv").returncode == 0
    lv = glassbox.Model.from_file(str(LV))
    lv.load_weights(str(tmp_path / "lv"))
    done = cli("predict", LV, "--weights", tmp_path / "lv", "--at", "0:2:5")
    assert done.returncode == 0, done.stderr
    _, table = _csv_rows(done.stdout)
    sol = lv.predict(t=np.linspace(0.0, 2.0, 5))
    np.testing.assert_array_equal(sol.t, table[:, 0])
    np.testing.assert_array_equal(sol.y, table[:, 1:])
