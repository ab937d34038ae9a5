"""`shopdesk --help` and importing the search tools stay cheap: chromadb, torch and sentence-transformers load only
when a search or build runs (together they take seconds to import).
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("chromadb", "torch", "sentence_transformers", "transformers", "gradio")

_PROBE = """
import json, sys
runs = json.loads(sys.argv[1])
if runs == "import":
    import index.build, index.cli, index.evaluate, index.search, index.shared, tools.search  # noqa: F401
else:
    import shopdesk.cli
    for argv in runs:
        try:
            shopdesk.cli.app(argv, prog_name="shopdesk")
        except SystemExit as exc:
            assert exc.code in (0, None), (argv, exc.code)
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(runs) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), json.dumps(runs)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_imports_no_heavy_library():
    helps = [["--help"], ["search", "--help"], ["search", "products", "--help"], ["index", "build", "--help"]]
    assert _loaded(helps) == []


def test_search_modules_import_no_heavy_library():
    assert _loaded("import") == []


def test_the_probe_sees_a_heavy_import():
    """The check above can fail: importing the embedding function does load chromadb."""
    done = subprocess.run(
        [sys.executable, "-c", ("import sys; from index.embeddings import LocalEmbeddingFunction; "
                                "print('chromadb' in sys.modules)")],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip() == "True", done.stderr[-2000:]
