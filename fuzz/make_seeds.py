#!/usr/bin/env python3
"""Rebuilds fuzz/seeds/<target>/ from fixtures/ (run from the repository root: python3 fuzz/make_seeds.py).

Each seed is named after the fixture it came from. The layouts match what the targets read (see
fuzz/README.md): stream targets take one chunking byte before the body, error targets two status bytes,
header lines and a blank line before the body.
"""

import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SEEDS = ROOT / "fuzz" / "seeds"
OPENAI_DIALECT = ["openai", "groq", "openrouter", "together", "mistral", "deepseek", "lmstudio"]
# Two chunkings per stream seed: whole (0) and cut into 1..16-byte pieces (7).
CHUNKINGS = [0, 7]
WAIT_HEADERS = [
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
]


# Seeds stay small: a longer body is cut (a cut stream is a good seed too), and a target keeps at most
# MAX_FILES of them (every n-th, in name order).
MAX_BYTES = 8192
MAX_FILES = 30


def write(target, name, data):
    data = data[:MAX_BYTES]
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def fixtures(provider):
    """(name, parsed fixture) for every exchange of `provider`, hand-built and recorded."""
    for path in sorted((FIXTURES / provider).rglob("*.json")):
        try:
            fixture = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(fixture, dict) and "response" in fixture:
            yield path.relative_to(FIXTURES / provider).as_posix().replace("/", "_"), path, fixture


def body_bytes(path, response):
    if "body_file" in response:
        return (path.parent / response["body_file"]).read_bytes()
    if "body_text" in response:
        return response["body_text"].encode()
    if "body" in response:
        return json.dumps(response["body"]).encode()
    return b""


def stream_seeds(target, files):
    for path in files:
        for chunking in CHUNKINGS:
            name = f"{path.parent.name}_{path.name}.{chunking}"
            write(target, name, bytes([chunking]) + path.read_bytes())


def exchange_seeds(prefix, providers):
    """`<prefix>_response` from 2xx JSON bodies, `<prefix>_error` from the rest."""
    for provider in providers:
        for name, path, fixture in fixtures(provider):
            response = fixture["response"]
            status = response.get("status", 200)
            body = body_bytes(path, response)
            if 200 <= status < 300:
                if not response.get("body_file", "").endswith((".sse", ".ndjson")):
                    write(f"{prefix}_response", f"{provider}_{name}", body)
                continue
            headers = "".join(f"{k}: {v}\n" for k, v in response.get("headers", {}).items())
            head = (status - 100).to_bytes(2, "big") + headers.encode() + b"\n"
            write(f"{prefix}_error", f"{provider}_{name}", head + body)
            wait_seeds(provider, name, response, body)
            redaction_seed(provider, name, body)


def wait_seeds(provider, name, response, body):
    headers = response.get("headers", {})
    if any(h in headers for h in WAIT_HEADERS):
        lines = "\n".join(headers.get(h, "") for h in WAIT_HEADERS)
        write("wait_hints", f"{provider}_{name}.headers", lines.encode())
    text = body.decode("utf-8", "replace")
    at = text.lower().find("try again in")
    if at >= 0:
        write("wait_hints", f"{provider}_{name}.message", text[at:at + 80].encode())
    for key, value in headers.items():
        if key.endswith("-reset"):
            write("wait_hints", f"{provider}_{name}.reset", value.encode())
            break


def redaction_seed(provider, name, body):
    """An error body with the secrets (bytes 1..5 in the redaction target) where a key would be echoed."""
    if len(body) > 2000:
        return
    text = body.decode("utf-8", "replace")
    marked = text.replace(": ", ": \x01 ", 1).replace(" ", " \x03", 1) + "\x02\x04[REDACTED]\x05"
    write("redaction", f"{provider}_{name}", marked.encode())


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    sse = sorted(FIXTURES.rglob("*.sse"))
    ndjson = sorted(FIXTURES.rglob("*.ndjson"))
    stream_seeds("sse_framing", sse[::2])
    stream_seeds("line_framing", ndjson)
    stream_seeds("openai_stream", [p for p in sse if p.relative_to(FIXTURES).parts[0] in OPENAI_DIALECT])
    for provider in ["anthropic", "gemini"]:
        stream_seeds(f"{provider}_stream", [p for p in sse if p.relative_to(FIXTURES).parts[0] == provider])
    stream_seeds("ollama_stream", [p for p in ndjson if p.name.startswith("chat.")])
    exchange_seeds("openai", OPENAI_DIALECT)
    for provider in ["anthropic", "gemini", "ollama"]:
        exchange_seeds(provider, [provider])
    # Not in fixtures: the accepted forms of the settings values and a `.env` file's shapes.
    for i, text in enumerate(["30", "1.5", "500ms", " 2m ", "1h", "10 parsecs", "1e400", "true", "OFF", "yes"]):
        write("settings_values", f"value{i}", text.encode())
    dotenv = [
        "OPENAI_API_KEY=canary-key-0000-DO-NOT-LEAK\n",
        "# comment\nexport GROQ_API_KEY='single quoted'\nLLM_FALLBACK_ORDER=\"groq,openai\"\n",
        "A=1\nB=${A}2\nC=\"multi\nline\"\n",
        "BROKEN LINE WITHOUT EQUALS\n",
        "KEY=value # trailing comment\n\n\nEMPTY=\n",
    ]
    for i, text in enumerate(dotenv):
        write("dotenv", f"env{i}", text.encode())
    for i, text in enumerate(["7.66s\n\n0\n2m59.56s\n0\n6ms", "Please try again in 1m30.5s.", "1h2m3.5us"]):
        write("wait_hints", f"handmade{i}", text.encode())
    for folder in SEEDS.iterdir():
        files = sorted(folder.iterdir())
        step = -(-len(files) // MAX_FILES)
        for i, path in enumerate(files):
            if i % step:
                path.unlink()


if __name__ == "__main__":
    main()
