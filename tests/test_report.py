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
    # Where the numbers were measured: the run stored with them.
    with ResultStore(store_path) as store:
        (run,) = store.runs().values()
    setup = html[html.index('id="setup"'):]
    assert run.id[:8] in setup and f"{run.cpu} ({run.cores} logical cores)" in setup
    assert f"numpy {run.libraries['numpy']}" in setup


def test_empty_store_renders(tmp_path):
    index = write_report(tmp_path / "rep", store_path=tmp_path / "empty.sqlite")
    assert "no results yet" in index.read_text()


def _result(method, label, scale, artifact, image="baby"):
    from srbench.store import Result

    return Result(method=method, label=label, dataset="Set5", image=image, scale=scale,
                  psnr=30.0, ssim=0.9, seconds=0.1, device="cpu", protocol="matlab",
                  artifact_hash=artifact, key=f"{method}-{scale}-{artifact}-{image}")


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
    section = html[html.index('id="artifacts"'):html.index('id="setup"')]
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
