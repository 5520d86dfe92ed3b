#!/usr/bin/env python3
"""Writes tiny-qwen2.gguf: a qwen2-architecture GGUF small enough to commit (about 100 KB).

The embedded provider's qwen2 path (Qwen2.5) needs a qwen2 file, and no test may download one. This
file has the real format and metadata layout of a Qwen2.5-Instruct GGUF as llama.cpp's converter
writes it — `general.architecture = qwen2`, the `qwen2.*` hyper-parameters, Q8_0 weights with q/k/v
biases, tied input/output embeddings (as Qwen2.5-0.5B), a GPT-2-style byte-level BPE tokenizer with
`tokenizer.ggml.pre = qwen2`, Qwen's special tokens as control tokens, `<|im_end|>` as EOS, and
Qwen2.5-Instruct's own chat template — but random weights, a 64-wide model and a vocabulary of the
256 byte tokens, a few dozen merges and 3 special tokens. It cannot answer anything sensible; it loads,
tokenizes, renders its template and generates.

Deterministic (seeded): rerunning it rewrites the same bytes. Needs `gguf` (llama.cpp's own writer)
and numpy:

    python3 -m pip install --target /tmp/gguf-py gguf==0.19.0
    PYTHONPATH=/tmp/gguf-py python3 crates/llm-provider-local/tests/data/make_tiny_qwen2.py
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import gguf

OUT = Path(__file__).with_name("tiny-qwen2.gguf")

EMBED = 64
HEADS = 4
KV_HEADS = 2
FFN = 128
LAYERS = 2
# Small on purpose: the tests fill it (a long prompt is `context_length`, answers are cut by it).
CONTEXT = 64
MERGES = 48

# Qwen2.5-Instruct's chat template, as its tokenizer_config.json (and so its GGUF files) carry it.
QWEN25_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# The text the merges are learned from.
CORPUS = """The capital of France is Paris. The capital of Japan is Tokyo. The sky is blue on a
clear day. Hello, how are you? I am fine, thank you. What is the answer? The answer is in the
question. Write a story about a robot who learns to paint. The robot paints the sea and the sky."""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-to-character map (what every byte-level BPE vocabulary, Qwen's included, uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def learn_merges(byte_chars: dict[int, str]) -> list[tuple[str, str]]:
    """Plain BPE training on CORPUS, words split as GPT-2 does (a leading space stays with the word)."""
    words = Counter(
        tuple(byte_chars[b] for b in word.encode()) for word in re.findall(r" ?[A-Za-z]+| ?[^\sA-Za-z]+|\s+", CORPUS)
    )
    merges: list[tuple[str, str]] = []
    for _ in range(MERGES):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        # Most frequent first; ties broken by the pair itself so the result never depends on order.
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    return merges


def main() -> None:
    rng = np.random.default_rng(20_241_129)
    byte_chars = bytes_to_unicode()
    # The 256 byte tokens in GPT-2's order (printable ones first), as Qwen's vocabulary has them.
    tokens = list(byte_chars.values())
    merges = learn_merges(byte_chars)
    tokens += [a + b for a, b in merges]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    first_special = len(tokens)
    tokens += specials
    token_types = [gguf.TokenType.NORMAL] * first_special + [gguf.TokenType.CONTROL] * len(specials)
    vocab = len(tokens)

    # Only printable ASCII (and merges of it) may be generated: every other output row is zero, so its
    # logit is 0 while the largest of ~150 random logits is positive. A greedy answer therefore never
    # ends early on a special token and always decodes to whole UTF-8 characters.
    printable = {byte_chars[b] for b in range(0x20, 0x7F)}
    embed = rng.standard_normal((vocab, EMBED)).astype(np.float32)
    for i, token in enumerate(tokens):
        if i >= first_special or not all(c in printable for c in token):
            embed[i] = 0.0

    writer = gguf.GGUFWriter(OUT, "qwen2")
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("tiny-qwen2 (random weights, for tests)")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBED)
    writer.add_feed_forward_length(FFN)
    writer.add_block_count(LAYERS)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges([f"{a} {b}" for a, b in merges])
    writer.add_eos_token_id(first_special + 2)  # <|im_end|>
    writer.add_pad_token_id(first_special)  # <|endoftext|>
    writer.add_bos_token_id(first_special)  # <|endoftext|>
    writer.add_add_bos_token(False)
    writer.add_chat_template(QWEN25_TEMPLATE)

    def q8(name: str, array: np.ndarray) -> None:
        writer.add_tensor(name, gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0), raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    def linear(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    kv = EMBED // HEADS * KV_HEADS
    q8("token_embd.weight", embed)
    writer.add_tensor("output_norm.weight", np.ones(EMBED, dtype=np.float32))
    for layer in range(LAYERS):
        p = f"blk.{layer}"
        writer.add_tensor(f"{p}.attn_norm.weight", np.ones(EMBED, dtype=np.float32))
        q8(f"{p}.attn_q.weight", linear(EMBED, EMBED))
        q8(f"{p}.attn_k.weight", linear(kv, EMBED))
        q8(f"{p}.attn_v.weight", linear(kv, EMBED))
        writer.add_tensor(f"{p}.attn_q.bias", (0.1 * rng.standard_normal(EMBED)).astype(np.float32))
        writer.add_tensor(f"{p}.attn_k.bias", (0.1 * rng.standard_normal(kv)).astype(np.float32))
        writer.add_tensor(f"{p}.attn_v.bias", (0.1 * rng.standard_normal(kv)).astype(np.float32))
        q8(f"{p}.attn_output.weight", linear(EMBED, EMBED))
        writer.add_tensor(f"{p}.ffn_norm.weight", np.ones(EMBED, dtype=np.float32))
        q8(f"{p}.ffn_gate.weight", linear(FFN, EMBED))
        q8(f"{p}.ffn_up.weight", linear(FFN, EMBED))
        q8(f"{p}.ffn_down.weight", linear(EMBED, FFN))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"{OUT}: {OUT.stat().st_size} bytes, vocabulary {vocab}, {len(merges)} merges")


if __name__ == "__main__":
    main()
