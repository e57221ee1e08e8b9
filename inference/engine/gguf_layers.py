"""A GGUF Llama cut to its first N transformer blocks (embeddings, final norm and output kept).

The result shares the source's tokenizer and chat template, so it can draft for the source in
speculative decoding ("early exit" self-drafting: LayerSkip, Draft & Verify), and it is a quick
small base with the real vocabulary for tests. The copy follows llama.cpp's own gguf-py
`gguf_new_metadata.py`: every metadata field is copied (the block count changed), then the
tensors of the kept blocks byte for byte.
"""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"^blk\.(\d+)\.")


def block_count(path: str | Path) -> int:
    import gguf

    reader = gguf.GGUFReader(str(path))
    architecture = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    return int(reader.fields[f"{architecture}.block_count"].contents())


def keep_first_layers(source: str | Path, target: str | Path, layers: int) -> Path:
    import gguf

    reader = gguf.GGUFReader(str(source))
    architecture = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    count_key = f"{architecture}.block_count"
    total = int(reader.fields[count_key].contents())
    if not 1 <= layers <= total:
        raise ValueError(f"Keep between 1 and {total} layers of {Path(source).name}; got {layers}.")
    target = Path(target)
    partial = target.with_name(target.name + ".part")
    writer = gguf.GGUFWriter(str(partial), architecture, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        value = layers if field.name == count_key else field.contents()
        writer.add_key_value(field.name, value, value_type, sub_type=sub_type)
    kept = [
        tensor
        for tensor in reader.tensors
        if (match := _BLOCK.match(tensor.name)) is None or int(match.group(1)) < layers
    ]
    for tensor in kept:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in kept:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()
    partial.replace(target)
    return target
