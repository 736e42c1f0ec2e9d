"""`just demo`: the FAQ's lesson against a live gate (real mitmdump, loopback)."""

import io
import subprocess
import sys
from pathlib import Path

import faq_lesson
from authgate.config.paths import REPO


def test_the_whole_lesson_behaves_as_the_faq_says():
    out = io.StringIO()
    assert faq_lesson.run("en", out) == 0
    text = out.getvalue()
    assert f"{len(faq_lesson.LESSON)} of {len(faq_lesson.LESSON)} scenarios behave as the FAQ says." in text
    assert "✗" not in text
    assert "log: Proxy auth is enabled but api_key is empty; denying request" in text
    assert "key mismatch · shadowed a correct x-api-key" in text
    assert "sk-" not in text.replace("sk-old", "").replace("KEY=sk-…", "")  # the key only as a fingerprint
    # the whole precedence: each of the three headers read, and the order between them
    rows = [line for line in text.splitlines() if line.startswith("✓  4 ")]
    winner = slice(3 + 8 + 62 + 7 + 19, 3 + 8 + 62 + 7 + 19 + 16)  # the "header that won" column
    assert [row[winner].strip() for row in rows[:5]] == ["Authorization", "x-api-key", "x-goog-api-key", "x-api-key",
                                                         "x-goog-api-key"], rows
    assert 'curl -i http://127.0.0.1:' in text and '-H "x-goog-api-key: sk-old" -H "x-api-key: $KEY"' in text
    # a non-ASCII value (a key pasted with smart quotes) counts as absent: the next header is read
    assert '-H "Authorization: Bearer “$KEY”" -H "x-goog-api-key: $KEY"' in text
    assert rows[4].endswith("key ok · Authorization non-ASCII, skipped")


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


def test_just_demo_profile_v4_walks_what_v4_5_8_changed():
    import v4_lesson
    out = io.StringIO()
    assert v4_lesson.run("en", out) == 0
    text = out.getvalue()
    n = len(v4_lesson.LESSON)
    assert f"{n} of {n} scenarios behave as v4.5.8's code says." in text and "✗" not in text
    for words in ("/api/health without a key, strict: public in every mode", "admin route with the admin_password",
                  "admin route with the api_key once admin_password is set: 401",
                  "403: Invalid token. Please check your API key.",
                  "403: Your token has expired. Please contact the administrator to renew it.",
                  "Beijing Time (Curfew enabled). Current Beijing time: ",
                  "log: UserToken rejected: Invalid token. Please check your API key."):
        assert words in text, words
    assert v4_lesson.PASSWORD not in text
    assert "sk-" not in text.replace("sk-user-", "").replace("sk-unknown", "").replace("KEY=sk-…", "")


def test_just_demo_profile_v4_from_the_command_line():
    run = subprocess.run([sys.executable, str(REPO / "addon" / "faq_lesson.py"), "--profile", "v4", "--lang", "ja"],
                         capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "scenarios behave as v4.5.8's code says." in run.stdout


def test_just_demo_in_japanese_is_japanese_throughout():
    run = subprocess.run([sys.executable, str(REPO / "addon" / "faq_lesson.py"), "--lang", "ja"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    ja = faq_lesson.words("ja")
    en = faq_lesson.words("en")
    lines = out.splitlines()
    assert lines[0].startswith("稼働中のゲートで FAQ のレッスン：") and "(a throwaway key)" not in out
    assert lines[2].split() == ["手順", "シナリオ", "状態", "有効モード", "採用", "Header", "理由"]
    for title in {s.title for s in faq_lesson.LESSON}:
        if title in ja["titles"]:
            assert ja["titles"][title] in out and title not in out, title
    for word in ("pitfall", "scenarios behave", "header that won", "log: "):
        assert word not in out, word
    assert lines[-1] == f"{len(faq_lesson.LESSON)} 件中 {len(faq_lesson.LESSON)} 件のシナリオが FAQ のとおりに動作しました。"
    assert "ログ：Proxy auth is enabled but api_key is empty; denying request" in out  # the original's own words
    assert set(en) == set(ja)
