"""What a reader must know beside some of the numbers: one row per disclosure, no HTML.

A disclosure applies to some methods at some scales, on every dataset. The report puts its
text in a footnote beside those methods' numbers (summary and per-image tables) and a remark
beside their artifacts in the trained-artifacts table. A disclosure with ``below`` is a
finding, not a standing fact: it is shown only where the stored results have the method's
mean PSNR below that other method's on the same dataset and scale, so it goes away by itself
once the numbers change (a network retrained until it is no longer below).

Text placeholders (``str.format`` fields), filled by :mod:`srbench.report.data`:
``{label}``, ``{dataset}``, ``{scale}``, ``{psnr}`` (this method's mean, 2 decimals) and,
with ``below``, ``{other}``, ``{other_psnr}``; ``{training}`` and ``{other_training}`` describe
how each method's artifact at that scale was trained, read from its shipped manifest
(:func:`~srbench.report.provenance.summarise_manifest`), never written here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DISCLOSURES", "Disclosure"]


@dataclass(frozen=True)
class Disclosure:
    """One disclosure.

    Attributes
    ----------
    key : str
        A stable name (tests and anchors use it).
    methods : tuple of str
        Method names it applies to; variants (``anr[neighborhood=20]``) share their method's.
    scales : tuple of int
    text : str
        The footnote, with the placeholders above.
    below : str
        A method name: show only where this method's mean PSNR is below that method's on the
        same dataset and scale. Empty: always shown.
    artifact_remark : str
        A shorter line for the trained-artifacts table; ``{sections}`` lists the dataset x
        scale sections where the disclosure was shown.
    """

    key: str
    methods: tuple[str, ...]
    scales: tuple[int, ...]
    text: str
    below: str = ""
    artifact_remark: str = ""


DISCLOSURES: tuple[Disclosure, ...] = (
    Disclosure(
        key="x2-pca-dimensions",
        methods=("ksvd", "ne_nnls", "ne_lle", "gr", "anr", "aplus"),
        scales=(2,),
        text=(
            "The ×2 dictionary these methods share keeps 29 PCA dimensions. The learn_dict.m "
            "rule keeps 28 on our T91; 29 was chosen with the Set5 ×2 table of the SRCNN paper "
            "in view (with 28, NE+NNLS fell 0.15 dB short of it), so these ×2 numbers are not "
            "blind to Set5. ×3 and ×4 follow the rule."
        ),
        artifact_remark="29 PCA dimensions, chosen with the Set5 ×2 table in view (see the ×2 notes).",
    ),
    Disclosure(
        key="srcnn-955-under-trained",
        methods=("srcnn_955",),
        scales=(2, 3, 4),
        below="srcnn",
        text=(
            "{label} ×{scale} is below {other} (9-1-5) on {dataset} ({psnr} vs {other_psnr} dB), "
            "the opposite of the paper's finding that the larger filter helps: its network is "
            "under-trained ({training}; {other} ×{scale}: {other_training})."
        ),
        artifact_remark="under-trained: below {other} (9-1-5) on {sections}.",
    ),
)
