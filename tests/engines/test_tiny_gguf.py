"""The tiny GGUF model: the same bytes every time, and a file that llama.cpp reads as a llama model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gguf
import jinja2
import pytest

from llmobs.engines.tiny_gguf import (
    CHAT_TEMPLATE,
    DEFAULT_MODEL,
    IM_END,
    IM_START,
    SPACE,
    TinyLlama,
    vocabulary,
    write_tiny_gguf,
)

MAX_BYTES = 4 * 2**20


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("model") / "tiny.gguf")


@pytest.fixture(scope="module")
def reader(model: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(model)


def _value(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


def test_same_spec_same_bytes(model: Path, tmp_path: Path) -> None:
    again = write_tiny_gguf(tmp_path / "elsewhere.gguf")
    assert again.read_bytes() == model.read_bytes()


def test_the_seed_decides_the_weights(model: Path, tmp_path: Path) -> None:
    other = write_tiny_gguf(tmp_path / "other.gguf", replace(DEFAULT_MODEL, seed=DEFAULT_MODEL.seed + 1))
    assert other.stat().st_size == model.stat().st_size
    assert other.read_bytes() != model.read_bytes()


def test_small(model: Path) -> None:
    assert model.stat().st_size < MAX_BYTES


def test_llama_hyperparameters(reader: gguf.GGUFReader) -> None:
    spec = DEFAULT_MODEL
    assert _value(reader, "general.architecture") == "llama"
    assert _value(reader, "general.name") == spec.name
    expected = {"context_length": spec.n_ctx_train, "embedding_length": spec.n_embd, "block_count": spec.n_layer,
                "feed_forward_length": spec.n_ff, "attention.head_count": spec.n_head,
                "attention.head_count_kv": spec.n_head_kv, "rope.dimension_count": spec.head_dim,
                "vocab_size": len(vocabulary().tokens)}
    assert {key: _value(reader, f"llama.{key}") for key in expected} == expected


def test_one_tensor_per_weight_of_the_llama_graph(reader: gguf.GGUFReader) -> None:
    """Shapes as ggml sees them (inputs first); matrices in F16, norms in F32; the output is tied."""
    spec: TinyLlama = DEFAULT_MODEL
    n_kv, n_vocab = spec.n_head_kv * spec.head_dim, len(vocabulary().tokens)
    expected = {"token_embd.weight": ([spec.n_embd, n_vocab], "F16"), "output_norm.weight": ([spec.n_embd], "F32")}
    for block in range(spec.n_layer):
        expected |= {f"blk.{block}.{name}.weight": (shape, "F32" if len(shape) == 1 else "F16") for name, shape in (
            ("attn_norm", [spec.n_embd]), ("ffn_norm", [spec.n_embd]),
            ("attn_q", [spec.n_embd, spec.n_embd]), ("attn_k", [spec.n_embd, n_kv]), ("attn_v", [spec.n_embd, n_kv]),
            ("attn_output", [spec.n_embd, spec.n_embd]), ("ffn_gate", [spec.n_embd, spec.n_ff]),
            ("ffn_up", [spec.n_embd, spec.n_ff]), ("ffn_down", [spec.n_ff, spec.n_embd]))}
    found = {tensor.name: (tensor.shape.tolist(), tensor.tensor_type.name) for tensor in reader.tensors}
    assert found == expected


def test_weights_are_random_and_small(reader: gguf.GGUFReader) -> None:
    weights = next(tensor for tensor in reader.tensors if tensor.name == "blk.0.attn_q.weight").data
    assert 0.015 < float(weights.astype("float32").std()) < 0.025
    assert len(set(weights.ravel().tolist())) > weights.size // 4


def test_tokenizer_in_the_file(reader: gguf.GGUFReader) -> None:
    vocab = vocabulary()
    assert _value(reader, "tokenizer.ggml.model") == "llama"
    assert _value(reader, "tokenizer.ggml.tokens") == vocab.tokens
    assert _value(reader, "tokenizer.ggml.token_type") == vocab.types
    assert vocab.tokens[_value(reader, "tokenizer.ggml.eos_token_id")] == IM_END
    assert _value(reader, "tokenizer.chat_template") == CHAT_TEMPLATE


def test_vocabulary_that_sentencepiece_can_use() -> None:
    """Byte fallback for every byte, a piece per printable character, and merge chains without gaps."""
    vocab = vocabulary()
    assert len(set(vocab.tokens)) == len(vocab.tokens)
    types = dict(zip(vocab.tokens, vocab.types, strict=True))
    assert [types[f"<0x{byte:02X}>"] for byte in range(256)] == [gguf.TokenType.BYTE] * 256
    assert all(types[chr(code)] == gguf.TokenType.NORMAL for code in range(0x21, 0x7F))
    pieces = [token for token, kind in types.items() if kind == gguf.TokenType.NORMAL]
    assert SPACE in pieces
    assert all(piece[:-1] in types for piece in pieces if len(piece) > 1)


def test_chat_template_renders_chatml_with_control_tokens() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    prompt = jinja2.Environment().from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)
    assert prompt == (f"{IM_START}system\nbe brief{IM_END}\n{IM_START}user\nhello{IM_END}\n{IM_START}assistant\n")
    types = dict(zip(vocabulary().tokens, vocabulary().types, strict=True))
    assert types[IM_START] == types[IM_END] == gguf.TokenType.CONTROL
