import re

import pytest

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
    # Where the numbers were measured: the run stored with them.
    with ResultStore(store_path) as store:
        (run,) = store.runs().values()
    setup = html[html.index('id="setup"'):]
    assert run.id[:8] in setup and f"{run.cpu} ({run.cores} logical cores)" in setup
    assert f"numpy {run.libraries['numpy']}" in setup


def test_empty_store_renders(tmp_path):
    index = write_report(tmp_path / "rep", store_path=tmp_path / "empty.sqlite")
    assert "no results yet" in index.read_text()


def _result(method, label, scale, artifact, image="baby", *, dataset="Set5", psnr=30.0):
    from srbench.store import Result

    return Result(method=method, label=label, dataset=dataset, image=image, scale=scale,
                  psnr=psnr, ssim=0.9, seconds=0.1, device="cpu", protocol="matlab",
                  artifact_hash=artifact, key=f"{method}-{dataset}-{scale}-{artifact}-{image}")


def test_summarise_manifest_adds_up_a_warm_started_chain():
    from srbench.report.provenance import summarise_manifest

    first = {"init": {"from_scale": 3, "trained": "all"}, "epochs": 70, "train_seconds": 3000.0,
             "device": "cpu", "heldout_psnr": 30.1,
             "history": [{"epoch": 1, "loss": 0.1, "heldout_psnr": 29.0},
                         {"epoch": 2, "loss": 0.05, "heldout_psnr": 30.1}]}
    manifest = {"init": {"warm_start": True, "runs": [first]}, "epochs": 500,
                "train_seconds": 400.0, "device": "cuda:0", "heldout_psnr": 30.8,
                "train_images": 86, "heldout_images": 5,
                "history": [{"epoch": 1, "loss": 0.04}, {"epoch": 2, "loss": 0.03, "heldout_psnr": 30.8}]}
    summary = summarise_manifest(manifest)
    assert summary["runs"] == 2 and summary["epochs"] == 570
    assert summary["seconds"] == 3400.0 and summary["devices"] == ["cpu", "cuda:0"]
    assert summary["start"] == "x3 weights" and summary["heldout_psnr"] == 30.8
    assert (summary["training_images"], summary["heldout_images"]) == (86, 5)
    # One curve per run, in order; epochs without a held-out score are skipped.
    assert summary["heldout_curve"] == [[29.0, 30.1], [30.8]]
    # A dictionary method: one run, its duration, no epochs or held-out score.
    plain = summarise_manifest({"duration_s": 12.5, "training_images": 91,
                                "dictionary": {"method": "ksvd"}})
    assert plain["runs"] == 1 and plain["seconds"] == 12.5 and plain["epochs"] is None
    assert plain["start"] == "K-SVD dictionary"
    assert plain["heldout_curve"] == []
    # A fine-tune that trained some layers only says which.
    partial = summarise_manifest({"init": {"from_scale": 3, "trained": ["deconv"]}, "epochs": 9})
    assert partial["start"] == "x3 weights (deconv only)"
    # Scale augmentation: the original images and how many scales each was trained at.
    augmented = summarise_manifest({"train_images": 86, "train_scales": [1.0, 0.9, 0.8]})
    assert (augmented["training_images"], augmented["training_scales"]) == (86, 3)
    assert summarise_manifest({"train_images": 86})["training_scales"] == 1


def test_curve_svg_marks_runs_and_keeps_the_last_epoch():
    import re

    from srbench.report.svg import curve_svg

    assert curve_svg([]) == "" and curve_svg([[], []]) == ""
    seeded = [20.0] + [27.0 + 0.001 * i for i in range(500)]
    svg = curve_svg([seeded, [27.5, 27.6, 27.7]], width=200, height=42)
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert svg.count('class="run-edge"') == 1  # one hand-over between two runs
    assert "last 27.700 dB" in svg and "best 27.700 dB" in svg
    # A long run is thinned for drawing, but its last epoch is always drawn.
    first_line = re.findall(r'<polyline points="([^"]+)"', svg)[0].split()
    assert len(first_line) <= 120
    # The axis spans 1 dB below the best: the seeded run's 20 dB start sits on the bottom edge.
    bottom = 42 - 4
    assert float(first_line[0].split(",")[1]) == bottom
    assert float(first_line[-1].split(",")[1]) < bottom


def test_report_lists_the_trained_artifacts_behind_its_results(tmp_path):
    from srbench._methods.cnn.methods import SRCNNMethod

    from srbench.store import ResultStore

    shipped = SRCNNMethod().load(scales=[3]).artifact_hash(3)
    store_path = tmp_path / "s.sqlite"
    with ResultStore(store_path) as store:
        store.put(_result("srcnn", "SRCNN", 3, shipped))
        # A variant run of the same weights: a row of its own in the tables, not in provenance.
        store.put(_result("srcnn[border=symmetric]", "SRCNN (border=symmetric)", 3, shipped))
        store.put(_result("srcnn", "SRCNN", 2, "0123456789abcdef"))  # not the shipped one
        store.put(_result("bicubic", "Bicubic", 3, ""))  # nothing trained
        store.put(_result("gone_plugin", "Gone", 3, "fedcba9876543210"))
    html = write_report(tmp_path / "rep", store_path=store_path).read_text()
    section = html[html.index('id="artifacts"'):html.index('id="sources"')]
    assert shipped in section and "seeded initialisation" in section
    # The shipped SRCNN recorded its held-out PSNR per epoch: its curve is drawn.
    assert section.count('class="curve"') == 1
    assert "0123456789abcdef" in section and "earlier artifact" in section
    assert "Bicubic" not in section and "Gone" not in section
    assert section.count(shipped) == 1 and "border=symmetric" not in section
    assert "SRCNN (border=symmetric)" in html[:html.index('id="artifacts"')]


def test_a_variant_follows_its_method_in_the_tables():
    from srbench.report.data import build_report_data

    rows = [_result(m, label, 3, "", image=img)
            for m, label in [("fsrcnn[border=layers]", "FSRCNN (border=layers)"), ("zzz_plugin", "Z"),
                             ("fsrcnn", "FSRCNN"), ("srcnn", "SRCNN")]
            for img in ("baby", "bird")]
    data = build_report_data(rows, method_order=["srcnn", "fsrcnn"])
    assert [row.method for row in data.sections[0].rows] == [
        "srcnn", "fsrcnn", "fsrcnn[border=layers]", "zzz_plugin"
    ]


def test_scatter_labels_keep_off_other_points():
    from srbench.report.svg import _label_position

    bounds = (0.0, 0.0, 500.0, 300.0)
    # A point right where the label would go: the label moves off it.
    dot = (115.0, 129.0, 97.0, 111.0)
    lx, ly = _label_position(100.0, 100.0, "SRCNN", [], [dot], bounds)
    box = (lx, lx + 6.6 * 5 + 2, ly - 10, ly + 3)
    assert not (box[0] < dot[1] and dot[0] < box[1] and box[2] < dot[3] and dot[2] < box[3])
    # With the right side walled off, the label goes left of its point.
    wall = (105.0, 500.0, 0.0, 300.0)
    lx, _ = _label_position(100.0, 100.0, "SRCNN", [], [wall], bounds)
    assert lx + 6.6 * 5 + 2 <= 100.0


# --- Report layout for big sets, published means, disclosures --------------------------------

LABELS = {
    "bicubic": "Bicubic", "sc": "SC", "ksvd": "K-SVD", "ne_nnls": "NE+NNLS", "ne_lle": "NE+LLE",
    "gr": "GR", "anr": "ANR", "aplus": "A+", "srcnn": "SRCNN", "srcnn_955": "SRCNN 9-5-5",
    "espcn": "ESPCN", "fsrcnn": "FSRCNN",
}  # fmt: skip


def _catalogued(dataset):
    from srbench.datasets import CATALOG

    return list(CATALOG[dataset.lower()].hashes)


def _cell(method, dataset, scale, psnr, *, images=None, artifact=""):
    """Results of one method on every catalogued image of ``dataset`` (or ``images``)."""
    return [_result(method, LABELS[method], scale, artifact, image, dataset=dataset, psnr=psnr)
            for image in (images or _catalogued(dataset))]  # fmt: skip


def _between(html, start, end=None):
    """The page from ``id="start"`` to ``id="end"`` (or to the end)."""
    begin = html.index(f'id="{start}"')
    return html[begin:html.index(f'id="{end}"', begin) if end else None]


def _summary_row(html, section, label):
    """The summary-table row of ``label`` in one section."""
    table = _between(html, section)
    table = table[table.index('<table class="summary">'):table.index("</table>")]
    (row,) = [tr for tr in table.split("<tr>") if f"</span>{label}<" in tr]
    return row


def _write(tmp_path, results):
    store_path = tmp_path / "s.sqlite"
    with ResultStore(store_path) as store:
        for r in results:
            store.put(r)
    return write_report(tmp_path / "rep", store_path=store_path).read_text()


def test_per_image_tables_of_big_sets_start_collapsed_after_every_summary(tmp_path):
    from srbench.report.data import COLLAPSE_OVER

    assert COLLAPSE_OVER == 14 and len(_catalogued("BSD100")) == 100 and len(_catalogued("Set14")) == 14
    results = [r for dataset in ("Set5", "Set14", "BSD100") for method in ("bicubic", "aplus")
               for r in _cell(method, dataset, 3, 28.0)]  # fmt: skip
    html = _write(tmp_path, results)
    details = dict(re.findall(r'<details id="([a-z0-9-]+)-images" class="per-image"( open)?>', html))
    # 5 and 14 images: open; 100 images: collapsed.
    assert details == {"set5-x3": " open", "set14-x3": " open", "bsd100-x3": ""}
    # Every summary and plot comes before the first per-image table.
    assert html.index('id="bsd100-x3"') < html.index('id="per-image"') < html.index('id="set5-x3-images"')
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 3
    assert html.index("</svg>", html.index('id="bsd100-x3"')) < html.index('id="per-image"')
    # All 100 rows are still there, inside the collapsed table.
    per_image = _between(html, "bsd100-x3-images", "sources")
    assert all(f"<td>{image}</td>" in per_image for image in _catalogued("BSD100"))


def test_a_cell_with_published_means_shows_the_compared_one_with_its_citation(tmp_path):
    from srbench.references import TABLES
    from srbench.report.data import build_report_data

    numbers = {key: number for number, key in enumerate(TABLES, start=1)}
    drcn, vdsr = numbers["drcn_cvpr2016_benchmark.csv"], numbers["vdsr_cvpr2016_table3.csv"]
    results = (_cell("aplus", "Set5", 2, 36.60) + _cell("gr", "Set5", 2, 35.10)
               + _cell("aplus", "BSD100", 3, 28.25) + _cell("bicubic", "BSD100", 3, 27.20, images=_catalogued("BSD100")[:99]))  # fmt: skip
    data = build_report_data(results, method_order=list(LABELS))
    set5 = {row.label: row for row in data.sections[0].rows}
    # A+ Set5 x2: DRCN's 36.54 is compared; VDSR prints the same cell and is listed, not compared.
    aplus = set5["A+"].published
    assert aplus.compared.psnr == 36.54 and aplus.compared.source.number == drcn
    assert [o.source.number for o in aplus.others] == [vdsr]
    assert set5["A+"].delta == pytest.approx(0.06)
    assert set5["GR"].published is None and set5["GR"].delta is None  # no paper prints GR

    html = _write(tmp_path, results)
    row = _summary_row(html, "set5-x2", "A+")
    assert "36.54" in row and f'href="#src-{drcn}">[{drcn}]</a>' in row and "+0.06" in row
    # Its footnote mark follows the citation (the label carries the x2 disclosure's).
    note = re.search(rf'\[{drcn}\]</a></sup><sup class="mark"><a href="#set5-x2-note-([a-z]+)"', row).group(1)
    footnote = re.search(rf'<li id="set5-x2-note-{note}" class="references">(.*?)</li>', html, re.DOTALL).group(1)
    assert f"compared with [{drcn}] 36.54" in footnote and f"also [{vdsr}] 36.54" in footnote
    # GR: no published value, no citation, no difference.
    gr = _summary_row(html, "set5-x2", "GR")
    assert "src-" not in gr and 'class="delta' not in gr
    # The sources list carries the paper, its table and its protocol.
    source = _between(html, f"src-{drcn}", f"src-{drcn + 1}")
    table = TABLES["drcn_cvpr2016_benchmark.csv"]
    assert table.title in source and "benchmark table" in source and "Protocol:" in source
    # Published for BSD100 too; a row that measured 99 of the 100 images shows no difference.
    assert "28.29" in _summary_row(html, "bsd100-x3", "A+") and "-0.04" in _summary_row(html, "bsd100-x3", "A+")
    bicubic = _summary_row(html, "bsd100-x3", "Bicubic")
    assert "27.21" in bicubic and 'class="delta' not in bicubic and "n/a" in bicubic
    assert "99 of 100 images measured here" in _between(html, "bsd100-x3", "per-image")


def test_the_x2_dictionary_disclosure_is_on_the_six_methods_at_x2_only(tmp_path):
    from srbench.report.data import build_report_data

    results = [r for scale in (2, 3) for method in LABELS for r in _cell(method, "Set5", scale, 30.0)]
    data = build_report_data(results, method_order=list(LABELS))
    x2, x3 = data.sections
    (note,) = [n for n in x2.notes if n.key == "x2-pca-dimensions"]
    assert note.labels == ["K-SVD", "NE+NNLS", "NE+LLE", "GR", "ANR", "A+"]
    assert {row.label for row in x2.rows if note.mark in row.marks} == set(note.labels)
    assert not [n for n in x3.notes if n.key == "x2-pca-dimensions"]

    html = _write(tmp_path, results)
    for where in (_between(html, "set5-x2", "set5-x3"), _between(html, "set5-x2-images", "set5-x3-images")):
        assert where.count("29 PCA dimensions") == 1
        marked = re.findall(rf'([A-Za-z0-9+\- ]+)<sup class="mark"><a href="#set5-x2(?:-images)?-note-{note.mark}">', where)
        assert sorted(m.split(">")[-1] for m in marked) == sorted(note.labels)
    assert "29 PCA dimensions" not in _between(html, "set5-x3", "per-image")
    assert "29 PCA dimensions" not in _between(html, "set5-x3-images", "sources")


def test_the_955_note_shows_only_where_it_is_below_915_with_its_training_time(tmp_path):
    from srbench.registry import get_registry
    from srbench.report.data import build_report_data
    from srbench.report.provenance import format_duration, summarise_manifest

    method = get_registry().get("srcnn_955")().load(scales=[2, 4])
    hashes = {s: method.artifact_hash(s) for s in (2, 4)}
    minutes = format_duration(summarise_manifest(method.manifests_[2])["seconds"])

    def grid(below):
        """9-5-5 below 9-1-5 on Set5 x2 (if ``below``), above it on Set14 x2 and Set5 x4."""
        return (_cell("srcnn", "Set5", 2, 36.62) + _cell("srcnn_955", "Set5", 2, 35.93 if below else 36.70, artifact=hashes[2])
                + _cell("srcnn", "Set14", 2, 32.0) + _cell("srcnn_955", "Set14", 2, 32.1, artifact=hashes[2])
                + _cell("srcnn", "Set5", 4, 30.1) + _cell("srcnn_955", "Set5", 4, 30.2, artifact=hashes[4]))  # fmt: skip

    data = build_report_data(grid(below=True), method_order=list(LABELS))
    notes = {(s.dataset, s.scale): [n for n in s.notes if n.key == "srcnn-955-under-trained"] for s in data.sections}
    assert {k: len(v) for k, v in notes.items()} == {("Set5", 2): 1, ("Set14", 2): 0, ("Set5", 4): 0}
    (note,) = notes[("Set5", 2)]
    assert "35.93 vs 36.62 dB" in note.text and "under-trained" in note.text
    # The training time is the manifest's, not written anywhere by hand.
    assert f"in {minutes} on a CPU" in note.text
    html = _write(tmp_path / "below", grid(below=True))
    assert html.count("under-trained") == 3  # summary and per-image notes, artifacts remark
    assert "under-trained" in _between(html, "set5-x2", "set5-x4")
    assert "under-trained" not in _between(html, "set5-x4", "per-image")
    assert "below SRCNN (9-1-5) on Set5 ×2." in _between(html, "artifacts", "sources")

    # Retrained above 9-1-5: the note goes away by itself.
    data = build_report_data(grid(below=False), method_order=list(LABELS))
    assert not [n for s in data.sections for n in s.notes if n.key == "srcnn-955-under-trained"]
    assert "under-trained" not in _write(tmp_path / "above", grid(below=False))


def test_describe_training_reads_the_manifest_summary():
    from srbench.report.provenance import (
        ArtifactRow,
        describe_training,
        summarise_manifest,
    )

    row = ArtifactRow(method="srcnn_955", label="SRCNN 9-5-5", scale=2, artifact="0" * 16)
    for key, value in summarise_manifest({"init": {"from": "srcnn", "from_scale": 2}, "epochs": 20,
                                          "train_seconds": 773.0, "device": "cpu"}).items():  # fmt: skip
        setattr(row, key, value)
    assert describe_training(row) == "20 epochs in 13 min on a CPU, from SRCNN 9-1-5 x2 weights"
    row.runs, row.devices, row.seconds = 3, ["cpu", "cuda:0"], 6294.0
    assert describe_training(row) == "20 epochs over 3 runs in 1 h 45 min on CPU and GPU, from SRCNN 9-1-5 x2 weights"
    row.note = "the results used an earlier artifact; its manifest is not shipped now"
    assert "earlier artifact" in describe_training(row)
    assert "no training record" in describe_training(None)
