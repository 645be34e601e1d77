#!/usr/bin/python3
"""Writes a random-weight llama GGUF (F16) in a given shape, for benchmarks
that run zcpack and llama.cpp on the same weights.

The peer script (../shared/peers/llamacpp.sh) makes the stories15M and
stories110M shapes through llama.cpp's llama2.c converter, whose 2 GiB pool
cannot hold larger models; this script makes the larger shapes instead. It
writes with the GGUF library that ships in the peer's source tree
($ZCPACK_PEERS/llama.cpp/gguf-py, MIT) and Debian's python3-numpy, and copies
the tokenizer from one of the peer's vocabulary files, so both programs read
the same file. The weights are random (NOT a trained model): matrices
N(0, 0.02), norms 1.

usage: make_peer_model.py SHAPE OUT.gguf
  SHAPE: llama-1b (2048 wide, 16 layers, 32 heads / 8 KV heads, FFN 8192,
         vocab 128256 with the llama-3 tokenizer, tied embeddings, RoPE theta
         500000: the shape of `zcpack synth --shape llama-1b`)
"""
import os
import sys

peers = os.environ.get("ZCPACK_PEERS", os.path.expanduser("~/.cache/zcpack-peers"))
sys.path.insert(0, os.path.join(peers, "llama.cpp", "gguf-py"))
import numpy as np  # noqa: E402
import gguf  # noqa: E402

SHAPES = {
    "llama-1b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, ffn=8192, vocab=128256,
                     context=2048, theta=500000.0, vocab_file="ggml-vocab-llama-bpe.gguf"),
}


def copy_tokenizer(writer, vocab_path, vocab_size):
    reader = gguf.GGUFReader(vocab_path)
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        main = field.types[0]
        if main == gguf.GGUFValueType.ARRAY:
            values = field.contents()
            writer.add_key_value(name, values, main, sub_type=field.types[-1])
        else:
            writer.add_key_value(name, field.contents(), main)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    if len(tokens) != vocab_size:
        sys.exit(f"{vocab_path}: {len(tokens)} tokens, the shape needs {vocab_size}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(__doc__)
    s = SHAPES[sys.argv[1]]
    out = sys.argv[2]
    hd = s["hidden"] // s["heads"]
    writer = gguf.GGUFWriter(out + ".tmp", "llama")
    writer.add_context_length(s["context"])
    writer.add_embedding_length(s["hidden"])
    writer.add_block_count(s["layers"])
    writer.add_feed_forward_length(s["ffn"])
    writer.add_head_count(s["heads"])
    writer.add_head_count_kv(s["kv_heads"])
    writer.add_rope_freq_base(s["theta"])
    writer.add_rope_dimension_count(hd)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(s["vocab"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    copy_tokenizer(writer, os.path.join(peers, "llama.cpp", "models", s["vocab_file"]), s["vocab"])

    rng = np.random.default_rng(1)

    def matrix(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    def norm(n):
        return np.ones(n, dtype=np.float32)

    h, kv = s["hidden"], s["kv_heads"] * hd
    writer.add_tensor("token_embd.weight", matrix(s["vocab"], h))  # tied: also the head
    for layer in range(s["layers"]):
        p = f"blk.{layer}."
        writer.add_tensor(p + "attn_norm.weight", norm(h))
        writer.add_tensor(p + "attn_q.weight", matrix(h, h))
        writer.add_tensor(p + "attn_k.weight", matrix(kv, h))
        writer.add_tensor(p + "attn_v.weight", matrix(kv, h))
        writer.add_tensor(p + "attn_output.weight", matrix(h, h))
        writer.add_tensor(p + "ffn_norm.weight", norm(h))
        writer.add_tensor(p + "ffn_gate.weight", matrix(s["ffn"], h))
        writer.add_tensor(p + "ffn_up.weight", matrix(s["ffn"], h))
        writer.add_tensor(p + "ffn_down.weight", matrix(h, s["ffn"]))
    writer.add_tensor("output_norm.weight", norm(h))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
