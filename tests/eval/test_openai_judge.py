"""OpenAIJudge (on the ``openai`` package) against a local OpenAI-compatible HTTP server
(127.0.0.1, canned replies) and an ``httpx.MockTransport``: no request leaves the machine."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pdray.errors import ConfigError, PdrayError
from pdray.eval.cache import ShardCache
from pdray.eval.openai_judge import OpenAIJudge
from pdray.eval.pairwise import JUDGE_SYSTEM_PROMPT, JudgeRequest, judge_both_orders

SECRET = "sk-test-DO-NOT-LEAK-1234567890"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output quiet
        pass

    def do_POST(self):
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv.seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                         "body": body})
        if srv.status_plan:
            code = srv.status_plan.pop(0)
            self.send_response(code)
            self.send_header("retry-after-ms", "5")  # the client's retry waits 5 ms
            self.end_headers()
            self.wfile.write(b'{"error": "busy"}')
            return
        user = body["messages"][1]["content"]
        a1 = user.split("[The Start of Assistant 1's Answer]\n")[1].split("\n\n[The End")[0]
        a2 = user.split("[The Start of Assistant 2's Answer]\n")[1].split("\n\n[The End")[0]
        score = {"long detailed answer": 9, "short": 5, "weird": None}
        s1, s2 = score.get(a1, 6), score.get(a2, 6)
        text = "no scores here, sorry" if None in (s1, s2) else f"{s1} {s2}\nExplanation."
        out = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": text}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out.encode())


@pytest.fixture()
def server():
    srv = HTTPServer(("127.0.0.1", 0), _Handler)
    srv.seen, srv.status_plan = [], []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.timeout(60)
def test_openai_judge_roundtrip_key_in_header_never_in_logs(server, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("MY_JUDGE_KEY", SECRET)
    url = f"http://127.0.0.1:{server.server_port}/v1"
    judge = OpenAIJudge("gpt-judge", url, api_key_env="MY_JUDGE_KEY", concurrency=2)
    server.status_plan = [503]  # first call fails, is retried
    caplog.set_level(logging.DEBUG)
    items = [("Explain DNS.", "long detailed answer", "short"),
             ("Say hi.", "short", "long detailed answer"),
             ("Odd.", "weird", "short")]
    res = judge_both_orders(judge, items, cache=ShardCache(tmp_path, "judge"), log=logging.info)
    assert [r["outcome"] for r in res] == ["win", "loss", "failed"]
    assert res[0]["text_1"].startswith("9 5") and res[0]["text_2"].startswith("5 9")
    assert res[2]["error"] == "unparseable judge output"
    assert len(server.seen) == 7  # 6 judgments + 1 retried 503
    for s in server.seen:
        assert s["path"] == "/v1/chat/completions"
        assert s["auth"] == f"Bearer {SECRET}"
        assert s["body"]["model"] == "gpt-judge" and s["body"]["temperature"] == 0.0
        assert s["body"]["messages"][0]["content"] == JUDGE_SYSTEM_PROMPT
    assert SECRET not in caplog.text and SECRET not in repr(judge) and SECRET not in judge.name
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes()


@pytest.mark.timeout(60)
def test_openai_judge_errors(server, monkeypatch):
    url = f"http://127.0.0.1:{server.server_port}/v1"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="environment variable OPENAI_API_KEY"):
        OpenAIJudge("gpt", "https://api.example.com/v1")
    local = OpenAIJudge("gpt", url)  # a local server needs no key
    assert local.judge([JudgeRequest("q", "short", "short")])[0].text == "5 5\nExplanation."
    assert server.seen[-1]["auth"] is None
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server.status_plan = [401]
    with pytest.raises(PdrayError, match=r"refused the API key from \$OPENAI_API_KEY") as e:
        OpenAIJudge("gpt", url).judge([JudgeRequest("q", "a", "b")])
    assert SECRET not in str(e.value)
    server.status_plan = [500, 500, 500, 500]
    reply = OpenAIJudge("gpt", url, max_retries=3).judge(
        [JudgeRequest("q", "a", "b")])[0]
    assert reply.text is None and reply.error.startswith("HTTP 500")
    assert len(server.seen) == 2 + 4  # the 401 once (never retried), the 500 four times
    dead = OpenAIJudge("gpt", "http://127.0.0.1:9/v1", max_retries=0, timeout_s=2)
    assert dead.judge([JudgeRequest("q", "a", "b")])[0].error.startswith("connection error")


def _completion(text):
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "gpt",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


def _mock_judge(monkeypatch, plan, **kw):
    """An OpenAIJudge whose requests go to ``plan`` (a list of callables or responses) through
    ``httpx.MockTransport``; returns (judge, the requests it received)."""
    import httpx

    seen = []

    def handler(request):
        seen.append(request)
        step = plan.pop(0)
        return step(request) if callable(step) else step

    monkeypatch.setenv("MOCK_JUDGE_KEY", SECRET)
    judge = OpenAIJudge("gpt-x", "https://judge.example.com/v1", api_key_env="MOCK_JUDGE_KEY",
                        concurrency=1, http_client=httpx.Client(
                            transport=httpx.MockTransport(handler)), **kw)
    return judge, seen


@pytest.mark.timeout(60)
def test_openai_judge_mock_transport_request_shape_and_retries(monkeypatch, caplog):
    import httpx

    caplog.set_level(logging.DEBUG)
    fast = {"retry-after-ms": "1"}
    judge, seen = _mock_judge(monkeypatch, [
        httpx.Response(429, headers=fast, json={"error": {"message": "slow down"}}),
        httpx.Response(503, headers=fast, json={"error": {"message": "busy"}}),
        httpx.Response(200, json=_completion("7 3\nfine"))],
        max_retries=2, temperature=0.25, max_tokens=64)
    reply = judge.judge([JudgeRequest("Why?", "because", "no")])[0]
    assert reply.text == "7 3\nfine" and reply.error is None
    assert len(seen) == 3  # two retried failures, then the answer
    assert [r.headers["x-stainless-retry-count"] for r in seen] == ["0", "1", "2"]
    for r in seen:
        assert r.method == "POST" and str(r.url) == "https://judge.example.com/v1/chat/completions"
        assert r.headers["authorization"] == f"Bearer {SECRET}"
        body = json.loads(r.content)
        assert body["model"] == "gpt-x" and body["temperature"] == 0.25
        assert body["max_tokens"] == 64
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert "[The Start of Assistant 1's Answer]\nbecause\n\n" in body["messages"][1]["content"]
    assert SECRET not in caplog.text


@pytest.mark.timeout(60)
def test_openai_judge_mock_transport_failures_never_show_the_key(monkeypatch, caplog):
    import httpx

    caplog.set_level(logging.DEBUG)
    echo_key = httpx.Response(500, headers={"retry-after-ms": "1"},
                              text=f"upstream said: bad key {SECRET}")
    judge, seen = _mock_judge(monkeypatch, [echo_key, echo_key], max_retries=1)
    reply = judge.judge([JudgeRequest("q", "a", "b")])[0]
    assert len(seen) == 2 and reply.text is None
    assert reply.error == "HTTP 500: upstream said: bad key ***"

    judge, seen = _mock_judge(monkeypatch, [httpx.Response(400, json={"error": "bad request"})])
    assert judge.judge([JudgeRequest("q", "a", "b")])[0].error.startswith("HTTP 400")
    assert len(seen) == 1  # a client error is not retried

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    judge, seen = _mock_judge(monkeypatch, [refuse, refuse], max_retries=1)
    error = judge.judge([JudgeRequest("q", "a", "b")])[0].error
    assert len(seen) == 2 and error == "connection error: connection refused"

    judge, seen = _mock_judge(monkeypatch, [httpx.Response(200, json={"id": "x"})])
    assert judge.judge([JudgeRequest("q", "a", "b")])[0].error.startswith("malformed response")

    judge, _ = _mock_judge(monkeypatch, [httpx.Response(403, json={"error": "no"})])
    with pytest.raises(PdrayError, match=r"HTTP 403") as e:
        judge.judge([JudgeRequest("q", "a", "b")])
    assert SECRET not in str(e.value) and SECRET not in repr(e.value)
    assert SECRET not in repr(judge) and SECRET not in judge.name
    assert SECRET not in caplog.text
