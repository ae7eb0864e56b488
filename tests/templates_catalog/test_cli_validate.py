"""`gateway templates validate DIR`, as a business's CI runs it: exit status and a report per problem."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"name": "cita_recordatorio", "language": "es", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hola {{1}}, te esperamos el {{2}} a las 10.",
                        "example": {"body_text": [["Ana", "lunes"]]}}]}


def _run(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "templates", "validate", str(directory)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_folder_of_valid_templates_passes(tmp_path):
    (tmp_path / "cita.json").write_text(json.dumps(GOOD))
    (tmp_path / "cita_en.yaml").write_text(
        "name: cita_recordatorio\nlanguage: en_US\ncategory: UTILITY\ncomponents:\n"
        "  - type: BODY\n    text: 'Hi {{1}}, see you on {{2}}.'\n    example: {body_text: [[Ana, Monday]]}\n")
    (tmp_path / "notes.md").write_text("not a template")
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 template(s) in 2 file(s): all valid" in done.stdout


def test_every_problem_is_reported_and_the_exit_status_says_so(tmp_path):
    bad = dict(GOOD, name="Cita Recordatorio", components=[
        {"type": "BODY", "text": "{{1}} te esperamos el {{3}}", "example": {"body_text": [["Ana", "lunes"]]}}])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    done = _run(tmp_path)
    assert done.returncode == 1
    out = done.stdout
    assert "bad.json: Cita Recordatorio (es)" in out and "[name_invalid]" in out
    assert "[parameters_not_contiguous]" in out and "[body_starts_with_parameter]" in out
    assert "broken.yaml" in out
    assert "3 template(s)" not in out and "2 with problems" in out
