# Test stand-in: writes a tiny random GPT-2 (2 layers, n_embd 64, ~0.5 MB) that the real web UI loads on a CPU; not a real model.
"""Write a tiny GPT-2 model folder with the standard library only (no torch on the host).

usage: make_tiny_model.py DEST

config.json, generation_config.json, model.safetensors (float32, seeded normal weights as
GPT-2 initialises them: the same bytes on every machine), and a byte-level BPE tokenizer
without merges (vocab.json: the 256 byte symbols and <|endoftext|>; merges.txt: header
only), as transformers 4.33's GPT2LMHeadModel and GPT2Tokenizer read them. The end-of-text
row of the embedding is zero, so a reply is not cut short at once.
"""

from __future__ import annotations

import json
import random
import struct
import sys
from array import array
from pathlib import Path

N_EMBD, N_LAYER, N_HEAD, N_POS = 64, 2, 2, 256


def byte_symbols() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values (transformers' bytes_to_unicode), in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def tensors(vocab: int) -> dict[str, tuple[list[int], array]]:
    rng = random.Random(0)

    def normal(*shape, std=0.02):
        n = 1
        for dim in shape:
            n *= dim
        return list(shape), array("f", (rng.gauss(0.0, std) for _index in range(n)))

    def const(value, dim):
        return [dim], array("f", [value] * dim)

    out = {"transformer.wte.weight": normal(vocab, N_EMBD), "transformer.wpe.weight": normal(N_POS, N_EMBD, std=0.01)}
    out["transformer.wte.weight"][1][(vocab - 1) * N_EMBD:] = array("f", [0.0] * N_EMBD)
    for i in range(N_LAYER):
        p = f"transformer.h.{i}."
        out.update({
            p + "ln_1.weight": const(1.0, N_EMBD), p + "ln_1.bias": const(0.0, N_EMBD),
            p + "attn.c_attn.weight": normal(N_EMBD, 3 * N_EMBD), p + "attn.c_attn.bias": const(0.0, 3 * N_EMBD),
            p + "attn.c_proj.weight": normal(N_EMBD, N_EMBD), p + "attn.c_proj.bias": const(0.0, N_EMBD),
            p + "ln_2.weight": const(1.0, N_EMBD), p + "ln_2.bias": const(0.0, N_EMBD),
            p + "mlp.c_fc.weight": normal(N_EMBD, 4 * N_EMBD), p + "mlp.c_fc.bias": const(0.0, 4 * N_EMBD),
            p + "mlp.c_proj.weight": normal(4 * N_EMBD, N_EMBD), p + "mlp.c_proj.bias": const(0.0, N_EMBD),
        })
    out["transformer.ln_f.weight"] = const(1.0, N_EMBD)
    out["transformer.ln_f.bias"] = const(0.0, N_EMBD)
    return out


def safetensors(path: Path, named: dict[str, tuple[list[int], array]]) -> None:
    """The safetensors layout: 8-byte header length, JSON header (padded to 8), raw little-endian data."""
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(named):
        shape, data = named[name]
        if sys.byteorder != "little":
            data = array("f", data)
            data.byteswap()
        raw = data.tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for raw in blobs:
            handle.write(raw)


def main() -> int:
    dest = Path(sys.argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    vocab = {symbol: i for i, symbol in enumerate(byte_symbols())}
    eos = len(vocab)
    vocab["<|endoftext|>"] = eos
    (dest / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (dest / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (dest / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "model_max_length": N_POS,
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}), encoding="utf-8")
    (dest / "config.json").write_text(json.dumps({
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": eos + 1, "n_positions": N_POS,
        "n_embd": N_EMBD, "n_layer": N_LAYER, "n_head": N_HEAD, "n_inner": None, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-05, "initializer_range": 0.02, "bos_token_id": eos, "eos_token_id": eos,
        "tie_word_embeddings": True, "torch_dtype": "float32"}, indent=2), encoding="utf-8")
    (dest / "generation_config.json").write_text(json.dumps({"bos_token_id": eos, "eos_token_id": eos}), encoding="utf-8")
    safetensors(dest / "model.safetensors", tensors(eos + 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
