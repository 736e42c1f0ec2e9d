# Antigravity auth gate: `just --list` shows the recipes.
set positional-arguments

python := env_var_or_default("PYTHON", "python3")

# Install what the gate, the tests and the benchmark need (PyPI), and the coding agents (npm ci, when npm is there).
install:
    {{python}} -m pip install -r requirements.txt
    @if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund; else echo "npm not found: the coding agents (just demo --agents, tests/live/test_agents.py) need node 20+ and npm, then: npm ci"; fi

# The gate on 127.0.0.1:8045 (config.yaml, made on first start), with the demo upstream on upstream.url.
run *ARGS:
    exec {{python}} addon/run.py "$@"

# mitmweb with the gate: the UI on http://127.0.0.1:8081 only, the comment column on.
web *ARGS:
    exec {{python}} addon/run.py --web "$@"

# The whole test suite (about 5 minutes): core, addons, live (real mitmdump), web (a browser).
test *ARGS:
    {{python}} -m pytest "$@"

# The fast tier alone (under a minute): the pure core and the addons under mitmproxy's test helpers.
test-fast *ARGS:
    {{python}} -m pytest tests/core tests/addons "$@"

# Instructions per request under callgrind (bare, the floor script, the gate; see docs/performance.md), then throughput rounds.
bench *ARGS:
    {{python}} tests/bench.py "$@"

# The decision trace for one request, without a running proxy: just explain -- -H 'Authorization: Bearer<key>' /v1/models
explain *ARGS:
    @PYTHONPATH=addon {{python}} -m authgate.cli.explain "$@"

# The FAQ's lesson against a live gate on free ports (under a minute): just demo [--lang fr] [--profile v4 | --agents]
demo *ARGS:
    @{{python}} addon/faq_lesson.py "$@"
