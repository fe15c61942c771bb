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
    from srbench.report.svg import _label_position, _label_width

    bounds = (0.0, 0.0, 500.0, 300.0)
    # A point right where the label would go: the label moves off it.
    dot = (115.0, 129.0, 97.0, 111.0)
    lx, ly = _label_position(100.0, 100.0, "SRCNN", [], [dot], bounds)
    box = (lx, lx + _label_width("SRCNN"), ly - 10, ly + 3)
    assert not (box[0] < dot[1] and dot[0] < box[1] and box[2] < dot[3] and dot[2] < box[3])
    # With the right side walled off, the label goes left of its point.
    wall = (105.0, 500.0, 0.0, 300.0)
    lx, _ = _label_position(100.0, 100.0, "SRCNN", [], [wall], bounds)
    assert lx + _label_width("SRCNN") <= 100.0


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


def test_a_report_with_a_big_set_gives_every_dataset_a_page_of_its_own(tmp_path):
    from srbench.report.data import COLLAPSE_OVER

    assert COLLAPSE_OVER == 14 and len(_catalogued("BSD100")) == 100 and len(_catalogued("Set14")) == 14
    results = [r for dataset in ("Set5", "Set14", "BSD100") for method in ("bicubic", "aplus")
               for r in _cell(method, dataset, 3, 28.0)]  # fmt: skip
    html = _write(tmp_path, results)
    # The index: summaries and plots, no per-image table, a link to each dataset's page.
    assert "<details" not in html.split('id="sources"')[0]
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 3
    for dataset in ("set5", "set14", "bsd100"):
        assert f'href="{dataset}.html"' in html
        assert f'href="{dataset}.html#{dataset}-x3-images"' in html
    # Each page holds its set's per-image tables, open, and links back.
    pages = {d: (tmp_path / "rep" / f"{d}.html").read_text() for d in ("set5", "set14", "bsd100")}
    for dataset, page in pages.items():
        details = dict(re.findall(r'<details id="([a-z0-9-]+)-images" class="per-image"( open)?>', page))
        assert details == {f"{dataset}-x3": " open"}
        assert 'href="index.html"' in page
    per_image = pages["bsd100"]
    assert all(f"<td>{image}</td>" in per_image for image in _catalogued("BSD100"))
    assert not re.search(r'(src|href)="(https?:)?//', per_image)


def test_small_sets_keep_everything_on_one_page_after_every_summary(tmp_path):
    results = [r for dataset in ("Set5", "Set14") for method in ("bicubic", "aplus")
               for r in _cell(method, dataset, 3, 28.0)]  # fmt: skip
    html = _write(tmp_path, results)
    details = dict(re.findall(r'<details id="([a-z0-9-]+)-images" class="per-image"( open)?>', html))
    assert details == {"set5-x3": " open", "set14-x3": " open"}
    # Every summary and plot comes before the first per-image table.
    assert html.index('id="set14-x3"') < html.index('id="per-image"') < html.index('id="set5-x3-images"')
    assert not list((tmp_path / "rep").glob("set5.html"))


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


# --- Issue 17: figures, paper-format tables, protocols, timing, pages, polish ------------------

def _bicubic_store(tmp_path, data_dir, *, outputs=True, protocols=("matlab",), scales=(2,)):
    store_path = tmp_path / "fig.sqlite"
    with ResultStore(store_path) as store:
        for protocol in protocols:
            Runner(store).run(RunConfig(methods=["bicubic"], datasets=["Set5"], scales=list(scales), data_dir=data_dir,
                                        protocol=protocol, save_outputs=outputs))  # fmt: skip
    return store_path


def _add_noisy(store_path, data_dir, box=(100, 60, 40, 40)):
    """A second method on Set5 x2 (matlab): bicubic's output with noise inside ``box`` of baby."""
    import dataclasses

    import numpy as np

    from srbench.datasets import load_dataset
    from srbench.metrics import evaluate
    from srbench.outputs import load_output, save_output
    from srbench.protocols import get_protocol

    images = {i.name: i for i in load_dataset("Set5", data_dir).images}
    with ResultStore(store_path) as store:
        for r in store.results(methods=["bicubic"], scales=[2], protocol="matlab"):
            out = load_output(store_path, r.output).astype(np.int16)
            if r.image == "baby":
                x, y, w, h = box
                noise = np.random.default_rng(0).integers(-60, 60, (h, w))
                out[y : y + h, x : x + w] += noise.astype(np.int16)
            out = np.clip(out, 0, 255).astype(np.uint8)
            hr = get_protocol("matlab").ground_truth(images[r.image].pixels(), 2)
            psnr, ssim = evaluate(out, hr, 2)
            store.put(dataclasses.replace(r, method="noisy", label="Noisy", psnr=psnr, ssim=ssim,
                                          output=save_output(store_path, out), key=r.key + "-noisy"))  # fmt: skip


def _png(data):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def test_figure_crops_are_the_stored_outputs_and_score_over_their_area(tmp_path, data_dir):
    import numpy as np

    from srbench.datasets import load_dataset
    from srbench.metrics import psnr_255, ssim_255
    from srbench.outputs import load_output
    from srbench.protocols import get_protocol
    from srbench.report import parse_crop, prepare
    from srbench.report.figures import crop_scores, score_plane

    store_path = _bicubic_store(tmp_path, data_dir, protocols=("matlab", "matlab-rgb"))
    _add_noisy(store_path, data_dir)
    data, results, _, _ = prepare(store_path=store_path, data_dir=data_dir, figure_images=2,
                                  crops=[parse_crop("Set5/bird:20,30,48,40")])  # fmt: skip
    images = {i.name: i.pixels() for i in load_dataset("Set5", data_dir).images}
    stored = {(r.protocol, r.method, r.image): r for r in results}
    sections = {s.protocol: s for s in data.sections}
    assert set(sections) == {"matlab", "matlab-rgb"}

    matlab = sections["matlab"].figure
    # The user's image first, then where the methods differ most (baby: the noise).
    assert [i.image for i in matlab.images] == ["bird", "baby"]
    bird, baby = matlab.images
    assert bird.region == (20, 30, 48, 40) and bird.chosen == "asked"
    assert baby.chosen == "auto"
    x, y, w, h = baby.region
    assert 100 - w < x < 140 and 60 - h < y < 100, "the region overlaps the noisy square"
    for entry in matlab.images:
        x, y, w, h = entry.region
        hr = get_protocol("matlab").ground_truth(images[entry.image], 2)
        crops = {c.label: c for c in entry.crops}
        assert [c.label for c in entry.crops] == ["HR", "Bicubic", "Noisy"]
        assert np.array_equal(_png(crops["HR"].png), hr[y : y + h, x : x + w])
        for method, label in (("bicubic", "Bicubic"), ("noisy", "Noisy")):
            output = load_output(store_path, stored[("matlab", method, entry.image)].output)
            crop = _png(crops[label].png)
            assert np.array_equal(crop, output[y : y + h, x : x + w]), "a crop is the stored output's pixels"
            region = (hr[y : y + h, x : x + w].astype(float), crop.astype(float))
            assert crops[label].psnr == pytest.approx(psnr_255(region[1], region[0]), abs=1e-12)
            assert crops[label].ssim == pytest.approx(ssim_255(region[1], region[0]), abs=1e-12)
    assert max(baby.crops[1:], key=lambda c: c.psnr).best and baby.crops[1].label == "Bicubic"

    # Over the whole scored area (the image less `scale` pixels a side) a crop's numbers are the
    # stored per-image ones, under either protocol's conventions.
    for protocol in ("matlab", "matlab-rgb"):
        r = stored[(protocol, "bicubic", "butterfly")]
        output = load_output(store_path, r.output)
        hr = get_protocol(protocol).ground_truth(images["butterfly"], 2)
        assert output.shape == hr.shape and output.ndim == (3 if protocol == "matlab-rgb" else 2)
        height, width = hr.shape[:2]
        psnr, ssim = crop_scores(output, hr, (2, 2, width - 4, height - 4), protocol)
        assert psnr == pytest.approx(r.psnr, abs=1e-9) and ssim == pytest.approx(r.ssim, abs=1e-9)
    # Under matlab-rgb the crops are RGB and scored on unrounded luminance.
    rgb = sections["matlab-rgb"].figure.images[0]
    crop = _png(rgb.crops[1].png)
    assert crop.ndim == 3 and score_plane(crop, "matlab-rgb").dtype == np.float64

    # The page: every crop embedded, its place marked, the protocol named.
    html = _render(data)
    assert html.count('class="region"') == 4 and "data:image/png;base64," in html
    assert "Visual comparison: Set5 ×2, protocol matlab-rgb" in html


def _render(data):
    from srbench.report.render import render_pages

    return render_pages(data)["index.html"]


def test_figures_say_what_is_missing(tmp_path, data_dir, monkeypatch):
    from srbench.report import prepare

    # No outputs kept: a note instead of crops.
    no_outputs = _bicubic_store(tmp_path / "a", data_dir, outputs=False)
    data, *_ = prepare(store_path=no_outputs, data_dir=data_dir)
    (figure,) = [s.figure for s in data.sections]
    assert not figure.images and "No method outputs were saved" in figure.notes[0]
    assert "No method outputs were saved" in _render(data)

    # Outputs but no HR images: crops of the outputs, no HR crop and no crop scores, and why.
    store_path = _bicubic_store(tmp_path / "b", data_dir)
    empty = tmp_path / "nodata"
    (empty / "Set5").mkdir(parents=True)
    monkeypatch.setenv("SRBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data, *_ = prepare(store_path=store_path, data_dir=empty)
    (figure,) = [s.figure for s in data.sections]
    assert figure.images, "the outputs are still shown"
    entry = figure.images[0]
    assert entry.crops[0].label == "HR" and entry.crops[0].png is None
    assert entry.crops[1].png and entry.crops[1].psnr is None
    assert any("HR images of Set5 were not found" in note for note in entry.notes)
    assert "HR images of Set5 were not found" in _render(data)


def _synthetic(method, label, dataset, scale, image, psnr, *, protocol="matlab", ssim=0.9, status="ok", run=None,
               device="cpu", jobs=1, seconds=0.1, repeat=1):
    from srbench.store import Result

    return Result(method=method, label=label, dataset=dataset, image=image, scale=scale,
                  psnr=psnr if status == "ok" else None, ssim=ssim if status == "ok" else None,
                  seconds=seconds if status == "ok" else None, device=device, protocol=protocol, status=status,
                  error="" if status == "ok" else "boom", run=run, jobs=jobs, repeat=repeat,
                  key=f"{method}-{dataset}-{scale}-{image}-{protocol}-{device}")  # fmt: skip


def test_the_summary_pivot_ranks_complete_cells_per_protocol():
    from srbench.report.tables import pivot_csv, pivot_markdown, summary_pivots
    from srbench.results import results_frame

    rows = []
    for method, label, base in (("bicubic", "Bicubic", 30.0), ("aplus", "A+", 32.0), ("srcnn", "SRCNN", 31.5),
                                ("fsrcnn", "FSRCNN", 33.0)):  # fmt: skip
        for i, image in enumerate(("a", "b", "c")):
            status = "failed" if (method == "fsrcnn" and image == "c") else "ok"
            rows.append(_synthetic(method, label, "Set5", 3, image, base + i, ssim=0.8 + base / 1000, status=status))
        rows.append(_synthetic(method, label, "Set14", 3, "x", base - 1))
    rows.append(_synthetic("srcnn", "SRCNN", "Set5", 3, "a", 99.0, protocol="matlab-rgb"))
    pivots = summary_pivots(results_frame(rows), ["bicubic", "aplus", "srcnn", "fsrcnn"])
    assert [p.protocol for p in pivots] == ["matlab", "matlab-rgb"], "protocols never share a table"
    matlab = pivots[0]
    assert [c.title for c in matlab.columns] == ["Set5 ×3", "Set14 ×3"]
    assert [r.label for r in matlab.rows] == ["Bicubic", "A+", "SRCNN", "FSRCNN"]
    cells = {r.label: r.cells[0] for r in matlab.rows}
    # FSRCNN scored 2 of 3: its mean is over those two, marked, and not ranked.
    assert cells["FSRCNN"].psnr == pytest.approx(33.5) and cells["FSRCNN"].coverage == "2/3"
    assert cells["FSRCNN"].psnr_rank == 0
    assert (cells["A+"].psnr_rank, cells["SRCNN"].psnr_rank, cells["Bicubic"].psnr_rank) == (1, 2, 0)
    # Set14: FSRCNN complete there, so best.
    assert matlab.rows[3].cells[1].psnr_rank == 1 and matlab.rows[1].cells[1].psnr_rank == 2
    assert pivots[1].rows[0].cells[0].psnr == 99.0
    markdown = pivot_markdown(pivots)
    assert "| A+ | **33.00** / **0.8320** |" in markdown and "| SRCNN | <ins>32.50</ins> / <ins>0.8315</ins> |" in markdown
    assert "33.50 / 0.8330 (2/3)" in markdown
    assert "protocol matlab-rgb" in markdown and markdown.count("| Method |") == 2
    lines = pivot_csv(pivots).splitlines()
    assert lines[0].startswith("protocol,method,label,Set5_x3_psnr,Set5_x3_ssim,Set5_x3_images")
    assert lines[4].startswith("matlab,fsrcnn,FSRCNN,33.5000,") and "2/3" in lines[4]


def test_the_summary_latex_compiles(tmp_path):
    import shutil
    import subprocess

    from srbench.report.tables import pivot_latex, summary_pivots
    from srbench.results import results_frame

    rows = [_synthetic(m, label, d, s, "a", 30.0 + s) for m, label in (("bicubic", "Bicubic"), ("aplus", "A+"),
            ("my_net", "My_Net & 50% #1")) for d in ("Set5", "Set14", "BSD100", "Urban100") for s in (2, 3, 4)]  # fmt: skip
    rows.append(_synthetic("bicubic", "Bicubic", "Set5", 2, "b", 0, status="failed"))
    text = pivot_latex(summary_pivots(results_frame(rows)), ["run abc: a machine_with_underscores"])
    assert r"\usepackage{booktabs}" in text and r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert r"My\_Net \& 50\% \#1" in text and r"\multicolumn{3}{c}{Urban100}" in text and "(1/2)" in text
    assert "Ssim" not in text and "protocol matlab" in text
    assert "landscape" in text  # twelve dataset x scale columns
    narrow = [r for r in rows if r.dataset == "Set5"]
    assert "landscape" not in pivot_latex(summary_pivots(results_frame(narrow)))
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended): "
                    "the LaTeX was checked as text only")  # fmt: skip
    (tmp_path / "summary.tex").write_text(text)
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "summary.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "summary.pdf").stat().st_size > 1000


def test_two_protocols_never_share_a_table_a_plot_or_a_figure(tmp_path):
    results = [_synthetic(m, label, "Set5", 4, img, p + i, protocol=protocol)
               for protocol, p in (("matlab", 30.0), ("matlab-rgb", 29.0))
               for m, label in (("bicubic", "Bicubic"), ("srcnn", "SRCNN"))
               for i, img in enumerate(("baby", "bird"))]  # fmt: skip
    html = _write(tmp_path, results)
    assert 'id="set5-x4"' in html and 'id="matlab-rgb-set5-x4"' in html
    tables = re.findall(r'<table class="summary">\s*<caption>([^<]*)</caption>', html)
    assert tables == ["Set5 ×4, protocol matlab: mean over the images", "Set5 ×4, protocol matlab-rgb: mean over the images"]
    assert html.count("Mean PSNR (dB) / SSIM, protocol matlab.") == 1 and html.count("protocol matlab-rgb.") == 1
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
    assert re.search(r'aria-label="Set5 x4, protocol matlab-rgb: time vs PSNR"', html)
    # Published values (measured the matlab way) sit beside the matlab protocol only.
    rgb = _between(html, "matlab-rgb-set5-x4", "per-image")
    assert "Published values are shown beside the matlab protocol only" in rgb and "src-" not in rgb.split("</table>")[0]
    # Every per-image table and export names its protocol too.
    assert "Set5 ×4, protocol matlab-rgb: PSNR (dB) per image" in html
    assert "protocol matlab-rgb" in (tmp_path / "rep" / "summary.tex").read_text()


def test_colours_are_distinct_for_twenty_methods_and_fixed_per_method():
    from srbench.report.svg import CANONICAL, PALETTE, colour_map

    assert len(set(PALETTE)) == 20
    everything = colour_map(CANONICAL + [f"plugin{i}" for i in range(8)])
    assert len(set(everything.values())) == 20
    # A built-in keeps its colour whatever else is shown; a plugin never takes a shown one's.
    alone = colour_map(["anr", "my_plugin"])
    assert alone["anr"] == everything["anr"] and alone["my_plugin"] != alone["anr"]
    assert colour_map(["bicubic", "anr", "aplus", "srcnn"])["anr"] == everything["anr"]
    # Few built-ins and many plugins: still 20 distinct colours.
    many = colour_map(["anr", "srcnn"] + [f"p{i:02d}" for i in range(18)])
    assert len(set(many.values())) == 20


def test_scatter_labels_never_overlap(tmp_path):
    from srbench.report.data import build_report_data
    from srbench.report.svg import _label_width, scatter_svg

    # Twelve methods crowded into a corner: every label is beside its point or numbered.
    labels = ["Bicubic", "SC", "K-SVD", "NE+NNLS", "NE+LLE", "GR", "ANR", "A+", "SRCNN", "SRCNN 9-5-5", "ESPCN", "FSRCNN"]
    results = [_synthetic(f"m{i}", label, "Set5", 3, "a", 30 + 0.01 * i, seconds=0.1 + 0.001 * i)
               for i, label in enumerate(labels)]  # fmt: skip
    data = build_report_data(results)
    svg = scatter_svg(data.sections[0], data.colours)
    texts = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" class="point-label">([^<]*)</text>', svg)
    boxes = [(float(x), float(x) + _label_width(t), float(y) - 11, float(y) + 3) for x, y, t in texts]
    circles = [(float(cx), float(cy)) for cx, cy in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)]
    plot_bottom = 340 - 46
    for i, a in enumerate(boxes):
        if a[2] > plot_bottom:  # the legend under the plot
            continue
        for b in boxes[i + 1 :]:
            assert not (a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]), (a, b)
        for cx, cy in circles:
            assert not (a[0] < cx + 5 and cx - 5 < a[1] and a[2] < cy + 5 and cy - 5 < a[3])
    # Every method is named: beside its point, or in the legend under the plot.
    for label in labels:
        assert f">{label}<" in svg or f"{label}: " in svg, label


def test_timing_notes_warn_about_mixed_machines_devices_and_concurrency():
    from srbench.report.data import build_report_data
    from srbench.store import RunInfo

    def run(id_, cpu):
        return RunInfo(id=id_, started=1.0 if id_ == "1" * 32 else 2.0, cpu=cpu, cores=8, system="OS", gpu="GPU X",
                       python="3", libraries={}, revision="r")  # fmt: skip

    runs = {"1" * 32: run("1" * 32, "CPU A"), "2" * 32: run("2" * 32, "CPU B")}
    same = [_synthetic("bicubic", "Bicubic", "Set5", 2, i, 30, run="1" * 32) for i in "ab"]
    data = build_report_data(same, runs=runs)
    assert data.sections[0].timing_notes == []
    mixed = same + [_synthetic("srcnn", "SRCNN", "Set5", 2, i, 31, run="2" * 32, device="cuda", jobs=4, repeat=5)
                    for i in "ab"]  # fmt: skip
    notes = build_report_data(mixed, runs=runs).sections[0].timing_notes
    text = " ".join(notes)
    assert "2 different machines" in text and "CPU A" in text and "CPU B (8 cores, GPU X)" in text
    assert "different devices (cpu: Bicubic; cuda: SRCNN)" in text
    assert "different concurrency (1 worker: Bicubic; 4 workers: SRCNN)" in text
    assert "median of 1 or 5 calls" in text
    row = build_report_data(mixed, runs=runs).sections[0].rows[1]
    assert "on cuda" in row.timing_words and "4 worker processes" in row.timing_words


def test_a_partial_set_shows_the_mean_of_its_good_images_marked_n_of_n(tmp_path):
    results = [_synthetic("bicubic", "Bicubic", "Set14", 3, img, 28.0) for img in _catalogued("Set14")]
    results += [_synthetic("aplus", "A+", "Set14", 3, img, 29.0, status="failed" if img == "zebra" else "ok")
                for img in _catalogued("Set14")]  # fmt: skip
    html = _write(tmp_path, results)
    row = _summary_row(html, "set14-x3", "A+")
    assert "29.00" in row and "(13/14)" in row and "best" not in row
    assert "best" in _summary_row(html, "set14-x3", "Bicubic"), "only complete rows are ranked"
    assert 'class="point partial"' in html, "drawn, hollow"


def test_pages_have_dark_mode_sorting_and_no_network(tmp_path):
    html = _write(tmp_path, _cell("bicubic", "Set5", 2, 30.0) + _cell("aplus", "Set5", 2, 31.0))
    assert "@media (prefers-color-scheme: dark)" in html
    assert 'class="per-image sortable"' in html and "aria-sort" in html
    for metric in ("PSNR (dB)", "SSIM", "seconds"):
        assert f"Set5 ×2, protocol matlab: {metric} per image" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_export_summary_and_publish_commands(tmp_path, data_dir, isolated_env):
    from tests.conftest import srbench_cli

    store_path = _bicubic_store(tmp_path, data_dir)
    env = {**isolated_env, "SRBENCH_DATA": str(data_dir)}
    out = srbench_cli("export", "--table", "summary", "-f", "latex", "-o", str(tmp_path / "s.tex"),
                      "--store", str(store_path), env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert r"\begin{tabular}" in (tmp_path / "s.tex").read_text()
    out = srbench_cli("export", "--table", "summary", "-f", "parquet", "-o", str(tmp_path / "s.pq"),
                      "--store", str(store_path), env=env)  # fmt: skip
    assert out.returncode == 1 and "latex, markdown, csv" in out.stderr
    site = tmp_path / "site"
    out = srbench_cli("publish", str(site), "--store", str(store_path), "--crop", "baby:10,10,40,40", env=env)
    assert out.returncode == 0, out.stderr
    for name in ("index.html", "reproduce.html", "results.csv", "results.parquet", "results.json", "summary.tex",
                 "summary.md", "summary.csv", ".nojekyll"):  # fmt: skip
        assert (site / name).is_file(), name
    html = (site / "index.html").read_text()
    figures = list((site / "figures").iterdir())
    assert figures and "data:image" not in html and 'src="figures/' in html
    assert "x=10, y=10, 40×40, as asked" in html
    reproduce = (site / "reproduce.html").read_text()
    assert "srbench run -m bicubic -d Set5 -s 2" in reproduce
    import json

    rows = json.loads((site / "results.json").read_text())["results"]
    assert len(rows) == 5 and rows[0]["protocol"] == "matlab"
    out = srbench_cli("report", "-o", str(tmp_path / "rep"), "--store", str(store_path), "--crop", "nope:1,1,20,20", env=env)
    assert out.returncode == 0 and "--crop nope:1,1,20,20: no result for that image" in out.stderr


def test_the_per_image_latex_prints_images_as_rows_and_compiles(tmp_path):
    import shutil
    import subprocess

    from srbench.report.tables import ROWS_PER_TABLE, image_tables, image_tables_latex
    from srbench.results import results_frame

    images = [f"img_{i:03d}" for i in range(ROWS_PER_TABLE + 5)]
    rows = [_synthetic(m, label, "BSD100", 3, image, base + i * 0.01)
            for m, label, base in (("bicubic", "Bicubic", 27.0), ("aplus", "A+", 28.0))
            for i, image in enumerate(images)]  # fmt: skip
    rows.append(_synthetic("bicubic", "Bicubic", "Set5", 3, "baby", 33.0))
    tables = image_tables(results_frame(rows), ["bicubic", "aplus"])
    assert [(t.dataset, len(t.rows)) for t in tables] == [("Set5", 1), ("BSD100", ROWS_PER_TABLE + 5)]
    text = image_tables_latex(tables, ["run abcdefgh: somewhere"])
    assert "% run abcdefgh: somewhere" in text and "Ssim" not in text
    assert r"img\_000 & 27.00/0.9000 & \textbf{28.00}/0.9000 \\" in text
    assert "(part 2 of 2)" in text and text.count("Average") == 2
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed: the LaTeX was checked as text only")
    (tmp_path / "images.tex").write_text(text)
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "images.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]


def test_the_automatic_region_is_where_outputs_differ_else_where_they_are_wrong():
    import numpy as np

    from srbench.report.figures import choose_region

    rng = np.random.default_rng(1)
    base = rng.normal(128, 10, (120, 160))
    other = base.copy()
    other[70:100, 20:50] += rng.normal(0, 40, (30, 30))  # the methods disagree here
    x, y, w, h = choose_region([base, other], scale=3, side=30)
    assert (x, y, w, h) == (20, 70, 30, 30)
    # Identical outputs: where they are furthest from the reference, not the top-left corner.
    reference = base.copy()
    reference[10:40, 100:130] += 50
    assert choose_region([base, base.copy()], scale=3, side=30, reference=reference) == (100, 10, 30, 30)
    # The square stays inside the scored area (scale pixels off every border).
    x, y, w, h = choose_region([base], scale=4, side=200)
    assert x >= 4 and y >= 4 and x + w <= 156 and y + h <= 116


def test_every_shown_method_has_its_description_and_paper(tmp_path):
    html = _write(tmp_path, _cell("anr", "Set5", 2, 35.0) + [_synthetic("gone_plugin", "Gone", "Set5", 2, "baby", 30.0)])
    methods = _between(html, "methods", "sources")
    assert "Anchored Neighborhood Regression (Timofte et al., ICCV 2013)." in methods
    assert "R. Timofte, V. De Smet, L. Van Gool, Anchored neighborhood regression" in methods
    assert "Gone</td>" in methods and "not registered now" in methods
