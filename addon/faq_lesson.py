"""The FAQ's lesson, reproduced against a live gate: `just demo`.

    python3 addon/faq_lesson.py [--lang fr] [--profile v4 | --agents]

Starts the gate (mitmdump with addon/auth.py) and a local upstream on free
loopback ports, then walks the FAQ: step 1 (/healthz under each mode), step 2
(every row of the effective-mode table), step 3 (the empty api_key and its log
line), step 4 (the headers) and every row of the pitfalls table. Between
scenarios it edits the gate's config file, which applies to the next request
(no restart). Prints each scenario with its curl line, the status, the header
that won and why (all three key headers, in their order, a non-ASCII value
falling through to the next); exits 1 if anything behaves otherwise than the
FAQ says. --lang: the lesson in one of the FAQ's five languages.
`--profile v4` walks today's release instead (v4_lesson.py); `--agents` the FAQ's
scenarios with Claude Code, Codex CLI and Gemini CLI (agent_demo.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import lesson_run
from authgate.config.settings import generate_key
from authgate.rules import v4
from authgate.rules.credentials import fingerprint
from authgate.words import explain

ANY = object()


@dataclass(frozen=True)
class Scenario:
    step: str
    title: str
    mode: str
    status: int  # what the FAQ says happens
    reason: str
    effective: str
    lan: bool = False
    empty_key: bool = False
    path: str = "/v1/models"
    headers: tuple[tuple[str, str], ...] = ()  # "$KEY" stands for the proxy key
    winner: object = ANY
    shadowed: str | None = None
    log: str | None = None


KEY_HEADER = (("Authorization", "Bearer $KEY"),)
SMART_QUOTED = (("Authorization", "Bearer \u201c$KEY\u201d"), ("x-goog-api-key", "$KEY"))  # “key”: pasted from a document

LESSON = (
    Scenario("1", "/healthz without a header, all_except_health", "all_except_health", 200, "health_exempt",
             "all_except_health", path="/healthz"),
    Scenario("1", "/healthz without a header, auto + allow_lan_access=true", "auto", 200, "health_exempt",
             "all_except_health", lan=True, path="/healthz"),
    Scenario("1", "/healthz without a header, strict", "strict", 401, "missing", "strict", path="/healthz"),
    Scenario("2", "auth_mode=off → off", "off", 200, "auth_off", "off"),
    Scenario("2", "auth_mode=strict → strict", "strict", 401, "missing", "strict"),
    Scenario("2", "auth_mode=all_except_health → all_except_health", "all_except_health", 401, "missing",
             "all_except_health"),
    Scenario("2", "auth_mode=auto, allow_lan_access=false → off", "auto", 200, "auth_off", "off"),
    Scenario("2", "auth_mode=auto, allow_lan_access=true → all_except_health", "auto", 401, "missing",
             "all_except_health", lan=True),
    Scenario("3", "api_key empty: every request is denied, and logged", "strict", 401, "empty_api_key", "strict",
             empty_key=True, headers=KEY_HEADER, log=v4.EMPTY_KEY_LOG),
    Scenario("3", "api_key set again: the key works at once, no restart", "strict", 200, "key_ok", "strict",
             headers=KEY_HEADER, winner="Authorization"),
    Scenario("4", "Authorization: Bearer <key>", "strict", 200, "key_ok", "strict", headers=KEY_HEADER,
             winner="Authorization"),
    Scenario("4", "x-api-key: <key>", "strict", 200, "key_ok", "strict", headers=(("x-api-key", "$KEY"),),
             winner="x-api-key"),
    Scenario("4", "x-goog-api-key: <key>", "strict", 200, "key_ok", "strict",
             headers=(("x-goog-api-key", "$KEY"),), winner="x-goog-api-key"),
    Scenario("4", "x-goog-api-key and x-api-key: x-api-key comes first", "strict", 200, "key_ok", "strict",
             headers=(("x-goog-api-key", "sk-old"), ("x-api-key", "$KEY")), winner="x-api-key"),
    Scenario("4", "non-ASCII Authorization is skipped: the next header is read", "strict", 200, "key_ok",
             "strict", headers=SMART_QUOTED, winner="x-goog-api-key"),
    Scenario("pitfall", "auto, but localhost still gets 401 (allow_lan_access=true)", "auto", 401, "missing",
             "all_except_health", lan=True, winner=None),
    Scenario("pitfall", "x-api-key sent, but a mismatching Authorization comes first", "strict", 401, "mismatch",
             "strict", headers=(("Authorization", "Bearer sk-old"), ("x-api-key", "$KEY")),
             winner="Authorization", shadowed="x-api-key"),
    Scenario("pitfall", "Authorization: Bearer<key>, no space", "strict", 401, "bearer_no_space", "strict",
             headers=(("Authorization", "Bearer$KEY"),), winner="Authorization"),
    Scenario("pitfall", "api_key empty: all requests get 401", "strict", 401, "empty_api_key", "strict",
             empty_key=True, headers=(("x-api-key", "$KEY"),), log=v4.EMPTY_KEY_LOG),
)


class Gate(lesson_run.Gate):
    """The gate on a config.yaml the lesson rewrites for each scenario."""

    def write(self, s: Scenario) -> None:
        key = "" if s.empty_key else self.key
        text = (f"proxy:\n  auth_mode: {s.mode}\n  allow_lan_access: {str(s.lan).lower()}\n"
                f'  api_key: "{key}"\nupstream:\n  url: http://127.0.0.1:{self.upstream_port}\n')
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config)  # one atomic edit: the gate sees it on the next request

    def send(self, s: Scenario, lang: str) -> tuple[int, dict]:
        # bytes: a smart quote goes out as the UTF-8 a pasted key carries
        headers = {name: value.replace("$KEY", self.key).encode() for name, value in s.headers}
        status, seen, _ = self.get(s.path, headers, lang)
        return status, seen


def words(lang: str) -> dict:
    """The lesson's own words (the "lesson" part of locales/<lang>.json), English where missing."""
    return explain.tool_words("lesson", lang)


def check(s: Scenario, status: int, seen: dict, logged: bool, lang: str = "en") -> list[str]:
    w = words(lang)
    wrong = []
    if status != s.status:
        wrong.append(w["wrong_status"].format(got=status, want=s.status))
    if seen.get("mode") != s.effective:
        wrong.append(w["wrong_mode"].format(got=seen.get("mode"), want=s.effective))
    if seen.get("reason") != s.reason:
        wrong.append(w["wrong_reason"].format(got=seen.get("reason"), want=s.reason))
    winner = None if seen.get("winner", "-") == "-" else seen.get("winner")
    if s.winner is not ANY and winner != s.winner:
        wrong.append(w["wrong_winner"].format(got=winner, want=s.winner))
    if s.shadowed and seen.get("shadowed") != s.shadowed:
        wrong.append(w["wrong_shadowed"].format(name=s.shadowed))
    if s.log and not logged:
        wrong.append(w["wrong_log"].format(line=s.log))
    return wrong


def pad(text: str, width: int) -> str:
    """`text` filled to `width` terminal columns (CJK characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(1, width - used)


def run(lang: str = "en", out=sys.stdout) -> int:
    w = words(lang)
    cat = explain.CATALOGS[lang]

    def scenario(s: Scenario) -> tuple[list[str], str, list[str]]:
        (status, seen), logged = gate.exchange(s, lang)
        wrong = check(s, status, seen, logged, lang)
        winner = seen.get("winner", "-")
        why = cat.reasons[seen["reason"]].label if seen.get("reason") in cat.reasons else "?"
        for name in filter(None, seen.get("skipped", "").split(",")):
            why += " · " + cat.phrases["skipped"].format(name=name)
        if seen.get("shadowed"):
            why += " · " + cat.phrases["shadowed_label"].format(name=seen["shadowed"])
        step = w["pitfall"] if s.step == "pitfall" else s.step
        row = (pad(step, 8) + pad(w["titles"].get(s.title, s.title), 62) + pad(str(status), 7)
               + pad(seen.get("mode", "?"), 19) + pad(winner, 16) + why)
        lines = [lesson_run.curl_line(gate, s)] + ([w["log"].format(line=s.log)] if s.log and logged else [])
        return wrong, row, lines

    def make_gate(tmp: Path, upstream_port: int) -> Gate:
        gate = Gate(tmp / "config.yaml", upstream_port, generate_key())
        gate.write(LESSON[0])
        return gate

    with lesson_run.upstream_and_gate("faq-lesson-", make_gate) as gate:
        print(w["intro"].format(port=gate.port, upstream=gate.upstream_port, fingerprint=fingerprint(gate.key))
              + "\n", file=out)
        print("   " + pad(w["col_step"], 8) + pad(w["col_scenario"], 62) + pad(w["col_status"], 7)
              + pad(w["col_mode"], 19) + pad(w["col_winner"], 16) + w["col_why"], file=out)
        failures = lesson_run.walk(LESSON, scenario, 11, out)
    return lesson_run.summary(len(LESSON), failures, w["summary_ok"], w["summary_bad"], out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", default="en", choices=explain.LANGUAGES, help="language of the lesson")
    parser.add_argument("--profile", default="faq", choices=("faq", "v4"),
                        help="faq: the FAQ's lesson (v3.3.50); v4: what v4.5.8 changed, against the app's files")
    parser.add_argument("--agents", action="store_true",
                        help="the FAQ's scenarios with the coding agents installed by npm ci (Claude Code, Codex CLI, "
                             "Gemini CLI)")
    args = parser.parse_args()
    if args.agents:
        import agent_demo
        sys.exit(agent_demo.run(args.lang))
    if args.profile == "v4":
        import v4_lesson
        sys.exit(v4_lesson.run(args.lang))
    sys.exit(run(args.lang))


if __name__ == "__main__":
    main()
