import re

from srbench.report import write_report
from srbench.runner import RunConfig, Runner
from srbench.store import ResultStore


def test_report_is_self_contained_with_tables_and_plots(tmp_path, data_dir):
    store_path = tmp_path / "s.sqlite"
    with ResultStore(store_path) as store:
        Runner(store).run(RunConfig(methods=["bicubic"], datasets=["Set5"], scales=[2, 3], data_dir=data_dir))
    index = write_report(tmp_path / "rep", store_path=store_path)
    html = index.read_text()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
    assert "Set5 ×2" in html and "Set5 ×3" in html
    # the paper's Bicubic mean for Set5 x3 (30.39) is shown next to ours
    assert "30.39" in html
    # nothing is fetched from the network: no external src/href
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for twin in ("results.csv", "results.md", "results.tex"):
        assert (tmp_path / "rep" / twin).exists()


def test_empty_store_renders(tmp_path):
    index = write_report(tmp_path / "rep", store_path=tmp_path / "empty.sqlite")
    assert "no results yet" in index.read_text()
