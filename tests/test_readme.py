"""The README's cnnlib example runs as written (with one epoch instead of five, to stay quick)."""

import pathlib
import re

import matplotlib

matplotlib.use("Agg")

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_cnnlib_example_runs(capsys):
    (block,) = _python_blocks()
    assert "epochs=5" in block
    namespace: dict = {}
    exec(compile(block.replace("epochs=5", "epochs=1"), "README.md", "exec"), namespace)
    out, dw = namespace["out"], namespace["dw"]
    assert out.shape == (8, 6, 32, 32) and out.dtype == "float32"
    assert dw.shape == (6, 3, 5, 5)
    printed = capsys.readouterr().out
    assert "Total params: 63,802" in printed
    assert namespace["history"].history["loss"], "fit recorded no loss"
    assert namespace["evaluate"](namespace["model"], namespace["X_test"], namespace["y_test"])["accuracy"] > 0.8
