"""Published numbers to compare against, with their source and protocol.

Every CSV file here holds the numbers of one paper table, as the paper prints them, and
:data:`TABLES` says which paper and table that is, how the paper measured (its protocol) and
where the numbers were checked. Nothing here is computed from images: a number is only worth
its source, so each one can be traced to the text it was copied from.

A row is one ``(dataset, image, scale, method)`` cell. ``image`` names an image for a
per-image value; it is empty for a dataset mean. ``method`` is srbench's label for the
method the paper ran (``paper_label`` keeps the paper's own column name, because the mapping
is itself a claim: Kim et al.'s "SRCNN" column, for instance, is the 9-5-5 network, so it is
filed under "SRCNN 9-5-5").

Several papers print the same cell, often with different numbers (their protocols, test
images or model versions differ). All of them are kept; for every dataset-mean cell exactly
one row says ``compare = yes`` with its reason, and that is the value a report puts beside
ours (:func:`references_for`). The choice follows one order:

1. the SRCNN ECCV 2014 tables, where they have the cell: their protocol is the one srbench
   reproduces image by image;
2. Kim et al.'s DRCN table (CVPR 2016), checked against the authors' own LaTeX; their
   evaluation code makes the LR image from the rounded luminance in floating point and
   shaves ``scale`` pixels, as srbench does. VDSR (same authors, same code) prints the same
   numbers but was only seen through third-party transcriptions, so it is kept, not compared;
3. otherwise the only source there is (SelfExSR's numbers, whose LR images are 8-bit RGB).

A later paper whose numbers repeat earlier papers' (ESRGAN) is never the compared one.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "DATASETS",
    "REFERENCES",
    "TABLES",
    "CellReferences",
    "PublishedValue",
    "Table",
    "compared_mean",
    "load_table",
    "published",
    "published_means",
    "references_for",
]

#: The dataset names the CSV files may use: srbench's catalog names, whatever a paper calls
#: the set ("B100", "BSD 100" and "BSDS100" are all BSD100 here).
DATASETS = ("Set5", "Set14", "BSD100", "Urban100")

_COMPARE = {"yes": True, "no": False, "": None}


@dataclass(frozen=True)
class Table:
    """One paper table: its citation, its protocol and where its numbers were checked.

    Attributes
    ----------
    filename : str
        The CSV file in this package holding the table's numbers.
    authors, title, venue : str
    year : int
    table : str
        Which table of the paper (or which part of it) the numbers come from.
    protocol : str
        How the paper measured: degradation, colour channel, border shave, metric code.
    notes : str
        Training data or model differences from srbench's methods of the same label, and
        anything else a reader comparing with our numbers should know.
    verified : str
        The text each number was checked against, and what of it could not be checked.
    summary : str
        One line for a report's list of sources.
    url : str
        Where the source text can be read.
    """

    filename: str
    authors: str
    title: str
    venue: str
    year: int
    table: str
    protocol: str
    notes: str
    verified: str
    summary: str
    url: str = ""

    @property
    def citation(self) -> str:
        """``Authors, Title, Venue Year, table``."""
        return f"{self.authors}, {self.title}, {self.venue} {self.year}, {self.table}"


@dataclass(frozen=True)
class PublishedValue:
    """One published number: a per-image value, or a dataset mean when ``image`` is empty.

    Attributes
    ----------
    dataset, image : str
    scale : int
    label : str
        srbench's label of the method.
    psnr : float
    seconds : float or None
        The paper's running time, where it prints one (on the paper's own machine).
    source : str
        The table's one-line summary (:data:`REFERENCES`).
    ssim : float or None
    table : str
        The CSV file the value comes from (a key of :data:`TABLES`).
    paper_label : str
        The paper's own name for the method.
    compare : bool or None
        For a dataset mean: whether this is the value a report compares with.
    reason : str
        Why it is, or is not, the compared value.
    """

    dataset: str
    image: str
    scale: int
    label: str
    psnr: float
    seconds: float | None
    source: str
    ssim: float | None = None
    table: str = ""
    paper_label: str = ""
    compare: bool | None = None
    reason: str = ""

    @property
    def is_mean(self) -> bool:
        """Whether this is a dataset mean rather than one image's value."""
        return self.image == ""

    @property
    def reference(self) -> Table | None:
        """The table the value comes from: citation, protocol, notes, verification."""
        return TABLES.get(self.table)


@dataclass(frozen=True)
class CellReferences:
    """Every published mean for one ``(dataset, scale, label)`` cell.

    Attributes
    ----------
    dataset : str
    scale : int
    label : str
    values : tuple of PublishedValue
        Each source's mean, in :data:`TABLES` order.
    compared : PublishedValue or None
        The one a report puts beside our number; None when no paper prints the cell.
    """

    dataset: str
    scale: int
    label: str
    values: tuple[PublishedValue, ...]
    compared: PublishedValue | None

    @property
    def disagree(self) -> bool:
        """Whether the sources print different PSNRs for this cell."""
        return len({v.psnr for v in self.values}) > 1


_KIM_PROTOCOL = (
    "Authors' evaluation code (github.com/kjw0612/rcn: methods/Bicubic.m, SRCNN.m, Aplus.m, "
    "utils/compute_diff.m): HR = luminance of MATLAB rgb2ycbcr on the 8-bit image (rounded), "
    "modcrop; LR = imresize(Y/255, 1/s, 'bicubic') in single precision, not rounded; the "
    "bicubic enlargement fed to Bicubic and SRCNN is clipped to [16, 235]/255; outputs saved "
    "as 8-bit PNG; PSNR and SSIM (Wang's ssim_index) on the luminance after shaving s pixels "
    "from each border. This is srbench's matlab protocol except for the [16, 235] clip and "
    "single precision."
)
_KIM_NOTES = (
    "The 'SRCNN' column is the 9-5-5 network trained on ImageNet (their SRCNN.m loads "
    "'SRCNN/9-5-5(ImageNet)/x{s}.mat' and filters with replicate padding), so it is filed "
    "under srbench's 'SRCNN 9-5-5', which is trained on T91 only. A+ is Timofte's released "
    "code (1024 atoms, 2048 neighbours, 5 million training samples). The paper calls "
    "BSD100 'B100'."
)

#: Every published table shipped with srbench, by file name, in the order sources are
#: listed (the SRCNN ECCV 2014 per-image table first, as before).
TABLES: dict[str, Table] = {
    t.filename: t
    for t in (
        Table(
            filename="srcnn_eccv2014.csv",
            authors="C. Dong, C. C. Loy, K. He, X. Tang",
            title="Learning a Deep Convolutional Network for Image Super-Resolution",
            venue="ECCV",
            year=2014,
            table="per-image PSNR and time tables (Set5 x2/x3/x4, Set14 x3)",
            protocol=(
                "MATLAB: luminance of rgb2ycbcr, modcrop, LR = imresize(Y, 1/s, 'bicubic') in "
                "floating point, shave s pixels; the protocol srbench reproduces"
            ),
            notes="Times are the paper's, on a 2014 desktop CPU.",
            verified=(
                "Per-image rows as shipped before; they match the tables reproduced in "
                "S.-H. Tsang's SRCNN review (../shared/reference/srcnn_review.txt)."
            ),
            summary=(
                "Dong et al., Learning a Deep Convolutional Network for Image Super-Resolution, "
                "ECCV 2014, per-image table (MATLAB protocol; times on a 2014 desktop CPU)"
            ),
        ),
        Table(
            filename="srcnn_eccv2014_means.csv",
            authors="C. Dong, C. C. Loy, K. He, X. Tang",
            title="Learning a Deep Convolutional Network for Image Super-Resolution",
            venue="ECCV",
            year=2014,
            table="'average' rows of the per-image PSNR and time tables (Set5 x2/x3/x4, Set14 x3)",
            protocol="As srcnn_eccv2014.csv.",
            notes=(
                "Times are the paper's averages on a 2014 desktop CPU. SC on Set5 x3: the "
                "printed average is 31.42 dB but the five printed per-image values average "
                "31.24 dB; both are kept as printed."
            ),
            verified=(
                "Copied from the 'average' rows of the tables reproduced in S.-H. Tsang's SRCNN "
                "review (../shared/reference/srcnn_review.txt), the same reproduction the "
                "per-image rows match; the paper PDF itself was not available to check."
            ),
            summary=(
                "Dong et al., Learning a Deep Convolutional Network for Image Super-Resolution, "
                "ECCV 2014, average rows of the per-image tables (MATLAB protocol)"
            ),
        ),
        Table(
            filename="drcn_cvpr2016_benchmark.csv",
            authors="J. Kim, J. K. Lee, K. M. Lee",
            title="Deeply-Recursive Convolutional Network for Image Super-Resolution",
            venue="CVPR",
            year=2016,
            table=(
                "benchmark table 'Average PSNR/SSIMs for scale factor x2, x3 and x4 on datasets "
                "Set5, Set14, B100 and Urban100' (LaTeX label tbl:benchmark)"
            ),
            protocol=_KIM_PROTOCOL,
            notes=_KIM_NOTES,
            verified=(
                "Character for character against the authors' LaTeX, "
                "github.com/kjw0612/rcn paper/DRCN_CVPR_ID976.tex at commits 02f90179 and "
                "ea921f90 (identical tables). That file is the submission draft; the "
                "camera-ready PDF was not available, but VDSR's transcribed table prints the "
                "same Bicubic, A+ and SRCNN numbers."
            ),
            summary=(
                "Kim, Lee, Lee, Deeply-Recursive Convolutional Network for Image "
                "Super-Resolution (DRCN), CVPR 2016, benchmark table (MATLAB bicubic, "
                "luminance, shave = scale)"
            ),
            url="https://github.com/kjw0612/rcn",
        ),
        Table(
            filename="vdsr_cvpr2016_table3.csv",
            authors="J. Kim, J. K. Lee, K. M. Lee",
            title="Accurate Image Super-Resolution Using Very Deep Convolutional Networks",
            venue="CVPR",
            year=2016,
            table=(
                "Table 3, 'Average PSNR/SSIM for scale factor x2, x3 and x4 on datasets Set5, "
                "Set14, B100 and Urban100' (Table 2 is the scale-factor experiment)"
            ),
            protocol=_KIM_PROTOCOL,
            notes=_KIM_NOTES,
            verified=(
                "The VDSR PDF was not available. Every value equals the authors' DRCN LaTeX "
                "(drcn_cvpr2016_benchmark.csv) and is attributed to VDSR by third-party "
                "transcriptions: the README tables of tyshiwo/DRRN_CVPR17 (Set5 Bicubic and "
                "SRCNN), of huangzehao's Super-Resolution.Benckmark ('results from papers of "
                "VDSR, DRCN, CSCN and IA'; Set5/Set14/B100), of an EDSR-PyTorch fork's 'result' "
                "table (all four sets) and of MoreMNAS (SRCNN x2). Their typos (Set5 "
                "Bicubic x2 SSIM 0.9929, A+ Set5 x3 32.59, A+ B100 x3 29.29) disagree with the "
                "other transcriptions and the LaTeX and were not taken. The table number "
                "comes from a review that names the VDSR table image 'VDSR-Table2' as the "
                "scale-factor experiment."
            ),
            summary=(
                "Kim, Lee, Lee, Accurate Image Super-Resolution Using Very Deep Convolutional "
                "Networks (VDSR), CVPR 2016, Table 3 (MATLAB bicubic, luminance, shave = scale)"
            ),
        ),
        Table(
            filename="selfexsr_cvpr2015_readme.csv",
            authors="J.-B. Huang, A. Singh, N. Ahuja",
            title="Single Image Super-Resolution from Transformed Self-Exemplars",
            venue="CVPR",
            year=2015,
            table=(
                "quantitative comparison (PSNR and SSIM of Bicubic, ScSR, SRCNN and A+ on Set 5, "
                "Set 14, Urban 100 x2/x4 and BSD 100), as published in the authors' repository"
            ),
            protocol=(
                "Authors' quant_eval/compute_difference.m: SR and HR converted with MATLAB "
                "rgb2ycbcr, luminance only, shave s pixels, PSNR on 8-bit values, SSIM with "
                "Wang's ssim_index. HR images cropped to a multiple of s; the LR test images are "
                "'generated with bicubic kernel downsampling' and distributed as RGB PNGs, so "
                "methods start from 8-bit RGB LR images, not srbench's floating-point luminance."
            ),
            notes=(
                "'ScSR' is Yang et al. TIP 2010 (srbench's SC); 'SRCNN' is the ECCV 2014 "
                "release (9-1-5), srbench's SRCNN (ours is trained on T91). Their Urban 100 x2 "
                "Bicubic (26.66 dB) is 0.22 dB below Kim et al.'s 26.88 dB; an open issue on the "
                "repository (jbhuang0604/SelfExSR#8) reports that the Urban 100 HR images in the "
                "SelfExSR download look like bicubic upscalings."
            ),
            verified=(
                "Character for character against the 'Quantitative comparisons' tables of "
                "github.com/jbhuang0604/SelfExSR README.md (commit 033bdd1c). The CVPR paper's "
                "own table was not available to check against; the README leaves A+ on Set 5 and "
                "Set 14 blank, so those cells are absent here."
            ),
            summary=(
                "Huang, Singh, Ahuja, Single Image Super-Resolution from Transformed "
                "Self-Exemplars (SelfExSR), CVPR 2015, authors' quantitative comparison "
                "(8-bit RGB LR images, luminance, shave = scale)"
            ),
            url="https://github.com/jbhuang0604/SelfExSR",
        ),
        Table(
            filename="esrgan_eccvw2018_supp_table2.csv",
            authors="X. Wang, K. Yu, S. Wu, J. Gu, Y. Liu, C. Dong, C. C. Loy, Y. Qiao, X. Tang",
            title="ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
            venue="ECCV Workshops",
            year=2018,
            table="supplementary Table 2 (x4; arXiv 1809.00219v2)",
            protocol=(
                "Caption: 'average PSNR/SSIM on Y channel'; x4 only; the steps are not stated."
            ),
            notes=(
                "Its SRCNN row (training data given as '291') is filed under SRCNN 9-5-5 because "
                "its Set5, BSD100 and Urban100 values equal Kim et al.'s 9-5-5 numbers; on Set14 "
                "it prints 27.50/0.7513 against Kim et al.'s 27.49/0.7503."
            ),
            verified=(
                "Against the arXiv text of the paper's supplementary Table 2 and the SRCNN row of "
                "the table in the authors' README (github.com/xinntao/ESRGAN)."
            ),
            summary=(
                "Wang et al., ESRGAN, ECCV Workshops 2018, supplementary Table 2 (x4, luminance)"
            ),
            url="https://arxiv.org/abs/1809.00219",
        ),
    )
}

#: One line per source, by file name, for a report's list of sources.
REFERENCES: dict[str, str] = {name: table.summary for name, table in TABLES.items()}


def _number(text: str, column: str, filename: str, line: int) -> float | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{filename} line {line}: {column} {text!r} is not a number") from None


def load_table(filename: str) -> tuple[PublishedValue, ...]:
    """Read one shipped table.

    Parameters
    ----------
    filename : str
        A key of :data:`TABLES`.

    Returns
    -------
    tuple of PublishedValue

    Raises
    ------
    KeyError
        If ``filename`` is not registered in :data:`TABLES`.
    ValueError
        If a row has no PSNR, a value that is not a number or a ``compare`` other than
        yes, no or empty.
    """
    table = TABLES[filename]
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    values = []
    # Line 1 is the header; numbering rows from 2 makes error messages match an editor.
    for line, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        psnr = _number(row["psnr"], "psnr", filename, line)
        if psnr is None:
            raise ValueError(f"{filename} line {line}: no psnr")
        compare = row.get("compare", "").strip().lower()
        if compare not in _COMPARE:
            raise ValueError(
                f"{filename} line {line}: compare must be yes, no or empty, got {compare!r}"
            )
        values.append(
            PublishedValue(
                dataset=row["dataset"],
                image=row["image"],
                scale=int(row["scale"]),
                label=row["method"],
                psnr=psnr,
                seconds=_number(row.get("seconds", ""), "seconds", filename, line),
                source=table.summary,
                ssim=_number(row.get("ssim", ""), "ssim", filename, line),
                table=filename,
                paper_label=row.get("paper_label", "") or row["method"],
                compare=_COMPARE[compare],
                reason=row.get("reason", ""),
            )
        )
    return tuple(values)


@functools.cache
def _all_values() -> tuple[PublishedValue, ...]:
    # The files ship with the package and never change at run time: read them once.
    return tuple(value for filename in TABLES for value in load_table(filename))


def published() -> list[PublishedValue]:
    """Every per-image published value shipped with srbench.

    Returns
    -------
    list of PublishedValue
        Values whose ``image`` is set; dataset means are in :func:`published_means`.
    """
    return [value for value in _all_values() if not value.is_mean]


def published_means(
    dataset: str | None = None, scale: int | None = None, label: str | None = None
) -> list[PublishedValue]:
    """Published dataset means, from every source, optionally for one cell.

    Parameters
    ----------
    dataset : str, optional
        Dataset name, case-insensitive ("bsd100" finds "BSD100").
    scale : int, optional
    label : str, optional
        srbench's method label, exactly ("SRCNN 9-5-5").

    Returns
    -------
    list of PublishedValue
        In :data:`TABLES` order, then file order.
    """
    return [
        value
        for value in _all_values()
        if value.is_mean
        and (dataset is None or value.dataset.lower() == dataset.lower())
        and (scale is None or value.scale == scale)
        and (label is None or value.label == label)
    ]


def references_for(dataset: str, scale: int, label: str) -> CellReferences:
    """Every published mean for one cell, and the one a report compares with.

    Parameters
    ----------
    dataset : str
        Dataset name, case-insensitive.
    scale : int
    label : str
        srbench's method label.

    Returns
    -------
    CellReferences
        ``values`` empty and ``compared`` None when no paper prints the cell.

    Raises
    ------
    ValueError
        If the shipped tables mark more than one value of the cell, or none, as compared
        (the tests keep this from happening).
    """
    values = tuple(published_means(dataset, scale, label))
    chosen = [value for value in values if value.compare]
    if values and len(chosen) != 1:
        raise ValueError(
            f"{dataset} x{scale} {label}: {len(chosen)} published means are marked compare=yes, "
            f"expected exactly one ({', '.join(v.table for v in values)})"
        )
    name = values[0].dataset if values else dataset
    return CellReferences(name, scale, label, values, chosen[0] if chosen else None)


def compared_mean(dataset: str, scale: int, label: str) -> PublishedValue | None:
    """The published mean a report puts beside ours for one cell, if any paper prints it.

    Parameters
    ----------
    dataset : str
        Dataset name, case-insensitive.
    scale : int
    label : str
        srbench's method label.

    Returns
    -------
    PublishedValue or None
    """
    return references_for(dataset, scale, label).compared
