"""What the terminal prints at a sweep's end: the answer in one screen, every line true and under 100 characters."""
import itertools
import math

import numpy as np

from ..support.record import Record


def screen(text: str, lines: int) -> list[str]:
    shown = text.splitlines()
    assert len(shown) <= lines, text
    assert max(len(line) for line in shown) <= 100, text
    return shown


def logical(text: str) -> list[str]:
    """The lines as written, before wrapping at 100 characters (a wrapped line goes on indented)."""
    out = []
    for line in text.splitlines():
        if line.startswith("  ") and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def main_sweep(record: Record, seeds=(0,), epochs=18):
    """The README's main command as it comes out: LeNet-5 with SGD at lr 0.9 diverges in its first epoch."""
    for seed in seeds:
        noise = 0.002 * seed
        record.job("classic", "adam", seed, acc=0.964 + noise, params={"trainer.epochs": epochs})
        record.job("classic", "sgd", seed, status="FAILED", acc=math.nan, loss=math.nan,
                   tags={"lenet.diverged": "1"}, params={"trainer.epochs": epochs})
        record.job("d2l", "adam", seed, acc=0.933 - noise, params={"trainer.epochs": epochs})
        record.job("d2l", "sgd", seed, acc=0.904 + noise, params={"trainer.epochs": epochs})
    record.end()


def test_the_main_sweep_fits_fifteen_lines_with_its_answer_failure_hint_and_next_step(runs_dir):
    record = Record(runs_dir)
    main_sweep(record)
    shown = screen(record.brief(), 15)
    assert shown[0] == ("Best: classic+adam, test accuracy 0.9640 (one network; 95% over 1,000 test images: "
                        "0.951-0.974)")
    assert shown[1].startswith("Next: d2l+adam, 0.9330: 3.1 points behind on score")
    assert shown[2] == "Failed: classic+sgd, its run diverged at epoch 1; often too high an lr: try optim.lr=0.1"
    assert shown[4].split() == ["recipe", "runs", "failed", "test_acc", "score"]
    assert shown[5].split() == ["classic+adam", "1", "-", "0.9640", "0.964"]  # the best first
    assert shown[8].split() == ["classic+sgd", "1", "1", "diverged", "-", "0.100"]  # at chance in its score
    assert shown[-2].startswith("One seed per recipe: these are single")
    assert "McNemar" not in record.brief() and "differ" not in record.brief()  # two networks are not an answer


def test_a_hint_is_never_a_value_the_sweep_tried_and_a_plateau_points_at_epochs(runs_dir):
    record = Record(runs_dir, swept=["model", "optim", "optim.lr"])
    for lr in (0.9, 0.1):  # diverged at both: 0.1 was tried, so the hint goes lower
        record.job("classic", "sgd", acc=math.nan, loss=math.nan, status="FAILED", tags={"lenet.diverged": "1"},
                   params={"optim.lr": lr, "trainer.epochs": 2})
        record.job("d2l", "sgd", acc=0.11, loss=2.301, params={"optim.lr": lr, "trainer.epochs": 2})  # plateau
    record.job("classic", "adam", acc=0.95, params={"trainer.epochs": 2})
    record.end()
    failed = [line for line in logical(record.brief()) if line.startswith("Failed: ")]
    assert any(f.startswith("Failed: classic+sgd+optim.lr=0.9,") and f.endswith("try optim.lr=0.03") for f in failed)
    assert any(f.startswith("Failed: classic+sgd+optim.lr=0.1,") and f.endswith("try optim.lr=0.01") for f in failed)
    assert not any(f.endswith(("optim.lr=0.1", "optim.lr=0.9")) for f in failed)  # never one the sweep tried
    d2l = [f for f in failed if f.startswith("Failed: d2l+sgd")]
    assert d2l and all("the loss never left 2.30 in 2 epochs: try trainer.epochs=6" in f for f in d2l)


def test_a_loss_still_at_its_plateau_after_many_steps_points_at_the_lr_not_at_epochs(runs_dir):
    # Real MNIST: LeNet-5 with SGD at lr 0.9 sits at 0.1135 after 10 epochs of 211 steps; more epochs would not
    # help, where d2l's sigmoid LeNet at 2 epochs of the embedded digits (114 steps) has only not started yet.
    record = Record(runs_dir)
    full = {"trainer.epochs": 10, "trainer.batch_size": 256, "train_size": 54000, "optim.lr": 0.9}
    record.job("classic", "sgd", acc=0.1135, loss=2.3013, params=full)
    record.job("classic", "adam", acc=0.988, params=full | {"optim.lr": 0.001})
    record.end()
    (failed,) = [line for line in logical(record.brief()) if line.startswith("Failed: ")]
    assert failed.endswith("often too high an lr: try optim.lr=0.1") and "trainer.epochs" not in failed


def test_a_two_by_two_sweep_with_three_seeds_fits_twenty_five_lines_with_its_claims(runs_dir):
    record = Record(runs_dir, swept=["model", "optim", "seed"])
    main_sweep(record, seeds=(0, 1, 2))
    text = record.brief()
    shown = screen(text, 25)
    assert shown[0].startswith("Best: classic+adam, test accuracy 0.9660 (95% CI over 3 seeds: ")
    assert "test_acc ±95%" in text
    # Four significant tests (two comparisons, two model terms) state two facts: two findings, each said once.
    assert "2 findings, from 4 of 4 tests significant at 0.05 (Holm-corrected over all 4):" in logical(text)
    claims = [line for line in logical(text) if line.startswith("- ")]
    assert [c.split(" among ")[0] for c in claims] == ["- classic beats d2l", "- adam beats sgd"]
    assert all("; the model term agrees (p<0.001" in c for c in claims)
    assert "sgd 3 of 6 runs failed" in claims[1]  # a level that matters says how many of its runs failed


def test_a_sweep_of_twenty_four_recipes_fits_forty_lines_and_counts_the_rest(runs_dir):
    factors = ["model", "model.activation", "model.pool", "optim"]
    record = Record(runs_dir, swept=[*factors, "seed"])
    rng = np.random.default_rng(0)
    for model, act, pool, optim in itertools.product(["classic", "d2l"], ["relu", "sigmoid", "tanh"],
                                                     ["avg", "max"], ["adam", "sgd"]):
        for seed in range(3):
            record.job(model, optim, seed, acc=0.95 + rng.normal(0, 0.003) + (0.02 if optim == "adam" else 0),
                       params={"model.activation": act, "model.pool": pool})
    record.end()
    text = record.brief()
    screen(text, 40)
    assert "... and 12 more recipes (scores " in text


def test_the_full_summary_labels_the_models_intervals_apart_from_a_recipes_own(runs_dir, capsys):
    # With one factor, a level is one recipe: its t interval over seeds and the model's marginal-mean interval
    # are two intervals of one quantity, and the summary says which is which.
    record = Record(runs_dir, swept=["optim", "seed"])
    for seed in range(3):
        record.job("classic", "adam", seed, acc=0.96 + 0.002 * seed)
        record.job("classic", "sgd", seed, acc=0.90 + 0.02 * seed)
    record.end()
    _, folder = record.export(capsys, "csv")
    full = (folder / "summary.md").read_text()
    assert "their intervals are the model's" in full and "model ci_low" in full, full
