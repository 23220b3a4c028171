"""The pairwise judge behind any OpenAI-compatible ``/chat/completions`` endpoint.

A hosted API or a local vLLM server, through the ``openai`` package (``pip install
'pdray[judge]'``): it owns the HTTP client, the timeouts and the retries (408, 409, 429 and 5xx
and connection errors are retried ``max_retries`` times with exponential backoff, honouring
``Retry-After``). The API key is read ONLY from the environment variable named by
``api_key_env`` (default ``OPENAI_API_KEY``); it goes into the ``Authorization`` header and is
never logged, stored or written — error texts are redacted and ``repr`` leaves it out. A local
endpoint (localhost) may run without a key; then no ``Authorization`` header is sent.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pdray.errors import ConfigError, PdrayError
from pdray.eval.config import EvalConfig
from pdray.eval.pairwise import Judge, JudgeReply, JudgeRequest, judge_messages

log = logging.getLogger(__name__)
_D = EvalConfig()  # the one home of the judge's defaults
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def _openai():
    """The ``openai`` package (an optional extra; imported only when a judge is built)."""
    try:
        import openai
    except ImportError:
        raise ConfigError("eval.judge=openai needs the openai package "
                          "(pip install 'pdray[judge]')") from None
    return openai


class OpenAIJudge(Judge):
    """Pairwise judge through an OpenAI-compatible chat-completions endpoint.

    ``http_client``: an ``httpx.Client`` to send through (a proxy, or a mock transport in
    tests); by default the ``openai`` package's own. Defaults: :class:`EvalConfig`'s."""

    def __init__(self, model: str, base_url: str = _D.base_url, *,
                 api_key_env: str = _D.api_key_env, temperature: float = _D.judge_temperature,
                 max_tokens: int = _D.judge_max_tokens, timeout_s: float = _D.judge_timeout_s,
                 max_retries: int = _D.judge_max_retries,
                 concurrency: int = _D.judge_concurrency, http_client=None):
        if not model:
            raise ConfigError("the openai judge needs a model name (eval.judge_model)")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.temperature, self.max_tokens = temperature, max_tokens
        self.timeout_s, self.max_retries = timeout_s, max_retries
        self.concurrency = max(1, concurrency)
        host = urllib.parse.urlparse(self.base_url).hostname or ""
        self._key = os.environ.get(api_key_env) or None
        if self._key is None and host not in LOCAL_HOSTS:
            raise ConfigError(f"the openai judge at {self.base_url} needs an API key in the "
                              f"environment variable {api_key_env} (it is never read from config)")
        openai = _openai()
        # without a key (a local server) the client holds a placeholder that is never sent
        self._client = openai.OpenAI(api_key=self._key or "unused", base_url=self.base_url,
                                     timeout=timeout_s, max_retries=max_retries,
                                     http_client=http_client)
        self._headers = None if self._key else {"Authorization": openai.Omit()}
        self.name = f"openai:{self.model}@{self.base_url}:t{temperature}"

    def __repr__(self) -> str:  # never show the key
        return (f"OpenAIJudge(model={self.model!r}, base_url={self.base_url!r}, "
                f"key_env={self.api_key_env!r})")

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _call(self, req: JudgeRequest) -> JudgeReply:
        openai = _openai()
        try:
            resp = self._client.chat.completions.create(
                model=self.model, temperature=self.temperature, max_tokens=self.max_tokens,
                messages=judge_messages(req.instruction, req.response_1, req.response_2),
                extra_headers=self._headers)
            text = resp.choices[0].message.content
            if not isinstance(text, str):
                raise TypeError("no message content")
            return JudgeReply(text=text)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            raise PdrayError(f"judge endpoint {self.base_url} refused the API key from "
                             f"${self.api_key_env} (HTTP {e.status_code})") from None
        except openai.APIStatusError as e:  # retried by the client where retrying helps
            body = " ".join(e.response.text[:200].split())
            error = f"HTTP {e.status_code}: {self._redact(body)}"
        except openai.APITimeoutError:
            error = f"connection error: no answer within {self.timeout_s:g} s"
        except openai.APIConnectionError as e:
            error = self._redact(f"connection error: {e.__cause__ or e}")
        except (openai.APIError, AttributeError, IndexError, TypeError, ValueError) as e:
            error = f"malformed response: {type(e).__name__}"
        log.warning("judge call failed after %d retries: %s", self.max_retries, error)
        return JudgeReply(text=None, error=error)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        if self.concurrency == 1 or len(requests) <= 1:
            return [self._call(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._call, requests))

    def close(self) -> None:
        self._client.close()
