"""Project files are checked as a whole before anything in them is used."""

import json

import pytest

from tlgui.core.project import (
    PROJECT_FORMAT,
    ProjectError,
    load_project,
    read_run,
    save_project,
)

GOOD = {
    "data": {"folders": [], "test_folder": None, "class_names": ["a", "b"], "removed": [],
             "val_fraction": 0.2, "seed": 7},
    "model": {"model": "resnet18", "weights": "none", "strategy": "partial",
              "trainable_blocks": 2, "dropout": 0.5, "hidden": 256},
    "training": {"device": "auto", "epochs": 10, "batch_size": 32, "lr": 0.001,
                 "backbone_lr_factor": 0.1, "schedule": "cosine", "augment": False,
                 "early_stopping": 0, "image_size": None, "compare_dropout": True},
    "runs": [],
}


def test_a_saved_project_reads_back(tmp_path):
    path = save_project(tmp_path / "p", GOOD)
    state, problems = load_project(path)
    assert problems == [] and {k: state[k] for k in GOOD} == GOOD


@pytest.mark.parametrize("section, key, value", [
    ("training", "epochs", "ten"),
    ("training", "epochs", -5),
    ("training", "epochs", 10**9),
    ("training", "epochs", 2.5),
    ("training", "batch_size", True),
    ("training", "lr", float("nan")),
    ("training", "lr", 1e6),
    ("training", "schedule", "warp"),
    ("training", "augment", "yes"),
    ("training", "image_size", -32),
    ("data", "val_fraction", 7),
    ("data", "seed", -1),
    ("data", "folders", "/home/me/photos"),
    ("data", "class_names", [1, 2]),
    ("model", "dropout", 1.5),
    ("model", "hidden", -1),
    ("model", "strategy", 3),
])
def test_a_wrong_type_or_absurd_number_is_refused_with_one_line(tmp_path, section, key, value):
    state = {**GOOD, section: {**GOOD[section], key: value}}
    path = tmp_path / "p.tlgui.json"
    path.write_text(json.dumps({"format": PROJECT_FORMAT, "version": 1, **state}))
    with pytest.raises(ProjectError) as info:
        load_project(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {section}.{key}: ") and "\n" not in text


@pytest.mark.parametrize("changes, where", [
    ({"training": [1, 2]}, "training"),
    ({"runs": "/runs/a"}, "runs"),
    ({"version": "1"}, "version"),
    ({"data": None}, "data"),
])
def test_a_wrong_section_is_refused_with_one_line(tmp_path, changes, where):
    path = tmp_path / "p.tlgui.json"
    path.write_text(json.dumps({"format": PROJECT_FORMAT, "version": 1, **GOOD, **changes}))
    with pytest.raises(ProjectError) as info:
        load_project(path)
    assert str(info.value).startswith(f"{path}: {where}: ")


@pytest.mark.parametrize("name, content", [
    ("config.json", "[1, 2]"),
    ("config.json", '{"epochs": "ten"}'),
    ("config.json", '{"epochs": 3, "model": ["x"]}'),
    ("config.json", "{not json"),
    ("summary.json", '{"runs": [1]}'),
    ("model/metrics.csv", "epoch,val_acc\nfirst,0.5\n"),
])
def test_a_damaged_run_folder_gives_one_line_naming_the_file(tmp_path, name, content):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.json").write_text('{"epochs": 3, "model": "resnet18"}')
    (run / "model" / "metrics.csv").write_text("epoch,val_acc\n1,0.5\n")
    assert read_run(run).variants["model"]["best_val_acc"] == 0.5
    (run / name).write_text(content)
    with pytest.raises(ProjectError) as info:
        read_run(run)
    text = str(info.value)
    assert text.startswith(f"{run / name}: ") and "\n" not in text
