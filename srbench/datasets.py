"""The dataset catalog and where images come from.

Sources, in order: ``--data-dir`` / ``SRBENCH_DATA`` (one sub-folder per dataset), the user
cache, then a download of the dataset's archive from the Hugging Face hub, verified against
the pixel hashes pinned here. Only high-resolution images are used: the protocol makes LR.

A catalogued name stands for pixels, not for a file: an archive is matched image by image by
pixel hash (its file names are ignored), a local folder whose names differ is matched the same
way, and a local file that has a catalogued name but other pixels is refused when it is read,
with what differs. A result on other pixels would be compared with the published numbers as if
it were the same image.
"""

from __future__ import annotations

import difflib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srbench.imageio import IMAGE_SUFFIXES, ImageError, luminance, pixel_hash, read_image, write_image

__all__ = [
    "CATALOG",
    "SUITES",
    "Dataset",
    "DatasetError",
    "DatasetImage",
    "DatasetSpec",
    "cache_dir",
    "list_datasets",
    "load_dataset",
    "local_copy",
    "suite_datasets",
]


class DatasetError(Exception):
    """A dataset that cannot be found, fetched or verified."""


@dataclass(frozen=True)
class DatasetSpec:
    """A catalogued dataset: image names with the SHA-256 of their decoded pixels.

    Attributes
    ----------
    hashes : dict
        Image name -> :func:`~srbench.imageio.pixel_hash` of the catalogued pixels.
    shapes : dict
        Image name -> array shape, ``(H, W)`` (grayscale) or ``(H, W, 3)``. Not needed to
        match anything (the hash does that); it lets a mismatch say what differs (another
        crop, a grayscale image stored as RGB) instead of only that something does.
    """

    name: str
    hashes: dict[str, str]
    hf_repo: str
    hf_archive: str
    citation: str
    description: str
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def names_text(self) -> str:
        """The image names for a message: all of them, or the first and last of a long list.

        A line that lists 100 names (``img_001, img_002, ...``) hides the rest of the message.
        """
        names = list(self.hashes)
        if len(names) <= 14:
            return ", ".join(names)
        return f"{len(names)} images, {names[0]} ... {names[-1]}"


#: Named groups of catalogued sets, for ``srbench bench --suite``.
SUITES: dict[str, tuple[str, ...]] = {
    # What the SRCNN / ANR / A+ comparison tables report: what `make bench` runs.
    "paper": ("Set5", "Set14"),
    # The four sets of every SR paper since 2015.
    "standard": ("Set5", "Set14", "BSD100", "Urban100"),
}


def suite_datasets(name: str) -> list[str]:
    """The datasets of a suite (case-insensitive).

    Raises
    ------
    DatasetError
        For an unknown suite, naming the suites and their datasets.
    """
    suite = SUITES.get(name.strip().lower())
    if suite is None:
        close = difflib.get_close_matches(name.strip().lower(), list(SUITES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        known = " or ".join(f"{key} ({', '.join(sets)})" for key, sets in SUITES.items())
        raise DatasetError(f"unknown suite {name!r}; {hint}choose {known}")
    return list(suite)


CATALOG: dict[str, DatasetSpec] = {
    "set5": DatasetSpec(
        name="Set5",
        hashes={
            "baby": "12b76465e821bb19eb49dbda4eaa4807b51d4cd9e746157c6407fc11a177c3f5",
            "bird": "a8b0a6677ab489ca9b43cdde1443ec372e9551f45e2817b1a97e2877b37bd949",
            "butterfly": "fae60034ac005cd65a34891b8628dbcc08e78db700a0d877b7a5a14c777c40a7",
            "head": "78143f48e8a04476d4e8a52472e47d4a163591ea70a9efc3375d283cf95fa1d1",
            "woman": "6a343209b9ee6302a7f2134b6a6fbeeb13e910d2ae84e1c9de1c005c9c2f6d49",
        },
        hf_repo="eugenesiow/Set5",
        hf_archive="data/Set5_HR.tar.gz",
        citation="Bevilacqua et al., BMVC 2012",
        description="5 images (baby, bird, butterfly, head, woman)",
        shapes={
            "baby": (512, 512, 3), "bird": (288, 288, 3), "butterfly": (256, 256, 3), "head": (280, 280, 3),
            "woman": (344, 228, 3),
        },
    ),
    "set14": DatasetSpec(
        name="Set14",
        hashes={
            "baboon": "a0d807ede504d436671f01143a61ce4e3811a9d41ebc517425ffab9ca84ba13e",
            "barbara": "be54f5ea857e83b5a8535c4aa8c2b51f11ac6570962f7302644522d0c13942e0",
            "bridge": "218ea8448dc7a4d11de368f1e5bfdb0c390f777ee996a833b388acabb9521a32",
            "coastguard": "5b79dbf3c9b5837e907e43d453139192a25d8a1f8ed0d9f29f5ee74d463181c1",
            "comic": "add2d47588cc8a2f027b8b2c76de892a624ad36d3acd9269aaa18f44dc28454a",
            "face": "fd232ee8065f4e0dcbcff8f2e3f7f690bff0073fc8c26bf55f511c992f1aecdb",
            "flowers": "9e787e965882e29b0d68bd744e1fbb0123672fee8e4e80347a015ca9f697016f",
            "foreman": "41beaaa4e1e1a323575764dabcea0a4923cad70876bd36191bf4c7bee2460b37",
            "lenna": "065eb5023e6c7c2519ff9a9ca7904d4e173c0696375a577707ab36a18c6ae9d2",
            "man": "59119c6dde371aeb03b2203a057047ab84e0fe451c7406046df5e92a212b4b39",
            "monarch": "6d1b37d42eff8328a93513a3ab2725b8f00c470b439f4f7f29c864ab21434018",
            "pepper": "a81f0a94cc02b69ef0bfd3d51960f4e0cbedf743b7efb97061e18b0fb5ebea84",
            "ppt3": "a771bdea5226ca0744198a11d69b16b7df126bb6822e2c30fe92fbb86fc09383",
            "zebra": "2c05de82b186cc7a7a9aab22f53beab7aa3110d857b362d8b11cef4f71fb5e77",
        },
        hf_repo="eugenesiow/Set14",
        hf_archive="data/Set14_HR.tar.gz",
        citation="Zeyde et al., Curves and Surfaces 2010",
        description="14 images (baboon ... zebra; bridge is 8-bit grayscale)",
        shapes={
            "baboon": (480, 500, 3), "barbara": (576, 720, 3), "bridge": (512, 512), "coastguard": (288, 352, 3),
            "comic": (361, 250, 3), "face": (276, 276, 3), "flowers": (362, 500, 3), "foreman": (288, 352, 3),
            "lenna": (512, 512, 3), "man": (512, 512, 3), "monarch": (512, 768, 3), "pepper": (512, 512, 3),
            "ppt3": (656, 529, 3), "zebra": (391, 586, 3),
        },
    ),
    # The 100 test images of BSD300 as the SR papers use them since A+ and SelfExSR
    # (480x321 or 321x480, not the 481x321 originals): pinned to the copies in the shared
    # datasets folder, whose bicubic baseline gives the published means.
    "bsd100": DatasetSpec(
        name="BSD100",
        hashes={
            "img_001": "94cb7e217863b2afb1abc88ead1af7ad2b72c5b3b2a80a9c8bd8729571673ba8",
            "img_002": "32c98bd5bf06b0b1938c16cd9438bc2e6c8f69630b0ca4ce1f3c8d497c23e06e",
            "img_003": "11a35041bed51cc063c92eb66ee8d3f2384ec42c4f2b73e20dda32dac99fe1ff",
            "img_004": "eb706bac3f647e99c06b2f4650e71109767c6ab648a444c24dea647a68314788",
            "img_005": "921c95144c75b0e639d979aa2e6c5fab3291a0e222fc994c501aaed3ca60752d",
            "img_006": "29be6e1d7b635b6e8ab554a04db5202e94db3d7ba3d3698bd9bdc6fba6bf43c5",
            "img_007": "1d715064602342ccc971242c64f11d2b0eea155e3434115fa77509075c491777",
            "img_008": "7b832924d0d022bda3e4508ce6804f039d7662771120052e32a265c0699f0a9b",
            "img_009": "bfd0a1b6220b7d4dcebc7f6bccfec220863debd9b791acd30d30670eb63d24a7",
            "img_010": "476164469482cf1fdbb6d9f50fcd49df23d1bb394c4d7aecec59140ce5ae0f2d",
            "img_011": "11c34029030d0f56b340b8bf88dcb374aac4d55999d2db8f1ca213ab97c58238",
            "img_012": "4dfebed994e43243c2949fc28b19d3532aef0e1acc534e2a45c6f668bf5976b8",
            "img_013": "775b4212e2af3ec0db7c5aa90b5c49c6f40e91dc86f446fc651f5e7142b73510",
            "img_014": "32423026e094eb8ac559eb030332aa14ecc90901bf67d359714ed994d7cd0c1f",
            "img_015": "c8db2555c227cd17e1a50edb0b50c073a7699432d8d9362df451f3bdcce70080",
            "img_016": "1f8ad32738322b9a078766648d7cbbf12179aac4544d611a7eeadc54f1f102cc",
            "img_017": "600e2f0da8e7cf34c16ee0277d4c620ae9bb4e7a3ecc0d1cc3e5104fa86685ab",
            "img_018": "3e67aeace81ee04e642ab8b04256292bdfc5b0fbfb070ce0521ffcf93c418ed2",
            "img_019": "eafd7dc01111cfda5896c533d58815dbbd51201911a61635a8feea3129524f12",
            "img_020": "317bbec3e3f89a94df85b5925f6f355b2b572c4f51cf40fabef02e84c959f5a9",
            "img_021": "cd93933d601b2d701d3616d33ecc3332081872129cc86e11d41e70147636c6b5",
            "img_022": "2a07c8265800d4e9fc0bf4e51e5aef01d7c6bcc293b7589fac476fd1432f1c9f",
            "img_023": "53ee30a04d1b9fdb4330d33fe90364478c2da73a36f309ef84ff328a986ca25a",
            "img_024": "50a3a25918cba4dec2880c6e00ec1880dfc950a3a1d3a7d67f06dff96fa8fbec",
            "img_025": "866386590a2d7bbb442a1de8735e022e3df22fdce85a8de520686cf9da33e29a",
            "img_026": "7d1612520ea97c63757b40cc94a7840058f1f7f4c363728a670636925dc04b22",
            "img_027": "53c3d18fc2a0f59c8d517ee94ed4663585ac999570f9f749d88619afb898ca7d",
            "img_028": "ab5178d0896af4b64bdfc4962ef05a5649bbbcc5ffc33f2dfab0269e8d37bab6",
            "img_029": "93a1e150d466f501f93e321bdc01f0f771c101ac0ef1f860050254a4572ba3fd",
            "img_030": "3cbc9b091ce57707027f8b02e27c5e0a9ad5724dceb4ce93b64d5d264d4e2b54",
            "img_031": "9ed301d8382161f446d54c84d730e6eedd428adcfe4546a3945b949aa3054358",
            "img_032": "930ebd0c8b828786b0440c635dfe8c0b74a9d3ee8499604aa8657646ca866da7",
            "img_033": "ff5096b1a4bd56840a50aba1e2f79e8840aeaef85018d3a6b512017855ef6f69",
            "img_034": "486fed12bc9a4ded6471a673c57a9e0a11e34ff90de56d355f953e9ae41981e7",
            "img_035": "194990bab315416704cbb1b0182791542f1194f441cc774e7b813da0fbe5a21a",
            "img_036": "19141be1c720d9848363d00b294537bc54efeeb1e9f9c6169bd4fe6b719eeb2f",
            "img_037": "f6a1c22bd53fcb6338b254bbe02c7c40f073e317a64986d5de12f33b5f84ab84",
            "img_038": "a923437680668efd56dbf00d0ec67d201d28386f1817d4c377576f89e99f0f3e",
            "img_039": "77125dddb6a9942458027e22f79328fb6de03c7a2ba57da52e64c3454bf1c0a5",
            "img_040": "aeb43d2024b229d916baae352c1f78a3887f7b52551fec7f1af5c81f0784c68d",
            "img_041": "89740eb92502c5eea09f61546a2dbccfbca9edc8238e82298d66127deb7e69c0",
            "img_042": "50de71a8483b49da024b8a085b7efb821cd096180d20a679ee694ec25e611d80",
            "img_043": "adf5f226a559f4f1d24877b5b9ea2868e1181b674f8490dbe5ee66603c8756bd",
            "img_044": "d331e8ecd6bc36f320858f06aac2e33d226fe399da3ccc451e4773fbf635db6f",
            "img_045": "2df475e3bac4ca23374eebe062cbb60e242564e084be2d047acbed878d5a67f2",
            "img_046": "195f02d383e11f7f284e7d6ff56334fec2e2e02e5a35d6803423657f0fcbe952",
            "img_047": "2879b4933e923e14ab8e29d242ea38fb95a0485e7fa70a9daf63b5adf95d0f6b",
            "img_048": "eb651bfaf635212b37f9ca8838b4cdcb8af71f27e4b8512973bf82ca33f727b3",
            "img_049": "79f68fe67208394c6cbdfae718ba8faeee72063fe738ea81af19f631ca87a215",
            "img_050": "9f7dfe3cd93e401576ddb454012a5fc9815be861b05c114ae5f0015ad2fffd94",
            "img_051": "0205fca803d85714a68d9c89663bf7d13afcc0d086ed4fbbfbb40a360c1e6e60",
            "img_052": "0e3b2bd19e3679a46fa4b0d2c934e9b94656d4481499fd8b6856993c39764e0a",
            "img_053": "e1ffb2bebc517fb8b982647d2733f269bb7929d452f80dfd9e3c7315b5ab9845",
            "img_054": "d12de745064611bdbbab72ec56e991bceae14fb7e050fccc0421511c40f41e4a",
            "img_055": "e07b687a074b02c21f37d646458353d0ba4289325b745e1095fc4b4616cf48d9",
            "img_056": "afc045fdc307f3ae34886410ab35a94b4d433ed7145206468bc2203748a0ebfd",
            "img_057": "1818af1c196365962e5d7fec654020d748aa5bbffc716d8480d46dc8eb4ff8b6",
            "img_058": "8de70be5fb4762762a5e5a8f35472e3e88c77841924b2212a5cceb4602b6833a",
            "img_059": "47e66f670906acc1b206dd1069cc34861b4b955922d07e7f67f2f670e7d74b88",
            "img_060": "9e50511a47a60695e9555f79e49ff82f33e004e8335a8ff9c49608e8f5c57874",
            "img_061": "8e37f7f3b81800ffc39fb5eb5f19a2edc96a0164c690377f6302e684a763e87f",
            "img_062": "16c478191cb2f9170f6966834021b0d84dcd54c1509be7e05cce92b91ce709b5",
            "img_063": "4c1d3842422eabd6864d5e18019f1bda70839ea6cff7cfec917e6c3a3239a368",
            "img_064": "7e70c24736dfafce7817139e40068b0ba6fb9542e1adcdcb1e3746784fbb80ad",
            "img_065": "e6d842fa2020364a780f73be8fa7bab93e992873cea2714ed992c158765359be",
            "img_066": "117ce9fecb65f530de08f6239c31484e42e5b4e7139bbde52e30714e369c873a",
            "img_067": "d6f940f05d02a17700ecf48dd8f8f927ca3193684a0fc52986cf3e065ad8dbc3",
            "img_068": "3fafb9085a4f4728b270dcf6182a6fbec36c9dcd0bfcb66e0c9e332aa3a93f66",
            "img_069": "d08f324cf2ba7afeab29c7d9706742f9c0aa715201128378d4ef6251ba0e2ca7",
            "img_070": "ae1ec911caadae659c8e637b5bc541d04a941baf787677adfa291cc2de3dd5ee",
            "img_071": "d6218a143a94ca5922276ccdf48b9d6f0aade6914fa6bda9f24650db937892bb",
            "img_072": "d425ac395a1ccc76d0a9bd87564c9c23bd3ca0de7617f1145104868362019a04",
            "img_073": "49fb9fb0897fe973033f0cccbc953ab1b3ae689a6d43930ec671600dc25e1db7",
            "img_074": "7b519b862c7210fe6ab6c39381d4631a845a132043de557de8599772d4d830c9",
            "img_075": "d98e8574ba6ccbe0c1ec18a2a3bf5d245c0f6c69db71ad56bf71e1a127403cb2",
            "img_076": "dd962604bff7301e973237e83662869cf5002757f93568d31f491f50843bde23",
            "img_077": "cb91999e76c362cc8455276230a245be1d34c790b66802c9969f6d146651bef7",
            "img_078": "974c63039fd74c925813e1c33fb4520b0c399a75d0a5835028236526aac4bcd9",
            "img_079": "8b05d8ad5d536e6fb49c72b1b6beeecceec019d0dd457c592c38c7920ad5e4b7",
            "img_080": "15d14242adf59a37723f39981543e2680f3cd1b3d7156d314b5b02978fb303ce",
            "img_081": "9fcab97c87a39613e59b264526058051bf1f35fc1d395a7ac015ae2c72d90183",
            "img_082": "9cd807e2679e37c9d114b21bbed67eba0262d9693778397b8da93d44ae95a7f4",
            "img_083": "cc6d95fc958782689a81ea0f7a24ffb715be80ab52216840e4f04f3063eea50b",
            "img_084": "eccece53177045159add810223a9a475837f410c7d43c80664cd25278abe9662",
            "img_085": "243e36a11c7b84e530d8e62aeb7cc2f6b581a228ce796102aaec40b0ca853e9d",
            "img_086": "38d298a186524ab1d93a4e688fddb187bbcdd2beb78c64d9088872dc90d75b43",
            "img_087": "8944718f50e150b0fd6d132780b7f9f7e55873cc9cbf7d4888ae87be7ec6f143",
            "img_088": "45b6dd8b7c6600721a7226e469cab041bec8b4920445dd7120831b7203c88188",
            "img_089": "151f0ad20fe63365a2d63b1306f5b12719ee8dc4ab868f31c02a0f489285ba94",
            "img_090": "477391f24afbb452103c46b1ae4e120fa4b75f8fd8f540205883af90eaad33ae",
            "img_091": "ed90aa2ca9dc60642905820d84501f956532f0c0fb3bd0ceae77e14a3cedf201",
            "img_092": "1ed89e4d678cf232fd7b6159fb798554efaa53b040accf731ad98e810732b1b1",
            "img_093": "c6d54a0fa18b34c8d6f1a13dc16247519e2a7a55f7dbc222cd8c12333a7cdb32",
            "img_094": "d989a9918b1ea4637b5877152ea6439be8392d13be423243a158896ba3e491b3",
            "img_095": "273659211ac3972dd230a99bbb3358b219d13e3dcf2658d09364ba255022848b",
            "img_096": "005e6e01d86a23817f6c7e92138e3719f58cbb726bbb0fce8ba7ee0b16cf7f7f",
            "img_097": "20799c4d143cd3bd04ad021fb4f24a07ebe8bae29dedaa54a205fa8c2af13b79",
            "img_098": "b4bc2cec9e7114d6fafa757f4ac993b9e9832ecd77b16101b8d49e3d2e6a02b8",
            "img_099": "00cd04c03cc2de7ead209fb89e4e14a34f0970ba186b1bb068b94becad30550d",
            "img_100": "98acf402337a175d192ddccb15bb867a59d1de6b6310a76ccc21462912e6f43e",
        },
        hf_repo="eugenesiow/BSD100",
        hf_archive="data/BSD100_HR.tar.gz",
        citation="Martin et al., ICCV 2001",
        description="100 images (img_001 ... img_100), 480x321 or 321x480",
        shapes={
            "img_001": (480, 321, 3), "img_002": (480, 321, 3), "img_003": (480, 321, 3), "img_004": (321, 480, 3),
            "img_005": (321, 480, 3), "img_006": (321, 480, 3), "img_007": (321, 480, 3), "img_008": (321, 480, 3),
            "img_009": (321, 480, 3), "img_010": (321, 480, 3), "img_011": (321, 480, 3), "img_012": (321, 480, 3),
            "img_013": (321, 480, 3), "img_014": (321, 480, 3), "img_015": (321, 480, 3), "img_016": (321, 480, 3),
            "img_017": (321, 480, 3), "img_018": (321, 480, 3), "img_019": (321, 480, 3), "img_020": (321, 480, 3),
            "img_021": (480, 321, 3), "img_022": (321, 480, 3), "img_023": (321, 480, 3), "img_024": (321, 480, 3),
            "img_025": (321, 480, 3), "img_026": (321, 480, 3), "img_027": (321, 480, 3), "img_028": (321, 480, 3),
            "img_029": (321, 480, 3), "img_030": (480, 321, 3), "img_031": (321, 480, 3), "img_032": (480, 321, 3),
            "img_033": (321, 480, 3), "img_034": (321, 480, 3), "img_035": (480, 321, 3), "img_036": (321, 480, 3),
            "img_037": (321, 480, 3), "img_038": (321, 480, 3), "img_039": (480, 321, 3), "img_040": (480, 321, 3),
            "img_041": (321, 480, 3), "img_042": (321, 480, 3), "img_043": (321, 480, 3), "img_044": (321, 480, 3),
            "img_045": (321, 480, 3), "img_046": (480, 321, 3), "img_047": (321, 480, 3), "img_048": (321, 480, 3),
            "img_049": (321, 480, 3), "img_050": (321, 480, 3), "img_051": (321, 480, 3), "img_052": (321, 480, 3),
            "img_053": (321, 480, 3), "img_054": (321, 480, 3), "img_055": (480, 321, 3), "img_056": (480, 321, 3),
            "img_057": (321, 480, 3), "img_058": (321, 480, 3), "img_059": (321, 480, 3), "img_060": (321, 480, 3),
            "img_061": (321, 480, 3), "img_062": (321, 480, 3), "img_063": (480, 321, 3), "img_064": (321, 480, 3),
            "img_065": (480, 321, 3), "img_066": (321, 480, 3), "img_067": (321, 480, 3), "img_068": (480, 321, 3),
            "img_069": (321, 480, 3), "img_070": (321, 480, 3), "img_071": (321, 480, 3), "img_072": (480, 321, 3),
            "img_073": (321, 480, 3), "img_074": (321, 480, 3), "img_075": (321, 480, 3), "img_076": (321, 480, 3),
            "img_077": (321, 480, 3), "img_078": (480, 321, 3), "img_079": (321, 480, 3), "img_080": (321, 480, 3),
            "img_081": (321, 480, 3), "img_082": (480, 321, 3), "img_083": (480, 321, 3), "img_084": (321, 480, 3),
            "img_085": (321, 480, 3), "img_086": (321, 480, 3), "img_087": (321, 480, 3), "img_088": (480, 321, 3),
            "img_089": (321, 480, 3), "img_090": (321, 480, 3), "img_091": (321, 480, 3), "img_092": (480, 321, 3),
            "img_093": (321, 480, 3), "img_094": (321, 480, 3), "img_095": (480, 321, 3), "img_096": (321, 480, 3),
            "img_097": (321, 480, 3), "img_098": (321, 480, 3), "img_099": (480, 321, 3), "img_100": (321, 480, 3),
        },
    ),
    # Full size (the x2 tables of some early papers used half-size images): the longest
    # side is 1024 px for most images, up to 1280.
    "urban100": DatasetSpec(
        name="Urban100",
        hashes={
            "img_001": "754c5f3d58c7fc6e001184973c77812625bde7f5f930e340dd584e29b989ba16",
            "img_002": "04eb22c18c16a1e9ef5991011270d4c8055da6cdaebbb4db641de9fc08455afb",
            "img_003": "c477d2afa58fe817a0238e86ff9d82a68072b40b0dbee66daf1851d3b7cab282",
            "img_004": "a1e4c7b94c0f544f4ae4e239e361f03bfa1d3c8a8a492ca75a79337c7ae9b07f",
            "img_005": "0da8c1e0077500eef673cef57aa24108836a2c5e6200a6f316ce5c0f91f62ba1",
            "img_006": "47424c3d80d922355e0724ac0e5c8a1e27eb8ea6e48f875d89cdc374a691854a",
            "img_007": "245864c456742a2c396dac50d114ab0176baa4c17fb8aeb7b79a7f342763b1ae",
            "img_008": "37d0f91f6efe92def93f1b0a1077f2a0f244441499306814fb7d3594688a679d",
            "img_009": "50544df344a2d20e658c1b7e51b6d76f549f50b52328ce1c7723bd6df351f2f5",
            "img_010": "56f89d56a45dce1014b6231e1fc153db155bda8706580816d6fcc72bd731cf15",
            "img_011": "d9725a108a286b9591575f1162e330a9b1ff92e38e7cfc8b156d44cf659908c6",
            "img_012": "db1181926f29f2d20e5891721397feafc99a0bd0a85142497d05d0baa6a77e57",
            "img_013": "490b6bb5bd34fbdaab2b22cc7a350117bbb7fa5ff08f3d2eb956106ffc895921",
            "img_014": "30d34992ef237098101005a866b7b04ecedd946d3a91b23ce72c333158bd546f",
            "img_015": "972cfd86a9244701fc10ea1fc55af0509015fac324cbe887a443d75364ec2b94",
            "img_016": "259d7b2baaf52920447ba81e36a0ae0e1e69d09d9de04b82c573aea594974406",
            "img_017": "92ae1d734fe461450f6e4859dc999197eb1c1a994290351990bcc96a98aa6e56",
            "img_018": "e03daa81a74c5419a121fb87fef0565de04584c26850f9ce7b82043916b51176",
            "img_019": "70df2a06e57a543825c7410534460f965d204ffc8192a88f3d01c383bc2e994b",
            "img_020": "45983726b87dd7d68e393b96fcc930862a5c53d55d467ea5e95a9bc4ad794bb4",
            "img_021": "ba5213c7e742605c8b08a27b1198013dc78ec4585078864414ea7a9ce8809069",
            "img_022": "4b75578a1463ef6250b617893d417eea30f447511c7d8c3da9a64f4fb594f7ee",
            "img_023": "d12a9181a974dec2cf122264580df83dadfa9663237d0eb22515a301a535bc87",
            "img_024": "efdb0a24b5146439e40ea590e496bf416dbca988b13308dc495b19ffe3fa3947",
            "img_025": "c96fec8c0dc5d75a3267c23d3b9de2a900635329d951f7184149336c97995881",
            "img_026": "f1c367fa36461885a9972687f114027450085244aa18a1e86e6aa8717b1367f8",
            "img_027": "2f529634bf6fd9d4ecbcc3a6584ff7aa1ced49e06087749dae595cf9068ae5a7",
            "img_028": "2462c4b342ea87374e6fbd011f11c42ce7eb0e046a87e3308429b7412ca90344",
            "img_029": "e1f5d9c53efb8f0bd9b4c63c2c69708bde5d958537af1ad4265b51d5625eedef",
            "img_030": "064be0e0ce2a3cf0a6d5a4f0f3324f0c08701c83c5a98ff30fe166fa856e5a56",
            "img_031": "8dd639156f6ee605b63f0374556e8854e68c4f1e7f66147466de4654aefd59f4",
            "img_032": "3b8d0909a9e5a183efa1e97d23f241c532f26dea417d87d99ecd9a1d52ecbd4d",
            "img_033": "9f2da0bad5eaff34e3c3ff7ec7294dacacc08832de70272f7726f36cf8494075",
            "img_034": "a8e7d428dc7665231d288efa8d3524a37eed8de553f2b466e173efdfd1d394d5",
            "img_035": "32438cc519900d93f5a9749e2847e4bda5363784572e352a6f7155739579698a",
            "img_036": "0c493641345ee29984bccb54c648c0e066e872b8245ad66f622f874d2b3cb8c3",
            "img_037": "5b72074e642cc6979c0edc2074c768f81072f93cedb6aada2b26c8835e1717de",
            "img_038": "12b48ef60bce5bc6248443ba1caffb7928bb3a5be6527f72aa4fd5854e4fc261",
            "img_039": "edf6a09a5edf0e7a79d2f9ab7b5559647a95fee1ef756f7974d6a21626a85589",
            "img_040": "9281e809c2b3bee62b840ff5284b4fa2330c1589d49b5ce9846f097d9c3f4398",
            "img_041": "23c9c6bd3477ac8e31ec4687d86e448b8cb2fe7982971ae991f80e716272ebb4",
            "img_042": "f1ee4bf5073a31257f4cf5c682f12cb4394f894e13c534f6b3ea2f364bdcc5e5",
            "img_043": "d3e5485a6dcf3f705726b0b830d7666c19817b4970748025552c51063055908c",
            "img_044": "1cc23de5c8f1943f42af0e2cfbea1d9b6e5815aa0382741b255f3d2fdb88c2a8",
            "img_045": "749e577d35c5939e2b248d6a94c7eea7d9b6c465bf590c3f58c3b10b5aff1df4",
            "img_046": "f0f19620fd0c80c98eb0e58775acf97e98ca3696152cd0803048c51eb8fec48d",
            "img_047": "49d076ea72b8c374b31b600fc51875e9810c9d35c0fca1d6131327c0b6e60b1b",
            "img_048": "d7f90a971e4958102a0eea3210712c79ef3fff4d49b6c0061766bbb503641ad9",
            "img_049": "b426d9a1aea6fb58d57d67e0e1ceafedf647ed20cc59ffa576e243c341f314c7",
            "img_050": "3811acd8ab01184192a0f1a81a36e5cbd48f627f8c251b018486c3436b64fdfc",
            "img_051": "b4307d00219de204371c89b751d14ac9e301d3324575a795bf5eb0091cf71257",
            "img_052": "eb8bbf033c9f6270d49ebfbfee62c4bd8f8aae039256bca398daa39a68ad0bd5",
            "img_053": "89ee7acef916ee808ca4f11c01e8506972ed609f6791c36be5a2a9e7d3d868c2",
            "img_054": "826a7cca9d838cf006e65deefb1112c99a1ae7aea3cbc8bf1a96ab2a3514985f",
            "img_055": "2bdff98e4c015f181decfb0333c984571898c80e8de77929bd39d3a5b97b410a",
            "img_056": "b9f9f2585e911b4608011b61de135b8ca9c6445b1600cca72f77be9fa4ed4b69",
            "img_057": "d5fe119bd6ca60b518f0c1a94b98c30c298c372f3279308ba571e8d3faf50985",
            "img_058": "f2b14a7b1ea21d8ee98aca72b6e33ebbc01679fc64abae5d9de8bfa4db3daac1",
            "img_059": "4263e41496d42c387fa35532dffb1dc2a77ffb205d5c48372a288345277f98f8",
            "img_060": "6395ce184572b5f3438a5bad76b201849c154d13660ec129ed2f8f18f37b93b2",
            "img_061": "7e863140eb5fbdc5b16cac2160f724147709c4436ce81d2f23833280d08962d7",
            "img_062": "727301e028a9edbe7c2ef892a740f8bf5778824600a1d730be568e7a88cc5c9d",
            "img_063": "43b8b202eb410f2ef6dd4287f10e77accfe3d6fe141ee1c4cecdc79e0c93778f",
            "img_064": "56a4e8283470f2b4246dd7e10131f4b56acba995b28dace02f9e32d6f06f4925",
            "img_065": "fdca22ace014227857fa9d7d4b988131ea81f1930cec4898b59299d602e46cc7",
            "img_066": "06c63d1053768c2dc897833bd6f3b2d7f6ac516df1ec0c020754e4f6220d3cfc",
            "img_067": "9798b843b9e619f762b31780e508f3573b3c64036de12f54bb52f61b9e7a6425",
            "img_068": "8c5463cab3e1804cfb017b6bc280a221b21670a5de14521e031f35c47b37faab",
            "img_069": "3a0019a936533aa83136885c3bfbfad0592a62b1244ebccd6c1ea14c4a621619",
            "img_070": "4ef40e4f5108080213154fb850c1516099edd7a957ab6596ae95955cf673bf82",
            "img_071": "10c0b5371028354ed87d178d18c3d026f94520620a2cff5a82bf1e6b9b41d93c",
            "img_072": "88b83af350f0b665286b83e97a2d8b639687206f56abc63ec09a7cf36b8f5f88",
            "img_073": "e49a5cddfb964b8a5e96ecf582a2dacf9b93919e05cec509636b6c3344ac1878",
            "img_074": "9b0f121baab953a8d6d7df8c6892b9838cf8de8d4b08b88997e7ba53aace1a40",
            "img_075": "d8bac3f67a83b670cb167ac46badfb9725ae4ed58cf86f9271991ea1ad1d65ab",
            "img_076": "a29c8963ca7dc66dc954ed5923cde7933ef7a6a7cc78d402c69e50f35a49f388",
            "img_077": "996d2e8b3d19827fc1cd9516bd31ed34b1416345283e52e345accd420e00571a",
            "img_078": "0b16598bc5630633bc6353869eabcb5c68bf77e6498ed9edb5708cdb0775e09c",
            "img_079": "0f75fe5026140292cf1cbf9f7ae0300cd0537068212f67f05b26073fd5938c96",
            "img_080": "6ad637983c8d29c4281d4aa33eb1ab3138083e1a1c80a81b0ebbc67114c49311",
            "img_081": "14891f76f15341b2c32c7d052917bcff438d7cd5b6d973ab3a4d6371e660ef25",
            "img_082": "581c495648dd89b9f7b50079907d60e4e55bb0bbdde6d2855cd96a1eeefaf41c",
            "img_083": "e3e4f04726c002fe517af40a7f37d86b5129bb36aac1b8adfceaf329a2810b21",
            "img_084": "455b79f83fbf26773ff36edc5464a7c6f1a6e57d7267472676f0d5a84462883f",
            "img_085": "d52a3050811a1c13862f176f40041fbdd44e951829ea7b98d8f618e27009332b",
            "img_086": "d7c286eb906c7fe4656d70eaa382de4ef9dcd66948d5680c00d802c4599e1df5",
            "img_087": "711291443d059c81165cf642f62448bc6fe5b3c82a533236d1fc7127a2730ad1",
            "img_088": "3f48ef9cceccab1a3e5a08569a146662bab2d2db3176a6efee0e8d7725b6d9da",
            "img_089": "92cac8712dd6c3172fa3f2214f662e6b5b46c18d36ec3c0dfbaac5fc28af5b89",
            "img_090": "87cb69cb915b3bff23edc4b8b14388d2988400261b988639cf6c1d2d8441319a",
            "img_091": "cf55c1e138600772d9b61fe1016eae206bf0ee92151b81eb9b5ad18766b70d18",
            "img_092": "8c554b0c0be208a1ea9db6f8e8a0b594378f42e90a2c1866da09a6fbc18198a4",
            "img_093": "772a9f113c59c9a085db03ac998f7cf1843551459fab15286f7fe99c4e1bca40",
            "img_094": "3843de596175c0df1919010481a9fbcb23c00bf5d8305303c58a0feb0aaf36d1",
            "img_095": "b24382d2a564b99a5b700649d6548714968d31c561b64018a40ec0baee8aa9b5",
            "img_096": "d0139077d18b4fbeaccd055bdfe84cd17c0b62d7d1f4f7ea53175f2831eb5233",
            "img_097": "a7051f168261dccf4887aaa397577c49916db4239a6c4f381367b36cbf028fdc",
            "img_098": "96f07b611fe33bdb01e67b64acaf3c38b19e638df228a6d986183b36a4494e6b",
            "img_099": "9c87bef1776f980c07c82ecb2a80bf099d6899f1531440d3d41e236af4643f5c",
            "img_100": "c28b1b5784f082048893c1ad586ae1925236420b2337c22c80785491f7c91a35",
        },
        hf_repo="eugenesiow/Urban100",
        hf_archive="data/Urban100_HR.tar.gz",
        citation="Huang et al., CVPR 2015",
        description="100 images (img_001 ... img_100), full size: longest side 1024 px (up to 1280)",
        shapes={
            "img_001": (644, 1024, 3), "img_002": (768, 1024, 3), "img_003": (680, 1024, 3), "img_004": (680, 1024, 3),
            "img_005": (768, 1024, 3), "img_006": (1024, 1024, 3), "img_007": (680, 1024, 3), "img_008": (572, 1024, 3),
            "img_009": (796, 1024, 3), "img_010": (816, 1024, 3), "img_011": (1024, 564, 3), "img_012": (768, 1024, 3),
            "img_013": (764, 1024, 3), "img_014": (1024, 1024, 3), "img_015": (772, 1024, 3), "img_016": (1024, 1024, 3),
            "img_017": (692, 1024, 3), "img_018": (768, 1024, 3), "img_019": (680, 1024, 3), "img_020": (960, 1280, 3),
            "img_021": (1200, 796, 3), "img_022": (680, 1024, 3), "img_023": (1024, 1024, 3), "img_024": (660, 1024, 3),
            "img_025": (736, 1024, 3), "img_026": (768, 1024, 3), "img_027": (832, 1024, 3), "img_028": (680, 1024, 3),
            "img_029": (676, 1024, 3), "img_030": (1024, 680, 3), "img_031": (680, 1024, 3), "img_032": (680, 1024, 3),
            "img_033": (680, 1024, 3), "img_034": (680, 1024, 3), "img_035": (688, 1024, 3), "img_036": (1024, 700, 3),
            "img_037": (1024, 740, 3), "img_038": (1024, 768, 3), "img_039": (1024, 768, 3), "img_040": (576, 1024, 3),
            "img_041": (680, 1024, 3), "img_042": (680, 1024, 3), "img_043": (672, 1024, 3), "img_044": (680, 1024, 3),
            "img_045": (768, 1024, 3), "img_046": (1024, 692, 3), "img_047": (616, 1024, 3), "img_048": (1024, 684, 3),
            "img_049": (680, 1024, 3), "img_050": (1024, 680, 3), "img_051": (680, 1024, 3), "img_052": (680, 1024, 3),
            "img_053": (656, 1024, 3), "img_054": (680, 1024, 3), "img_055": (768, 1024, 3), "img_056": (768, 1024, 3),
            "img_057": (724, 1024, 3), "img_058": (692, 1024, 3), "img_059": (664, 1024, 3), "img_060": (680, 1024, 3),
            "img_061": (672, 1024, 3), "img_062": (680, 1024, 3), "img_063": (980, 1000, 3), "img_064": (680, 1024, 3),
            "img_065": (680, 1024, 3), "img_066": (864, 1024, 3), "img_067": (680, 1024, 3), "img_068": (1024, 1024, 3),
            "img_069": (824, 1200, 3), "img_070": (768, 1024, 3), "img_071": (768, 1024, 3), "img_072": (1024, 680, 3),
            "img_073": (764, 1024, 3), "img_074": (1024, 680, 3), "img_075": (680, 1024, 3), "img_076": (676, 1024, 3),
            "img_077": (680, 1024, 3), "img_078": (732, 1024, 3), "img_079": (768, 1024, 3), "img_080": (1036, 776, 3),
            "img_081": (1024, 1024, 3), "img_082": (1024, 1024, 3), "img_083": (1024, 1004, 3), "img_084": (1024, 1024, 3),
            "img_085": (676, 1024, 3), "img_086": (768, 1024, 3), "img_087": (1024, 1024, 3), "img_088": (672, 1024, 3),
            "img_089": (1024, 768, 3), "img_090": (680, 1024, 3), "img_091": (680, 1024, 3), "img_092": (692, 1024, 3),
            "img_093": (768, 1024, 3), "img_094": (768, 1024, 3), "img_095": (768, 1024, 3), "img_096": (768, 1024, 3),
            "img_097": (680, 1024, 3), "img_098": (680, 1024, 3), "img_099": (804, 1024, 3), "img_100": (1024, 1024, 3),
        },
    ),
}


@dataclass
class DatasetImage:
    """One HR image of a dataset; pixels are read on demand.

    An image of a catalogued set carries the catalogued hash (and shape): pixels that differ
    are an :class:`ImageError` for this image alone, which the runner records as a bad
    image while the rest of the set runs.
    """

    dataset: str
    name: str
    path: Path
    expected_hash: str | None = None
    expected_shape: tuple[int, ...] | None = None
    _pixels: np.ndarray | None = field(default=None, repr=False)
    _hash: str | None = field(default=None, repr=False)

    def pixels(self) -> np.ndarray:
        """The image as uint8 (H, W) or (H, W, 3).

        Raises
        ------
        ImageError
            On bad input, or pixels other than the catalogued ones.
        """
        if self._pixels is None:
            pixels = read_image(self.path)
            digest = pixel_hash(pixels)
            if self.expected_hash is not None and digest != self.expected_hash:
                raise ImageError(
                    f"{self.path.name}: not the catalogued {self.dataset} image {self.name} "
                    f"({_difference(pixels.shape, self.expected_shape, 'here')})"
                )
            self._pixels, self._hash = pixels, digest
        return self._pixels

    def luminance(self) -> np.ndarray:
        return luminance(self.pixels())

    def content_hash(self) -> str:
        self.pixels()
        assert self._hash is not None
        return self._hash


def _shape_text(shape: tuple[int, ...]) -> str:
    """``480x321 RGB`` (width first, as image sizes are said) or ``512x512 grayscale``."""
    kind = "grayscale" if len(shape) == 2 else "RGB" if shape[2] == 3 else f"{shape[2]} channels"
    return f"{shape[1]}x{shape[0]} {kind}"


def _difference(found: tuple[int, ...], expected: tuple[int, ...] | None, where: str) -> str:
    """What differs between pixels of shape ``found`` (``where``) and the catalogued ones.

    Only called when the hashes differ: equal shapes mean other pixel values.
    """
    if expected is None:
        return f"other pixels, {_shape_text(found)} {where}"
    if tuple(found) != tuple(expected):
        return f"{_shape_text(found)} {where}, catalogued {_shape_text(expected)}"
    return f"other pixels, same size {_shape_text(found)}"


@dataclass
class Dataset:
    name: str
    source: str
    images: list[DatasetImage]

    def __len__(self) -> int:
        return len(self.images)


def cache_dir() -> Path:
    """``SRBENCH_CACHE`` or the user's cache folder for srbench."""
    if os.environ.get("SRBENCH_CACHE"):
        return Path(os.environ["SRBENCH_CACHE"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("srbench"))


def list_datasets() -> list[DatasetSpec]:
    return list(CATALOG.values())


def local_copy(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The folder of a complete local copy of a catalogued dataset, or None; never downloads.

    Looks where :func:`load_dataset` looks (``data_dir`` or ``$SRBENCH_DATA``, then the
    user cache), so ``srbench list datasets`` says what a run would find.
    """
    try:
        dataset = load_dataset(name, data_dir, download=False)
    except DatasetError:
        return None
    return dataset.images[0].path.parent if dataset.images else None


def _images_in(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            found.setdefault(path.stem, path)
    return found


def _find_child(parent: Path, name: str) -> Path | None:
    """``parent/name`` matched case-insensitively (``set5`` finds ``Set5``)."""
    if not parent.is_dir():
        return None
    exact = parent / name
    if exact.is_dir():
        return exact
    for child in parent.iterdir():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _catalog_dataset(spec: DatasetSpec, folder: Path, source: str) -> Dataset | None:
    """The catalogued images in ``folder``, or None when some are missing.

    Files named as in the catalogue are taken at once (their pixels are checked when read,
    so a wrong one fails alone). Otherwise, when the folder holds enough images, they are
    matched by pixels: a copy whose files are named otherwise (``3096.png`` for ``img_001``,
    ``img_001_SRF_2_HR.png``) is the same set.
    """
    files = _images_in(folder)
    if all(n in files for n in spec.hashes):
        paths = {n: files[n] for n in spec.hashes}
    elif len(files) >= len(spec.hashes):
        by_hash: dict[str, Path] = {}
        for path in files.values():
            digest = _file_hash(path)
            if digest is not None:
                by_hash.setdefault(digest, path)
        if not all(h in by_hash for h in spec.hashes.values()):
            return None
        paths = {n: by_hash[h] for n, h in spec.hashes.items()}
    else:
        return None
    images = [DatasetImage(spec.name, n, paths[n], spec.hashes[n], spec.shapes.get(n)) for n in spec.hashes]
    return Dataset(spec.name, source, images)


#: Pixel hashes of files already decoded, by (path, size, mtime): a folder matched by pixels
#: is looked at several times per command (``list``, the missing-data check, the run).
_FILE_HASHES: dict[tuple[str, int, int], str | None] = {}


def _file_hash(path: Path) -> str | None:
    """The pixel hash of an image file, or None if it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        try:
            _FILE_HASHES[key] = pixel_hash(read_image(path))
        except ImageError:
            _FILE_HASHES[key] = None
    return _FILE_HASHES[key]


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host answers at all; the hub client would retry for ~30 s."""
    import socket
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = urlparse(endpoint).port or 443
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _default_download(repo: str, filename: str) -> str:
    import logging

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or not _hub_reachable():
        raise ConnectionError("the Hugging Face hub is not reachable (offline?)")
    from huggingface_hub import hf_hub_download

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    return hf_hub_download(repo_id=repo, filename=filename, repo_type="dataset")


#: Replaced in tests to fake the hub without network.
hf_download: Callable[[str, str], str] = _default_download


def _archive_name(stem: str, name: str) -> bool:
    """Whether an archive file's stem names catalogue image ``name`` (``img_001``,
    ``img_001_SRF_2_HR``). Only used to say what differs: images are matched by pixels."""
    stem, name = stem.lower(), name.lower()
    return stem == name or stem.startswith(name + "_")


def _mismatch_details(
    spec: DatasetSpec, missing: list[str], others: dict[str, tuple[int, ...] | str]
) -> list[str]:
    """One clause per catalogued image the archive lacks, saying what it has instead.

    ``others`` maps the stems of the archive's unmatched images to their shape, or to why
    they could not be read. An image whose name no archive file carries is "not in it".
    """
    details = []
    for name in missing:
        stem = next((s for s in others if _archive_name(s, name)), None)
        if stem is None:
            details.append(f"{name} is not in it (no image with its pixels: hash mismatch)")
        elif isinstance(others[stem], str):
            details.append(f"{name}: {others[stem]}")
        else:
            details.append(f"{name}: {_difference(others[stem], spec.shapes.get(name), 'in the archive')}")
    return details


def _fetch_catalog_dataset(spec: DatasetSpec, target: Path) -> None:
    """Download the dataset's archive, keep the images whose pixels match the catalog.

    The archive's file names are never trusted: each catalogued image is the archive image
    with its pixel hash. If one is not there, nothing is cached and the error names, in one
    line, each such image and what the archive holds under its name (another size, other
    pixels of the same size, an unreadable file) or that it holds nothing like it.
    """
    try:
        archive = hf_download(spec.hf_repo, spec.hf_archive)
    except Exception as exc:  # the hub raises many types for "offline"
        raise DatasetError(
            f"{spec.name} not found and could not be downloaded from the Hugging Face hub "
            f"({exc or type(exc).__name__}); put its images ({spec.names_text()}) in "
            f"$SRBENCH_DATA/{spec.name}/ or pass --data-dir"
        ) from None
    wanted = {h: n for n, h in spec.hashes.items()}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise DatasetError(f"{spec.name}: downloaded archive is unreadable ({exc})") from None
        matched: dict[str, np.ndarray] = {}
        others: dict[str, tuple[int, ...] | str] = {}
        for path in sorted(Path(tmp).rglob("*")):
            if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                pixels = read_image(path)
            except ImageError as exc:
                others.setdefault(path.stem, f"unreadable in the archive ({exc})")
                continue
            name = wanted.get(pixel_hash(pixels))
            if name is not None:
                matched[name] = pixels
            else:
                others.setdefault(path.stem, pixels.shape)
        missing = [n for n in spec.hashes if n not in matched]
        if missing:
            details = _mismatch_details(spec, missing, others)
            shown = "; ".join(details[:3]) + (f"; and {len(details) - 3} more" if len(details) > 3 else "")
            raise DatasetError(
                f"{spec.name}: the downloaded archive ({spec.hf_repo} {spec.hf_archive}) differs from "
                f"the catalogue in {len(missing)} of {len(spec.hashes)} images: {shown}; nothing was "
                f"kept; put verified copies in $SRBENCH_DATA/{spec.name}/"
            )
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name, pixels in matched.items():
            write_image(staging / f"{name}.png", pixels)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True) -> Dataset:
    """Find a dataset by name.

    Parameters
    ----------
    name : str
        A catalog name (case-insensitive: ``Set5``, ``set14``, ``bsd100``, ``Urban100``)
        or ``folder:PATH``.
    data_dir : path, optional
        Folder with one sub-folder per dataset; defaults to ``$SRBENCH_DATA``.
    download : bool
        Whether a catalogued dataset missing locally may be fetched from the hub.
    """
    if name.lower().startswith("folder:"):
        folder = Path(name.split(":", 1)[1]).expanduser()
        if not folder.is_dir():
            raise DatasetError(f"folder {folder} does not exist")
        files = _images_in(folder)
        if not files:
            raise DatasetError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        label = folder.name or str(folder)
        return Dataset(label, f"folder {folder}", [DatasetImage(label, n, p) for n, p in files.items()])

    spec = CATALOG.get(name.lower())
    if spec is None:
        close = difflib.get_close_matches(name.lower(), list(CATALOG), n=1)
        hint = f"; did you mean {CATALOG[close[0]].name!r}?" if close else ""
        known = ", ".join(s.name for s in CATALOG.values())
        raise DatasetError(f"unknown dataset {name!r}{hint} (known: {known}, or folder:PATH)")

    roots: list[tuple[Path, str]] = []
    data_dir = data_dir if data_dir is not None else os.environ.get("SRBENCH_DATA") or None
    if data_dir is not None:
        roots.append((Path(data_dir), "data dir"))
    cached = cache_dir() / "datasets"
    roots.append((cached, "cache"))
    for root, kind in roots:
        folder = _find_child(root, spec.name)
        if folder is not None:
            dataset = _catalog_dataset(spec, folder, f"{kind} {folder}")
            if dataset is not None:
                return dataset
    if not download:
        raise DatasetError(
            f"{spec.name} not found; put its images ({spec.names_text()}) in "
            f"$SRBENCH_DATA/{spec.name}/ or pass --data-dir"
        )
    target = cached / spec.name
    _fetch_catalog_dataset(spec, target)
    dataset = _catalog_dataset(spec, target, f"hub {spec.hf_repo} (cached in {target})")
    assert dataset is not None
    return dataset
