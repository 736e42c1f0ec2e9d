"""`just demo`: the FAQ's lesson against a live gate (real mitmdump, loopback)."""

import io
import subprocess
import sys
from pathlib import Path

import faq_lesson

REPO = Path(__file__).resolve().parent.parent


def test_the_whole_lesson_behaves_as_the_faq_says():
    out = io.StringIO()
    assert faq_lesson.run("en", out) == 0
    text = out.getvalue()
    assert f"{len(faq_lesson.LESSON)} of {len(faq_lesson.LESSON)} scenarios behave as the FAQ says." in text
    assert "✗" not in text
    assert "log: Proxy auth is enabled but api_key is empty; denying request" in text
    assert "key mismatch · shadowed a correct x-api-key" in text
    assert "sk-" not in text.replace("sk-old", "").replace("KEY=sk-…", "")  # the key only as a fingerprint


def test_a_deviation_is_reported_and_fails(monkeypatch):
    wrong = faq_lesson.Scenario("2", "deliberately wrong expectation", "strict", 200, "auth_off", "off")
    monkeypatch.setattr(faq_lesson, "LESSON", (faq_lesson.LESSON[0], wrong))
    out = io.StringIO()
    assert faq_lesson.run("en", out) == 1
    text = out.getvalue()
    assert "!! status 401, the FAQ says 200" in text and "!! effective mode strict, the FAQ says off" in text
    assert "1 of 2 scenarios behave as the FAQ says; 1 do not." in text


def test_just_demo_in_another_language():
    run = subprocess.run([sys.executable, str(REPO / "addon" / "faq_lesson.py"), "--lang", "fr"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "clé" in run.stdout.lower()
