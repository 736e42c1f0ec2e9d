"""The demo upstream's pieces; addon/demo_upstream.py serves them (its docstring says what it speaks).

    shared.py         what every answer shares: the key headers' report, prompts, tokens, stream pieces
    handler.py        DemoHandler: the HTTP plumbing (bodies, JSON, server-sent events), the echo, x-demo-delay
    routes.py         which request gets which answer: a table, first fit wins, else the echo
    openai_api.py     OpenAI's answers: models, chat completions (streamed too)
    responses_api.py  OpenAI's Responses API (Codex CLI's): responses, streamed as its event stream
    anthropic_api.py  Anthropic's answers: models, messages (streamed too), count_tokens
    gemini_api.py     Gemini's answers: models, generateContent, streamGenerateContent, countTokens
    json_answer.py    the JSON a Gemini request asks for (responseMimeType, its schema)
"""
