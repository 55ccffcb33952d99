"""EDA.ipynb stays thin and parameterised. It is executed once in the tests, by the pipeline test
(tests/integration/test_pipeline.py), which also checks its figures and numbers."""
import json

from helpers.files import ROOT


def test_eda_notebook_is_thin_and_parameterised():
    nb = json.loads((ROOT / "EDA.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    for line in "".join(tagged[0]["source"]).splitlines():
        name = line.split("=")[0].strip()
        assert name.isupper() and "#" in line, f"parameter line without UPPER_CASE name or comment: {line}"
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in "".join(c["source"]).splitlines())
