"""python -m experiments.inspect: d2l's layer table for any overrides."""
from experiments import inspect


def test_inspect_prints_the_layer_table(capsys):
    assert inspect.main(["model=classic"]) == 0
    printed = capsys.readouterr().out
    assert "Conv2d output shape:\ttorch.Size([1, 120, 1, 1])" in printed
    assert "AvgPool2d" not in printed and "MaxPool2d output shape:\ttorch.Size([1, 6, 14, 14])" in printed
    assert "Parameters: 61,706" in printed
