"""The `/docs` page: the app's OpenAPI schema as one self-contained HTML page that needs no network.

FastAPI's Swagger UI loads its script and styles from a CDN, so offline (a common case for textune's users)
it is a blank page. This page inlines everything and offers a small form to try `POST /v1/predict`.
"""

from __future__ import annotations

import html
import json
import re

STYLE = """
body { font-family: ui-sans-serif, system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #1f2937; }
code, pre, textarea { font-family: ui-monospace, monospace; }
pre { background: #f3f4f6; padding: .6rem; overflow-x: auto; }
.op { border: 1px solid #d1d5db; border-radius: 6px; margin: 1rem 0; padding: .2rem 1rem; }
.method { font-weight: bold; color: #fff; background: #2563eb; border-radius: 4px; padding: 0 .4rem; }
.post { background: #059669; }
table { border-collapse: collapse; } td { padding: .1rem .8rem .1rem 0; vertical-align: top; }
textarea { width: 100%; }
"""

TRY_IT = """
<h2>Try it</h2>
<textarea id="body" rows="3">{example}</textarea>
<p><button id="send">POST /v1/predict</button></p>
<pre id="answer"></pre>
<script>
document.getElementById("send").onclick = async () => {
  const answer = document.getElementById("answer");
  const response = await fetch("v1/predict", {method: "POST", headers: {"content-type": "application/json"},
                                              body: document.getElementById("body").value});
  answer.textContent = response.status + "\\n" + JSON.stringify(await response.json(), null, 2);
};
</script>
"""


def render_docs(schema: dict) -> str:
    """HTML describing every operation of an OpenAPI schema (summary, limits, request example, responses)."""
    info = schema.get("info", {})
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(info.get('title', 'API'))}"
             f" - API</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(info.get('title', 'API'))} <small>{html.escape(info.get('version', ''))}</small></h1>",
             f"<p>{inline_markdown(info.get('description', ''))}</p>",
             "<p>Machine-readable schema: <a href='openapi.json'>openapi.json</a>.</p>"]
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            parts.append(render_operation(method, path, operation))
    example = request_example(schema)
    if example is not None:
        parts.append(TRY_IT.replace("{example}", html.escape(json.dumps(example))))
    parts.append("</body></html>")
    return "\n".join(parts)


def render_operation(method: str, path: str, operation: dict) -> str:
    lines = [f"<div class='op'><h3><span class='method {method}'>{method.upper()}</span> <code>"
             f"{html.escape(path)}</code> {html.escape(operation.get('summary', ''))}</h3>"]
    if operation.get("description"):
        lines.append(f"<p>{inline_markdown(operation['description'])}</p>")
    rows = "".join(f"<tr><td><code>{html.escape(status)}</code></td><td>{html.escape(answer.get('description', ''))}"
                   f"</td></tr>" for status, answer in operation.get("responses", {}).items())
    lines.append(f"<table>{rows}</table></div>")
    return "\n".join(lines)


def inline_markdown(text: str) -> str:
    """Escaped text with the Markdown the app's descriptions use: **bold** and `code`."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def request_example(schema: dict) -> dict | None:
    """The first example body of `POST /v1/predict`, if the schema has one."""
    body = schema.get("paths", {}).get("/v1/predict", {}).get("post", {}).get("requestBody", {})
    reference = body.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    model = schema.get("components", {}).get("schemas", {}).get(reference.rsplit("/", 1)[-1], {})
    examples = model.get("examples") or [{"texts": ["some text"]}]
    return examples[0]
